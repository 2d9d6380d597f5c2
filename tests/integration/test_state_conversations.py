"""Conversations (the Conversations API's storage) in the state service: the Store contract
against both backends (memory and a real PostgreSQL), then the gRPC service and the edge's
StateClient over real channels — 404s in OpenAI's words, 400s for unusable keys, repeated
item ids and the size bounds, and tenant isolation."""
from __future__ import annotations

import asyncio
import logging

import asyncpg
import grpc
import orjson
import pytest

from switchyard.common.errors import GatewayError
from switchyard.common.proto import state_pb2, state_pb2_grpc
from switchyard.edge.clients.state import StateClient
from switchyard.state.migrate import apply_migrations, load_migrations
from switchyard.state.service import StateServicer
from switchyard.state.stores.base import ConversationNotFound, InvalidInput, ItemNotFound
from switchyard.state.stores.memory import MemoryStore
from switchyard.state.stores.postgres import PostgresStore
from tests.support.postgres import free_port, postgres_server

pg = postgres_server()
T0 = 1_700_000_000
TTL = 3600


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def item(id: str, text: str = "") -> state_pb2.ConversationItem:
    return state_pb2.ConversationItem(id=id, item_json=orjson.dumps(
        {"id": id, "type": "message", "role": "user", "status": "completed",
         "content": [{"type": "input_text", "text": text or id}]}))


def conv(id: str = "conv_1", tenant: str = "acme", **metadata: str) -> state_pb2.Conversation:
    return state_pb2.Conversation(id=id, tenant=tenant, metadata_json=orjson.dumps(metadata))


def ids(items: list[state_pb2.ConversationItem]) -> list[str]:
    return [i.id for i in items]


def make_store(kind: str, request, clock: Clock, **bounds: int):
    if kind == "memory":
        return MemoryStore(ttl_seconds=TTL, purge_interval=0, clock=clock, **bounds)
    return PostgresStore(request.getfixturevalue("pg").create_database(), ttl_seconds=TTL,
                         purge_interval=0, clock=clock, **bounds)


@pytest.fixture(params=["memory", "postgres"])
async def env(request):
    """(store, clock) for each backend, with small bounds: 6 items, 2000 bytes."""
    clock = Clock()
    store = make_store(request.param, request, clock, max_items=6, max_bytes=2000)
    await store.start()
    try:
        yield store, clock
    finally:
        await store.close()


# ---- the Store contract -------------------------------------------------------------------

async def test_create_then_get_round_trips(env):
    store, _ = env
    created = await store.create_conversation(conv(topic="tea"), [item("m1"), item("m2")])
    assert (created.id, created.tenant, created.created_at, created.expires_at,
            created.item_count) == ("conv_1", "acme", T0, T0 + TTL, 2)
    assert orjson.loads(created.metadata_json) == {"topic": "tea"}
    assert await store.get_conversation("acme", "conv_1") == created
    items, more = await store.list_items("acme", "conv_1")
    assert ids(items) == ["m1", "m2"] and not more
    assert items[0].item_json == item("m1").item_json


async def test_items_keep_their_order_and_page_both_ways(env):
    store, _ = env
    await store.create_conversation(conv(), [item("a"), item("b")])
    await store.append_items("acme", "conv_1", [item("c"), item("d"), item("e")])
    assert ids((await store.list_items("acme", "conv_1"))[0]) == list("abcde")
    page, more = await store.list_items("acme", "conv_1", limit=2)
    assert ids(page) == ["a", "b"] and more
    page, more = await store.list_items("acme", "conv_1", after="b", limit=2)
    assert ids(page) == ["c", "d"] and more
    page, more = await store.list_items("acme", "conv_1", after="d", limit=2)
    assert ids(page) == ["e"] and not more
    page, more = await store.list_items("acme", "conv_1", descending=True, limit=3)
    assert ids(page) == ["e", "d", "c"] and more
    page, more = await store.list_items("acme", "conv_1", descending=True, after="c")
    assert ids(page) == ["b", "a"] and not more
    page, more = await store.list_items("acme", "conv_1", after="e", limit=5)
    assert page == [] and not more
    with pytest.raises(ItemNotFound):
        await store.list_items("acme", "conv_1", after="nope")


async def test_get_and_delete_one_item(env):
    store, clock = env
    await store.create_conversation(conv(), [item("a"), item("b"), item("c")])
    assert (await store.get_item("acme", "conv_1", "b")).item_json == item("b").item_json
    clock.now = T0 + 100
    after = await store.delete_item("acme", "conv_1", "b")
    assert after.item_count == 2 and after.expires_at == T0 + 100 + TTL
    assert ids((await store.list_items("acme", "conv_1"))[0]) == ["a", "c"]
    with pytest.raises(ItemNotFound):
        await store.get_item("acme", "conv_1", "b")
    with pytest.raises(ItemNotFound):
        await store.delete_item("acme", "conv_1", "b")
    with pytest.raises(ConversationNotFound):
        await store.get_item("acme", "conv_2", "a")
    # A deleted item's id may be used again; its room counts again too.
    await store.append_items("acme", "conv_1", [item("b")])
    assert ids((await store.list_items("acme", "conv_1"))[0]) == ["a", "c", "b"]


async def test_repeated_item_ids_refuse_the_whole_append(env):
    store, _ = env
    await store.create_conversation(conv(), [item("a")])
    with pytest.raises(InvalidInput):
        await store.append_items("acme", "conv_1", [item("b"), item("a")])
    with pytest.raises(InvalidInput):
        await store.append_items("acme", "conv_1", [item("c"), item("c")])
    with pytest.raises(InvalidInput):
        await store.create_conversation(conv("conv_2"), [item("x"), item("x")])
    assert ids((await store.list_items("acme", "conv_1"))[0]) == ["a"]
    assert await store.get_conversation("acme", "conv_2") is None
    assert (await store.get_conversation("acme", "conv_1")).item_count == 1


async def test_bounds_refuse_the_whole_append(env):
    store, _ = env
    await store.create_conversation(conv(), [item(f"m{i}") for i in range(5)])
    with pytest.raises(InvalidInput, match="at most 6 items"):
        await store.append_items("acme", "conv_1", [item("x"), item("y")])
    await store.append_items("acme", "conv_1", [item("m5")])          # exactly at the bound
    with pytest.raises(InvalidInput, match="at most 6 items"):
        await store.append_items("acme", "conv_1", [item("one-more")])
    with pytest.raises(InvalidInput, match="bytes"):
        await store.create_conversation(conv("conv_big"), [item("big", "x" * 3000)])
    assert (await store.get_conversation("acme", "conv_1")).item_count == 6
    assert await store.get_conversation("acme", "conv_big") is None
    await store.create_conversation(conv("conv_2"), [item("half", "x" * 1500)])
    with pytest.raises(InvalidInput, match="bytes"):
        await store.append_items("acme", "conv_2", [item("other-half", "y" * 600)])
    assert ids((await store.list_items("acme", "conv_2"))[0]) == ["half"]


async def test_metadata_update_and_delete(env):
    store, clock = env
    await store.create_conversation(conv(a="1"), [item("m")])
    clock.now = T0 + 50
    updated = await store.update_conversation("acme", "conv_1", orjson.dumps({"b": "2"}))
    assert orjson.loads(updated.metadata_json) == {"b": "2"}
    assert updated.expires_at == T0 + 50 + TTL and updated.created_at == T0
    assert await store.update_conversation("acme", "conv_9", b"{}") is None
    assert await store.delete_conversation("acme", "conv_1") is True
    assert await store.delete_conversation("acme", "conv_1") is False
    assert await store.get_conversation("acme", "conv_1") is None
    with pytest.raises(ConversationNotFound):
        await store.list_items("acme", "conv_1")
    with pytest.raises(ConversationNotFound):
        await store.append_items("acme", "conv_1", [item("n")])


async def test_another_tenant_sees_nothing(env):
    store, _ = env
    await store.create_conversation(conv(tenant="acme"), [item("secret")])
    assert await store.get_conversation("globex", "conv_1") is None
    assert await store.update_conversation("globex", "conv_1", b"{}") is None
    assert await store.delete_conversation("globex", "conv_1") is False
    for call in (store.list_items("globex", "conv_1"),
                 store.append_items("globex", "conv_1", [item("x")]),
                 store.get_item("globex", "conv_1", "secret"),
                 store.delete_item("globex", "conv_1", "secret")):
        with pytest.raises(ConversationNotFound):
            await call
    # The same id under two tenants is two conversations.
    await store.create_conversation(conv(tenant="globex"), [item("theirs")])
    assert ids((await store.list_items("acme", "conv_1"))[0]) == ["secret"]
    assert ids((await store.list_items("globex", "conv_1"))[0]) == ["theirs"]


async def test_writes_extend_the_expiry_and_expired_conversations_vanish(env):
    store, clock = env
    await store.create_conversation(conv(), [item("a")])
    clock.now = T0 + TTL - 1
    await store.append_items("acme", "conv_1", [item("b")])           # alive: extends
    clock.now = T0 + TTL + 10
    assert (await store.get_conversation("acme", "conv_1")).expires_at == T0 + 2 * TTL - 1
    clock.now = T0 + 2 * TTL - 1
    assert await store.get_conversation("acme", "conv_1") is None     # reads do not extend
    with pytest.raises(ConversationNotFound):
        await store.append_items("acme", "conv_1", [item("c")])
    with pytest.raises(ConversationNotFound):
        await store.list_items("acme", "conv_1")
    assert await store.delete_conversation("acme", "conv_1") is False


async def test_purge_drops_expired_conversations_with_their_items(pg):
    clock = Clock()
    dsn = pg.create_database()
    store = PostgresStore(dsn, ttl_seconds=TTL, purge_interval=0, clock=clock, purge_batch=2)
    await store.start()
    try:
        for n in range(5):
            await store.create_conversation(conv(f"conv_{n}"), [item("a"), item("b")])
        clock.now = T0 + 10
        await store.create_conversation(conv("conv_late"), [item("c")])
        clock.now = T0 + TTL
        assert await store.purge_expired() == 5
    finally:
        await store.close()
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM conversations") == 1
        assert await conn.fetchval("SELECT count(*) FROM conversation_items") == 1
    finally:
        await conn.close()


async def test_memory_purge_and_eviction_follow_the_last_write():
    clock = Clock()
    store = MemoryStore(max_entries=2, ttl_seconds=TTL, purge_interval=0, clock=clock)
    await store.create_conversation(conv("conv_a"), [])
    clock.now = T0 + 10
    await store.create_conversation(conv("conv_b"), [])
    clock.now = T0 + 20
    await store.append_items("acme", "conv_a", [item("x")])   # conv_a is now the newest
    await store.create_conversation(conv("conv_c"), [])        # evicts conv_b
    assert await store.get_conversation("acme", "conv_b") is None
    assert await store.get_conversation("acme", "conv_a") is not None
    clock.now = T0 + 20 + TTL
    assert store.purge_expired() == 2
    assert await store.get_conversation("acme", "conv_c") is None


async def test_a_database_of_the_previous_release_gains_conversations(pg):
    """Migration 0002 on a database that has only 0001 and stored responses: they stay."""
    dsn = pg.create_database()
    conn = await asyncpg.connect(dsn)
    try:
        assert await apply_migrations(conn, load_migrations()[:1]) == [1]
    finally:
        await conn.close()
    old = PostgresStore(dsn, purge_interval=0)
    old._pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    await old.put(state_pb2.StoredResponse(id="resp_old", tenant="acme", body_json=b"{}"))
    await old.close()
    store = PostgresStore(dsn, purge_interval=0)
    await store.start()
    try:
        assert (await store.get("acme", "resp_old")).body_json == b"{}"
        created = await store.create_conversation(conv(), [item("m")])
        assert created.item_count == 1
    finally:
        await store.close()


async def test_concurrent_appends_all_land_in_some_order(pg):
    store = PostgresStore(pg.create_database(), purge_interval=0)
    await store.start()
    try:
        await store.create_conversation(conv(), [])
        await asyncio.gather(*(store.append_items("acme", "conv_1", [item(f"{n}-a"),
                                                                      item(f"{n}-b")])
                               for n in range(10)))
        items, _ = await store.list_items("acme", "conv_1")
        assert len(items) == 20 and (await store.get_conversation("acme", "conv_1")
                                     ).item_count == 20
        order = ids(items)
        for n in range(10):   # each append's items stay together, in order
            assert order.index(f"{n}-b") == order.index(f"{n}-a") + 1
    finally:
        await store.close()


# ---- the service and the edge's client ------------------------------------------------------

@pytest.fixture(params=["memory", "postgres"])
async def client(request):
    """A StateClient of a servicer on a real port, over each backend (bounds: 4 items)."""
    store = make_store(request.param, request, Clock(), max_items=4, max_bytes=100_000)
    await store.start()
    server = grpc.aio.server()
    state_pb2_grpc.add_StateServicer_to_server(StateServicer(store), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    state = StateClient(f"127.0.0.1:{port}")
    try:
        yield state
    finally:
        await state.close()
        await server.stop(None)
        await store.close()


async def test_client_round_trip(client):
    created = await client.create_conversation("t1", b'{"k":"v"}', [item("m1")])
    assert created.id.startswith("conv_") and len(created.id) == 5 + 48
    assert created.tenant == "t1" and created.item_count == 1
    await client.append_items("t1", created.id, [item("m2"), item("m3")])
    page = await client.list_items("t1", created.id, limit=2, descending=True)
    assert ids(list(page.items)) == ["m3", "m2"] and page.has_more
    assert (await client.get_item("t1", created.id, "m2")).item_json == item("m2").item_json
    after = await client.delete_item("t1", created.id, "m2")
    assert after.item_count == 2
    updated = await client.update_conversation("t1", created.id, b'{"k":"w"}')
    assert updated.metadata_json == b'{"k":"w"}'
    assert (await client.get_conversation("t1", created.id)).item_count == 2
    await client.delete_conversation("t1", created.id)
    with pytest.raises(GatewayError) as info:
        await client.get_conversation("t1", created.id)
    assert info.value.http_status == 404


async def test_client_not_found_is_404_in_openais_words(client):
    created = await client.create_conversation("", b"{}", [item("m1")])
    assert created.tenant == "default"
    missing = "conv_" + "0" * 48
    for call in (client.get_conversation("", missing),
                 client.update_conversation("", missing, b"{}"),
                 client.delete_conversation("", missing),
                 client.append_items("", missing, [item("x")]),
                 client.list_items("", missing),
                 client.get_item("", missing, "m1"),
                 client.delete_item("", missing, "m1"),
                 client.get_conversation("other-tenant", created.id)):
        with pytest.raises(GatewayError) as info:
            await call
        assert info.value.http_status == 404 and info.value.type == "not_found"
        assert info.value.message.startswith("Conversation with id 'conv_")
        assert info.value.message.endswith("' not found.")
    for call in (client.get_item("", created.id, "nope"),
                 client.delete_item("", created.id, "nope")):
        with pytest.raises(GatewayError) as info:
            await call
        assert (info.value.http_status, info.value.message) == (
            404, "Item with id 'nope' not found.")
    with pytest.raises(GatewayError) as info:
        await client.list_items("", created.id, after="nope")
    assert info.value.http_status == 400 and "'after'" in info.value.message


@pytest.mark.parametrize("tenant, id", [("", "conv_\x00"), ("", "c" * 300), ("t\x00", "conv_1"),
                                        ("t" * 300, "conv_1")])
async def test_client_unusable_keys_are_400(client, tenant, id, caplog):
    caplog.set_level(logging.WARNING)
    for call in (client.get_conversation(tenant, id),
                 client.update_conversation(tenant, id, b"{}"),
                 client.delete_conversation(tenant, id),
                 client.append_items(tenant, id, [item("x")]),
                 client.list_items(tenant, id),
                 client.get_item(tenant, id, "x"),
                 client.delete_item(tenant, id, "x")):
        with pytest.raises(GatewayError) as info:
            await call
        assert info.value.http_status == 400 and "\x00" not in info.value.message
    assert "unavailable" not in caplog.text


async def test_client_bad_items_and_bounds_are_400(client):
    created = await client.create_conversation("", b"{}", [item("m1"), item("m2")])
    for items in ([item("m1")], [item("a"), item("a")], [item("")],
                  [item("x" * 300)], [item("ok\x00")]):
        with pytest.raises(GatewayError) as info:
            await client.append_items("", created.id, items)
        assert info.value.http_status == 400
    with pytest.raises(GatewayError) as info:
        await client.append_items("", created.id, [item("a"), item("b"), item("c")])
    assert info.value.http_status == 400 and "at most 4 items" in info.value.message
    with pytest.raises(GatewayError):
        await client.create_conversation("", b"{}", [item(f"m{i}") for i in range(5)])
    assert (await client.get_conversation("", created.id)).item_count == 2


async def test_unusable_keys_are_refused_before_the_store(caplog):
    """A servicer whose PostgreSQL store never started: any store call would be UNAVAILABLE,
    so INVALID_ARGUMENT proves each conversation RPC checks its keys first."""
    caplog.set_level(logging.WARNING)
    server = grpc.aio.server()
    state_pb2_grpc.add_StateServicer_to_server(
        StateServicer(PostgresStore(f"postgresql://127.0.0.1:{free_port()}/x")), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    bad = "conv_\x00"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = state_pb2_grpc.StateStub(ch)
            calls = [
                (stub.CreateConversation, state_pb2.CreateConversationRequest(tenant="t\x00")),
                (stub.CreateConversation, state_pb2.CreateConversationRequest(
                    items=[item("a"), item("a")])),
                (stub.GetConversation, state_pb2.ConversationKey(id=bad)),
                (stub.UpdateConversation, state_pb2.UpdateConversationRequest(id=bad)),
                (stub.DeleteConversation, state_pb2.ConversationKey(id="c" * 300)),
                (stub.AppendItems, state_pb2.AppendItemsRequest(conversation_id="conv_1",
                                                                items=[item("")])),
                (stub.ListItems, state_pb2.ListItemsRequest(conversation_id="conv_1",
                                                            after="a\x00")),
                (stub.ListItems, state_pb2.ListItemsRequest(conversation_id="conv_1",
                                                            limit=-1)),
                (stub.GetItem, state_pb2.ItemKey(conversation_id="conv_1", item_id="i" * 300)),
                (stub.DeleteItem, state_pb2.ItemKey(conversation_id=bad, item_id="i"))]
            for call, request in calls:
                with pytest.raises(grpc.aio.AioRpcError) as raw:
                    await call(request, timeout=5)
                assert raw.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
                assert "\x00" not in raw.value.details()
    finally:
        await server.stop(None)
    assert "unavailable" not in caplog.text
