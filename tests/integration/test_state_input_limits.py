"""The state service defends itself: unusable ids, tenants and text are INVALID_ARGUMENT
(400 at the edge) before any store call, and PostgreSQL's own refusals of a value are
INVALID_ARGUMENT too — never UNAVAILABLE, never a "backend unavailable" warning."""
from __future__ import annotations

import logging
import os

import grpc
import pytest

from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, state_pb2, state_pb2_grpc
from switchyard.edge.clients.state import StateClient
from switchyard.state.service import StateServicer
from switchyard.state.stores.base import InvalidInput
from switchyard.state.stores.postgres import PostgresStore
from tests.support.postgres import free_port, postgres_server

pg = postgres_server()

BAD_KEYS = [("", "resp_\x00"), ("", "r" * 20_000), ("team\x00", "resp_1"), ("t" * 300, "r1")]


def resp(id: str = "r1", tenant: str = "t", **fields: str) -> state_pb2.StoredResponse:
    return state_pb2.StoredResponse(
        id=id, tenant=tenant, body_json=b'{"id":"%s"}' % id.encode(),
        input=[chat_pb2.Message(role=chat_pb2.ROLE_USER,
                                parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="hi"))])],
        **{"kind": "response", **fields})


async def serve(store) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    state_pb2_grpc.add_StateServicer_to_server(StateServicer(store, max_depth=3), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def unreachable_backend():
    """A servicer whose store was never started: any store call would be UNAVAILABLE, so an
    INVALID_ARGUMENT proves the request was refused before the store."""
    server, address = await serve(PostgresStore(f"postgresql://127.0.0.1:{free_port()}/x"))
    try:
        yield address
    finally:
        await server.stop(None)


@pytest.mark.parametrize("tenant, id", BAD_KEYS)
async def test_bad_keys_are_invalid_argument_before_the_store(unreachable_backend, tenant, id,
                                                              caplog):
    caplog.set_level(logging.WARNING)
    async with grpc.aio.insecure_channel(unreachable_backend) as ch:
        stub = state_pb2_grpc.StateStub(ch)
        for call, req in ((stub.Get, state_pb2.GetRequest),
                          (stub.GetHistory, state_pb2.GetHistoryRequest),
                          (stub.Delete, state_pb2.DeleteRequest),
                          (stub.ListInputItems, state_pb2.ListInputItemsRequest)):
            with pytest.raises(grpc.aio.AioRpcError) as raw:
                await call(req(id=id, tenant=tenant), timeout=5)
            assert raw.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert len(raw.value.details()) < 80 and "\x00" not in raw.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await stub.Put(state_pb2.PutRequest(response=resp(id, tenant)), timeout=5)
        assert raw.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with StateClient(unreachable_backend) as client:
        with pytest.raises(GatewayError) as info:
            await client.history(tenant, id)
    assert info.value.http_status == 400 and info.value.type == "invalid_request"
    assert "unavailable" not in caplog.text


@pytest.mark.parametrize("field", ["model", "provider", "kind", "previous_response_id"])
async def test_put_with_nul_text_is_invalid_argument(unreachable_backend, field):
    async with StateClient(unreachable_backend) as client:
        with pytest.raises(GatewayError) as info:
            await client.put(resp(**{field: "a\x00b"}))
    assert info.value.http_status == 400 and field in info.value.message


async def test_postgres_refusing_a_value_is_invalid_input_not_unavailable(pg, caplog):
    caplog.set_level(logging.WARNING)
    store = PostgresStore(pg.create_database(), purge_interval=0)
    await store.start()
    try:
        await store.put(resp("kept"))
        # What the service refuses first, straight at the store: PostgreSQL's own errors.
        with pytest.raises(InvalidInput):
            await store.put(resp(model="gpt\x00"))             # text cannot hold NUL
        with pytest.raises(InvalidInput):
            await store.get("t", "resp_\x00")
        with pytest.raises(InvalidInput):                      # key over the btree row limit
            await store.put(resp(os.urandom(10_000).hex()))
        got = await store.get("t", "kept")                     # the store is fine afterwards
        assert got is not None and got.body_json == b'{"id":"kept"}'
    finally:
        await store.close()
    assert "unavailable" not in caplog.text


async def test_service_on_postgres_answers_bad_ids_with_400_and_keeps_serving(pg, caplog):
    caplog.set_level(logging.WARNING)
    store = PostgresStore(pg.create_database(), purge_interval=0)
    await store.start()
    server, address = await serve(store)
    try:
        async with StateClient(address) as client:
            await client.put(resp("resp_1", tenant=""))
            for tenant, id in BAD_KEYS:
                with pytest.raises(GatewayError) as info:
                    await client.get(tenant, id)
                assert info.value.http_status == 400
            assert (await client.get("", "resp_1")).body_json == b'{"id":"resp_1"}'
    finally:
        await server.stop(None)
        await store.close()
    assert "unavailable" not in caplog.text
