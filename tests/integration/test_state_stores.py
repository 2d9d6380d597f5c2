"""The Store contract, run against both backends (memory and a real PostgreSQL)."""
from __future__ import annotations

import asyncio

import pytest

from switchyard.common.proto import chat_pb2, state_pb2
from switchyard.state.stores.base import NotFound, TooDeep
from switchyard.state.stores.memory import MemoryStore
from switchyard.state.stores.postgres import PostgresStore
from tests.support.postgres import postgres_server

pg = postgres_server()
T0 = 1_700_000_000


class Clock:
    """A settable clock so expiry is tested without waiting."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def msg(role: int, text: str) -> chat_pb2.Message:
    part = chat_pb2.ContentPart(text=chat_pb2.TextPart(text=text))
    return chat_pb2.Message(role=role, parts=[part])


def resp(id: str, prev: str = "", tenant: str = "acme", expires_at: int = 0,
         says: str | None = None) -> state_pb2.StoredResponse:
    return state_pb2.StoredResponse(
        id=id, tenant=tenant, model="gpt-4o-mini", provider="openai/gpt-4o-mini",
        previous_response_id=prev, kind="response",
        input=[msg(chat_pb2.ROLE_USER, f"q {id}")],
        output=[msg(chat_pb2.ROLE_ASSISTANT, says or f"a {id}")],
        usage=chat_pb2.Usage(input_tokens=3, output_tokens=5, cache_read_tokens=1),
        created_at=T0, expires_at=expires_at, body_json=b'{"id":"%s"}' % id.encode(),
        input_items_json=b'[{"role":"user","content":"q %s"}]' % id.encode())


def texts(messages: list[chat_pb2.Message]) -> list[str]:
    return [m.parts[0].text.text for m in messages]


@pytest.fixture(params=["memory", "postgres"])
async def env(request):
    """(store, clock) for each backend; postgres gets a fresh database per test."""
    clock = Clock()
    if request.param == "memory":
        store = MemoryStore(max_entries=10_000, ttl_seconds=3600, purge_interval=0, clock=clock)
    else:
        server = request.getfixturevalue("pg")
        store = PostgresStore(server.create_database(), ttl_seconds=3600, purge_interval=0,
                              clock=clock)
    await store.start()
    try:
        yield store, clock
    finally:
        await store.close()


async def test_put_then_get_round_trips_every_field(env):
    store, _ = env
    original = resp("resp_1", prev="", expires_at=T0 + 60)
    await store.put(original)
    got = await store.get("acme", "resp_1")
    assert got == original


async def test_get_absent_is_none(env):
    store, _ = env
    assert await store.get("acme", "nope") is None
    assert await store.input_items("acme", "nope") is None


async def test_zero_expiry_means_default_ttl_and_created_at_defaults_to_now(env):
    store, _ = env
    r = resp("resp_ttl")
    r.created_at = 0
    await store.put(r)
    got = await store.get("acme", "resp_ttl")
    assert got.expires_at == T0 + 3600
    assert got.created_at == T0


async def test_history_two_and_three_turns_oldest_first(env):
    store, _ = env
    await store.put(resp("r1"))
    await store.put(resp("r2", prev="r1"))
    messages, ids = await store.history("acme", "r2", 10)
    assert ids == ["r1", "r2"]
    assert texts(messages) == ["q r1", "a r1", "q r2", "a r2"]
    assert [m.role for m in messages] == [chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT] * 2
    await store.put(resp("r3", prev="r2"))
    messages, ids = await store.history("acme", "r3", 10)
    assert ids == ["r1", "r2", "r3"]
    assert texts(messages) == ["q r1", "a r1", "q r2", "a r2", "q r3", "a r3"]


async def test_history_of_a_branch_follows_only_its_own_ancestors(env):
    store, _ = env
    await store.put(resp("root"))
    await store.put(resp("left", prev="root"))
    await store.put(resp("right", prev="root"))
    _, ids = await store.history("acme", "right", 10)
    assert ids == ["root", "right"]


async def test_history_unknown_id_is_not_found(env):
    store, _ = env
    with pytest.raises(NotFound):
        await store.history("acme", "missing", 10)


async def test_put_is_an_idempotent_upsert(env):
    store, _ = env
    await store.put(resp("r1", says="first"))
    await store.put(resp("r1", says="first"))
    await store.put(resp("r2", prev="r1"))
    messages, ids = await store.history("acme", "r2", 10)
    assert ids == ["r1", "r2"]
    await store.put(resp("r1", says="second"))
    messages, ids = await store.history("acme", "r2", 10)
    assert ids == ["r1", "r2"]
    assert texts(messages)[1] == "second"


async def test_expired_records_are_invisible_immediately(env):
    store, clock = env
    await store.put(resp("old", expires_at=T0 + 10))
    await store.put(resp("new", prev="old", expires_at=T0 + 100))
    assert (await store.history("acme", "new", 10))[1] == ["old", "new"]
    clock.now = T0 + 10
    assert await store.get("acme", "old") is None
    assert await store.input_items("acme", "old") is None
    with pytest.raises(NotFound):
        await store.history("acme", "old", 10)
    # an expired ancestor ends the chain: the conversation continues without it
    messages, ids = await store.history("acme", "new", 10)
    assert ids == ["new"]
    assert texts(messages) == ["q new", "a new"]
    clock.now = T0 + 100
    assert await store.get("acme", "new") is None


async def test_expiry_in_the_past_is_never_visible(env):
    store, _ = env
    await store.put(resp("gone", expires_at=T0 - 1))
    assert await store.get("acme", "gone") is None


async def test_delete(env):
    store, _ = env
    await store.put(resp("r1"))
    await store.put(resp("r2", prev="r1"))
    assert await store.delete("acme", "r2") is True
    assert await store.get("acme", "r2") is None
    assert await store.delete("acme", "r2") is False
    assert await store.delete("acme", "never") is False
    # deleting an ancestor ends later chains there
    await store.put(resp("r3", prev="r2"))
    assert (await store.history("acme", "r3", 10))[1] == ["r3"]


async def test_tenants_are_isolated(env):
    store, _ = env
    await store.put(resp("shared", tenant="a", says="for a"))
    assert await store.get("b", "shared") is None
    assert await store.input_items("b", "shared") is None
    with pytest.raises(NotFound):
        await store.history("b", "shared", 10)
    assert await store.delete("b", "shared") is False
    await store.put(resp("shared", tenant="b", says="for b"))
    assert texts((await store.get("a", "shared")).output) == ["for a"]
    assert texts((await store.get("b", "shared")).output) == ["for b"]
    # a chain never crosses tenants, even when the parent id exists elsewhere
    await store.put(resp("child", prev="parent_only_in_a", tenant="b"))
    await store.put(resp("parent_only_in_a", tenant="a"))
    assert (await store.history("b", "child", 10))[1] == ["child"]


async def test_depth_limit(env):
    store, _ = env
    prev = ""
    for i in range(5):
        await store.put(resp(f"d{i}", prev=prev))
        prev = f"d{i}"
    assert (await store.history("acme", "d4", 5))[1] == ["d0", "d1", "d2", "d3", "d4"]
    with pytest.raises(TooDeep, match="conversation longer than 4 turns"):
        await store.history("acme", "d4", 4)
    assert (await store.history("acme", "d3", 4))[1] == ["d0", "d1", "d2", "d3"]


async def test_cycle_ends_the_chain(env):
    store, _ = env
    await store.put(resp("c1"))
    await store.put(resp("c2", prev="c1"))
    await store.put(resp("c1", prev="c2"))  # an overwrite closes a loop
    _, ids = await store.history("acme", "c2", 10)
    assert ids == ["c1", "c2"]


async def test_input_items(env):
    store, _ = env
    await store.put(resp("r1"))
    assert await store.input_items("acme", "r1") == b'[{"role":"user","content":"q r1"}]'


async def test_concurrent_puts_do_not_cross_talk(env):
    store, _ = env
    n = 100
    await asyncio.gather(*(store.put(resp(f"c{i}", tenant=f"t{i % 7}", says=f"answer {i}"))
                           for i in range(n)))
    got = await asyncio.gather(*(store.get(f"t{i % 7}", f"c{i}") for i in range(n)))
    assert [texts(g.output) for g in got] == [[f"answer {i}"] for i in range(n)]
    histories = await asyncio.gather(*(store.history(f"t{i % 7}", f"c{i}", 10)
                                       for i in range(n)))
    assert [ids for _, ids in histories] == [[f"c{i}"] for i in range(n)]
