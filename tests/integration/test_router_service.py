"""The router over real gRPC: Resolve, NOT_FOUND, WatchRoutes, ListModels and the edge's cache."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from switchyard.common.config import parse_config
from switchyard.common.errors import GatewayError
from switchyard.common.proto import router_pb2, router_pb2_grpc
from switchyard.edge.clients.router import RouteCache
from switchyard.router.service import RouterServicer
from tests.support.ports import free_port


def make_config(extra_alias: dict | None = None):
    return parse_config({
        "model_providers": [
            {"model": "openai/gpt-4o-mini", "access_key": "k", "default": True},
            {"model": "anthropic/*", "access_key": "k"},
        ],
        "model_aliases": {"fast-model": {"target": "gpt-4o-mini"}, **(extra_alias or {})},
    }, "cfg.yaml")



async def start_router(servicer: RouterServicer, port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    router_pb2_grpc.add_RouterServicer_to_server(servicer, server)
    assert server.add_insecure_port(f"127.0.0.1:{port}") == port
    await server.start()
    return server


async def until(cond, timeout: float = 5.0) -> None:
    """Poll `cond` until true or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


@pytest.fixture
async def router():
    port = free_port()
    servicer = RouterServicer(make_config())
    server = await start_router(servicer, port)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield servicer, router_pb2_grpc.RouterStub(channel), port
    await channel.close()
    await server.stop(0)


async def test_resolve_and_not_found(router):
    _, stub, _ = router
    plan = await stub.Resolve(router_pb2.ResolveRequest(model="fast-model"), timeout=2)
    assert [(t.provider, t.model) for t in plan.targets] == [("openai/gpt-4o-mini", "gpt-4o-mini")]
    plan = await stub.Resolve(router_pb2.ResolveRequest(model="claude-3-5-haiku-latest"), timeout=2)
    assert plan.targets[0].provider == "anthropic/*"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Resolve(router_pb2.ResolveRequest(model="gpt-4o-mnii"), timeout=2)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details().startswith(
        "The model 'gpt-4o-mnii' does not exist. Available models: gpt-4o-mini")


async def test_list_models(router):
    _, stub, _ = router
    reply = await stub.ListModels(router_pb2.ListModelsRequest(), timeout=2)
    assert [(m.id, m.owned_by) for m in reply.models] == [("gpt-4o-mini", "openai"),
                                                          ("fast-model", "switchyard")]


async def test_watch_routes_sends_now_and_on_change(router):
    servicer, stub, _ = router
    call = stub.WatchRoutes(router_pb2.WatchRoutesRequest())
    first = await asyncio.wait_for(call.read(), 2)
    assert first.version == 1 and "fast-model" in first.routes and "new-alias" not in first.routes
    await servicer.update(make_config({"new-alias": {"target": "claude-3-opus-latest"}}))
    second = await asyncio.wait_for(call.read(), 2)
    assert second.version == 2
    assert second.routes["new-alias"].targets[0].model == "claude-3-opus-latest"
    call.cancel()


async def test_route_cache_lookup_resolve_and_errors(router):
    servicer, _, port = router
    async with RouteCache(f"127.0.0.1:{port}") as cache:
        assert await cache.wait_ready(5)
        assert cache.lookup("fast-model").targets[0].model == "gpt-4o-mini"
        assert cache.lookup("") is not None               # the default entry
        assert cache.lookup("claude-3-opus-latest") is None  # wildcard: not in the table
        plan = await cache.resolve("claude-3-opus-latest")
        assert plan.targets[0].provider == "anthropic/*"
        assert cache.lookup("claude-3-opus-latest") == plan  # positive answer cached
        with pytest.raises(GatewayError) as info:
            await cache.resolve("nope")
        assert info.value.http_status == 404 and "Available models" in info.value.message
        assert [m.id for m in cache.models().models] == ["gpt-4o-mini", "fast-model"]
        await servicer.update(make_config({"later": {"target": "gpt-4o-mini"}}))
        await until(lambda: cache.lookup("later") is not None)
        assert cache.version == 2


async def test_route_cache_survives_router_restart():
    port = free_port()
    server = await start_router(RouterServicer(make_config()), port)
    cache = RouteCache(f"127.0.0.1:{port}", resolve_timeout=0.3)
    try:
        assert await cache.wait_ready(5)
        await server.stop(0)
        await until(lambda: not cache.connected)
        # the last table keeps answering; names it cannot answer are a 503
        assert (await cache.resolve("fast-model")).targets[0].model == "gpt-4o-mini"
        with pytest.raises(GatewayError) as info:
            await cache.resolve("claude-3-opus-latest")
        assert info.value.http_status == 503
        server = await start_router(
            RouterServicer(make_config({"after-restart": {"target": "gpt-4o-mini"}})), port)
        await until(lambda: cache.lookup("after-restart") is not None, timeout=10)
        assert cache.connected
        assert (await cache.resolve("claude-3-opus-latest")).targets[0].model == \
            "claude-3-opus-latest"
    finally:
        await cache.close()
        await server.stop(0)


async def test_route_cache_wait_ready_times_out_without_router():
    cache = RouteCache(f"127.0.0.1:{free_port()}", resolve_timeout=0.2)
    try:
        assert not await cache.wait_ready(0.3)
        assert cache.lookup("fast-model") is None and cache.models().models == []
        with pytest.raises(GatewayError) as info:
            await cache.resolve("fast-model")
        assert info.value.http_status == 503
    finally:
        await cache.close()


async def test_config_file_changes_are_published(tmp_path, caplog):
    from switchyard.common.config import load_config
    from switchyard.router.service import watch_config_file
    path = tmp_path / "plano_config.yaml"
    path.write_text("model_providers:\n  - model: ollama/llama3.1\n")
    servicer = RouterServicer(load_config(path))
    task = watch_config_file(servicer, str(path), interval=0.02)
    try:
        path.write_text("model_providers:\n  - model: ollama/llama3.1\n"
                        "model_aliases:\n  local: {target: llama3.1}\n")
        await until(lambda: servicer.version == 2)
        assert "local" in servicer.table.routes
        path.write_text("model_providers:\n  - model: nowhere/x\n")   # broken edit
        await until(lambda: "config reload failed" in caplog.text)
        assert "unknown provider 'nowhere'" in caplog.text
        assert servicer.version == 2 and "local" in servicer.table.routes
    finally:
        task.cancel()
