"""The State gRPC service and StateClient over real channels, and restarts with PostgreSQL."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from switchyard.common.errors import GatewayError
from switchyard.common.grpc_server import is_serving
from switchyard.common.proto import chat_pb2, state_pb2, state_pb2_grpc
from switchyard.edge.clients.errors import STATE_UNAVAILABLE_MESSAGE
from switchyard.edge.clients.state import StateClient
from switchyard.state.service import StateServicer
from switchyard.state.stores.memory import MemoryStore
from switchyard.state.stores.postgres import PostgresStore
from tests.support.postgres import PostgresServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def resp(id: str, prev: str = "", tenant: str = "") -> state_pb2.StoredResponse:
    return state_pb2.StoredResponse(
        id=id, tenant=tenant, previous_response_id=prev, kind="response",
        input=[chat_pb2.Message(role=chat_pb2.ROLE_USER,
                                parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text=id))])],
        output=[chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT)],
        body_json=b'{"id":"%s"}' % id.encode(), input_items_json=b"[1,2]")


async def start_server(store) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    state_pb2_grpc.add_StateServicer_to_server(StateServicer(store, max_depth=3), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def served():
    """(client, store, address) for a memory-backed servicer on a real port."""
    store = MemoryStore(purge_interval=0)
    server, address = await start_server(store)
    client = StateClient(address)
    try:
        yield client, store, address
    finally:
        await client.close()
        await server.stop(None)


async def test_round_trip_through_the_client(served):
    client, store, _ = served
    await client.put(resp("r1"))
    await client.put(resp("r2", prev="r1"))
    got = await client.get("", "r2")
    assert got.id == "r2" and got.previous_response_id == "r1" and got.tenant == "default"
    assert got.expires_at > time.time()
    assert [m.parts[0].text.text for m in await client.history("", "r2") if m.parts] == \
        ["r1", "r2"]
    reply = await client.history_reply("", "r2")
    assert list(reply.response_ids) == ["r1", "r2"]
    assert await client.input_items("", "r1") == b"[1,2]"
    assert await client.delete("", "r1") is True
    assert await client.delete("", "r1") is False
    assert list((await client.history_reply("", "r2")).response_ids) == ["r2"]


async def test_empty_tenant_is_the_default_tenant(served):
    client, store, _ = served
    await client.put(resp("x"))
    assert await store.get("default", "x") is not None
    assert (await client.get("default", "x")).id == "x"
    with pytest.raises(GatewayError) as info:
        await client.get("other", "x")
    assert info.value.http_status == 404


async def test_not_found_is_404_with_the_id(served):
    client, _, _ = served
    for call in (client.get, client.history, client.input_items):
        with pytest.raises(GatewayError) as info:
            await call("", "resp_missing")
        assert info.value.http_status == 404
        assert info.value.type == "not_found"
        assert info.value.message == "No response found with id 'resp_missing'."


async def test_too_deep_is_400_naming_the_limit(served):
    client, _, address = served
    prev = ""
    for i in range(4):
        await client.put(resp(f"d{i}", prev=prev))
        prev = f"d{i}"
    assert len(await client.history("", "d2")) == 6
    with pytest.raises(GatewayError) as info:
        await client.history("", "d3")
    assert info.value.http_status == 400
    assert "conversation longer than 3 turns" in info.value.message
    async with grpc.aio.insecure_channel(address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await state_pb2_grpc.StateStub(ch).GetHistory(
                state_pb2.GetHistoryRequest(id="d3"), timeout=2)
    assert raw.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_put_without_id_is_400(served):
    client, _, _ = served
    with pytest.raises(GatewayError) as info:
        await client.put(state_pb2.StoredResponse())
    assert info.value.http_status == 400


async def test_backend_failure_is_unavailable_and_503():
    store = PostgresStore(f"postgresql://127.0.0.1:{free_port()}/x")   # never started
    server, address = await start_server(store)
    try:
        async with grpc.aio.insecure_channel(address) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as raw:
                await state_pb2_grpc.StateStub(ch).Get(state_pb2.GetRequest(id="a"), timeout=2)
        assert raw.value.code() == grpc.StatusCode.UNAVAILABLE
        async with StateClient(address) as client:
            with pytest.raises(GatewayError) as info:
                await client.history("", "a")
        assert info.value.http_status == 503
        assert info.value.message == STATE_UNAVAILABLE_MESSAGE
    finally:
        await server.stop(None)


async def test_unreachable_service_is_503_quickly():
    async with StateClient(f"127.0.0.1:{free_port()}", read_timeout=0.5,
                           write_timeout=0.5) as client:
        started = time.monotonic()
        for call in (client.get, client.delete):
            with pytest.raises(GatewayError) as info:
                await call("", "x")
            assert info.value.http_status == 503
        with pytest.raises(GatewayError) as info:
            await client.put(resp("x"))
        assert info.value.http_status == 503
        assert time.monotonic() - started < 5


def _spawn_state(dsn: str, address: str) -> subprocess.Popen:
    """The state service as its own process, started through `serve()`."""
    script = (
        "import asyncio, sys\n"
        "from switchyard.common.config.model import Config, Listener, ServiceAddresses,"
        " StateStorage\n"
        "from switchyard.state.service import serve\n"
        "cfg = Config(path='test', version='v0.3.0', listener=Listener(), providers=(),"
        " aliases={}, state=StateStorage(type='postgres', connection_string=sys.argv[1]),"
        " services=ServiceAddresses())\n"
        "asyncio.run(serve(cfg, sys.argv[2]))\n")
    return subprocess.Popen([sys.executable, "-c", script, dsn, address], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


async def _wait_serving(proc: subprocess.Popen, address: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await is_serving(address, timeout=0.5):
        assert proc.poll() is None, f"state service exited with {proc.returncode}"
        assert time.monotonic() < deadline, "state service did not become healthy"
        await asyncio.sleep(0.05)


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


async def test_conversation_survives_restarts_of_the_service_and_of_postgres():
    with PostgresServer() as pg:
        dsn = pg.create_database()
        address = f"127.0.0.1:{free_port()}"
        proc = _spawn_state(dsn, address)
        client = StateClient(address)
        try:
            await _wait_serving(proc, address)
            await client.put(resp("t1", tenant="acme"))
            await client.put(resp("t2", prev="t1", tenant="acme"))
            assert _stop(proc) == 0

            proc = _spawn_state(dsn, address)          # a new state process, same database
            await _wait_serving(proc, address)
            reply = await client.history_reply("acme", "t2")
            assert list(reply.response_ids) == ["t1", "t2"]

            await asyncio.to_thread(pg.restart)         # PostgreSQL itself restarts
            reply = await client.history_reply("acme", "t2")
            assert list(reply.response_ids) == ["t1", "t2"]
            await client.put(resp("t3", prev="t2", tenant="acme"))
            assert len((await client.history_reply("acme", "t3")).response_ids) == 3
        finally:
            await client.close()
            if proc.poll() is None:
                _stop(proc)
