"""The internal token over real gRPC: backends built by `new_server` refuse callers without
it, the edge's channels send it, health stays open; and the refuse-to-start rule."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.common.config import parse_config
from switchyard.common.grpc_server import is_serving, new_server
from switchyard.common.internal_auth import METADATA_KEY, TOKEN_ENV, TOKEN_FILE_ENV
from switchyard.common.proto import router_pb2, router_pb2_grpc, state_pb2, state_pb2_grpc
from switchyard.edge.clients.channel import open_channel
from switchyard.edge.clients.state import StateClient
from switchyard.router.service import RouterServicer
from switchyard.state.service import StateServicer
from switchyard.state.stores.memory import MemoryStore
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-internal-token"


@pytest.fixture(autouse=True)
def _no_token_env(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)


@pytest.fixture
async def backend():
    """A state and router servicer on one real port, requiring TOKEN; yields its address."""
    server, health_servicer = new_server(TOKEN)
    store = MemoryStore(purge_interval=0)
    state_pb2_grpc.add_StateServicer_to_server(StateServicer(store), server)
    router_pb2_grpc.add_RouterServicer_to_server(RouterServicer(parse_config(
        {"model_providers": [{"model": "openai/gpt-4o-mini", "access_key": "k"}]})), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.mark.parametrize("metadata", [None, ((METADATA_KEY, "wrong"),),
                                      ((METADATA_KEY, TOKEN[:-1]),),
                                      (("authorization", f"Bearer {TOKEN}"),)])
async def test_calls_without_the_right_token_are_unauthenticated(backend, metadata):
    async with grpc.aio.insecure_channel(backend) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await state_pb2_grpc.StateStub(ch).Get(
                state_pb2.GetRequest(id="resp_1"), metadata=metadata, timeout=5)
        assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert TOKEN not in (unary.value.details() or "")
        # A streaming method is refused the same way, before any message.
        watch = router_pb2_grpc.RouterStub(ch).WatchRoutes(
            router_pb2.WatchRoutesRequest(), metadata=metadata, timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as stream:
            await watch.read()
        assert stream.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_right_token_gets_through(backend):
    async with grpc.aio.insecure_channel(backend) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await state_pb2_grpc.StateStub(ch).Get(
                state_pb2.GetRequest(id="resp_1"), metadata=((METADATA_KEY, TOKEN),), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND   # reached the servicer
        table = await router_pb2_grpc.RouterStub(ch).WatchRoutes(
            router_pb2.WatchRoutesRequest(), metadata=((METADATA_KEY, TOKEN),), timeout=5).read()
        assert table.ByteSize() > 0   # a real route table came back


async def test_health_needs_no_token(backend):
    assert await is_serving(backend)
    async with grpc.aio.insecure_channel(backend) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_edge_channel_sends_the_token_from_the_environment(backend, monkeypatch):
    from tests.integration.test_state_service import resp
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    client = StateClient(backend)
    try:
        await client.put(resp("r1"))
        assert (await client.get("", "r1")).id == "r1"
    finally:
        await client.close()


async def test_the_edge_channel_reads_the_token_file(backend, monkeypatch, tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    monkeypatch.setenv(TOKEN_FILE_ENV, str(path))
    channel = open_channel(backend)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await state_pb2_grpc.StateStub(channel).Get(state_pb2.GetRequest(id="x"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await channel.close()


def _serve_state(tmp_path: Path, *flags: str, **env: str) -> subprocess.Popen[str]:
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text("model_providers:\n  - model: ollama/llama3.1\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "switchyard", "serve", "state", "--config", str(cfg), *flags],
        cwd=ROOT, env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _wait_serving(proc: subprocess.Popen[str], address: str, timeout: float = 20.0) -> None:
    import asyncio
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()[1]
        if asyncio.run(is_serving(address)):
            return
        time.sleep(0.05)  # polling a condition under a deadline
    raise AssertionError(f"{address} not serving within {timeout}s")


def test_a_backend_beyond_loopback_refuses_to_start_without_a_token(tmp_path):
    proc = _serve_state(tmp_path, SWITCHYARD_STATE_LISTEN=f"0.0.0.0:{free_port()}")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0" in lines[0]
    assert TOKEN_ENV in lines[0] and "--insecure" in lines[0]


@pytest.mark.parametrize("flags, env", [(("--insecure",), {}), ((), {TOKEN_ENV: TOKEN})])
def test_with_a_token_or_insecure_it_starts(tmp_path, flags, env):
    port = free_port()
    proc = _serve_state(tmp_path, *flags, SWITCHYARD_STATE_LISTEN=f"0.0.0.0:{port}", **env)
    try:
        _wait_serving(proc, f"127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_on_loopback_no_token_is_needed(tmp_path):
    port = free_port()
    proc = _serve_state(tmp_path, SWITCHYARD_STATE_ADDR=f"127.0.0.1:{port}")
    try:
        _wait_serving(proc, f"127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_a_taken_address_is_one_line_and_a_non_zero_exit(tmp_path):
    import socket
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        proc = _serve_state(tmp_path, SWITCHYARD_STATE_ADDR=address)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode != 0
    said = [line for line in err.splitlines() if line.startswith("switchyard state:")]
    assert len(said) == 1, err   # one line of its own (log lines aside), no traceback
    assert f"cannot listen on {address}: address already in use" in said[0]
    assert "Traceback" not in err and "Errno" not in err
