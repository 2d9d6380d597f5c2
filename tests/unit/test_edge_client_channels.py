"""Every edge client channel comes from the one factory, with its one option list, at the
addresses of the loaded config."""
from __future__ import annotations

import grpc
import pytest

from switchyard.common.config import parse_config
from switchyard.common.grpc_server import CHANNEL_OPTIONS
from switchyard.edge.clients import channel
from switchyard.edge.clients.backends import Backends
from switchyard.edge.clients.router import RouteCache
from switchyard.edge.clients.state import StateClient


@pytest.fixture
def opened(monkeypatch):
    """(target, options) of every channel opened through grpc.aio.insecure_channel."""
    calls: list[tuple[str, object]] = []
    real = grpc.aio.insecure_channel

    def recording(target, options=None, *args, **kwargs):
        calls.append((target, options))
        return real(target, options, *args, **kwargs)
    monkeypatch.setattr(grpc.aio, "insecure_channel", recording)
    return calls


def test_the_option_list():
    options = dict(channel.CLIENT_OPTIONS)
    assert len(options) == len(channel.CLIENT_OPTIONS)   # no key set twice
    assert set(CHANNEL_OPTIONS) <= set(channel.CLIENT_OPTIONS)   # shared keepalive and sizes
    assert options["grpc.lb_policy_name"] == "round_robin"
    assert options["grpc.enable_retries"] == 0
    assert options["grpc.initial_reconnect_backoff_ms"] == 100
    assert options["grpc.min_reconnect_backoff_ms"] == 100
    assert options["grpc.max_reconnect_backoff_ms"] <= 2000


@pytest.mark.parametrize("address, target", [
    ("127.0.0.1:12001", "dns:///127.0.0.1:12001"),
    ("router.svc:7001", "dns:///router.svc:7001"),
    ("dns:///router.svc:7001", "dns:///router.svc:7001"),
    ("ipv4://10.0.0.1:7001", "ipv4://10.0.0.1:7001"),
    ("unix:/run/state.sock", "unix:/run/state.sock"),
])
def test_targets(address, target):
    assert channel.target(address) == target


async def test_each_client_uses_the_one_list(opened):
    cache = RouteCache("router.svc:7001")   # inside a loop: opens its channel at once
    state = StateClient("state.svc:7003")
    try:
        assert opened == [("dns:///router.svc:7001", channel.CLIENT_OPTIONS),
                          ("dns:///state.svc:7003", channel.CLIENT_OPTIONS)]
    finally:
        await cache.close()
        await state.close()


async def test_backends_open_every_channel_at_the_configured_addresses(opened, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_STATE_ADDR", "state.svc:9000")
    monkeypatch.delenv("SWITCHYARD_ROUTER_ADDR", raising=False)
    monkeypatch.delenv("SWITCHYARD_PROVIDERS_ADDR", raising=False)
    config = parse_config({"model_providers": [{"model": "ollama/llama3.1"}],
                           "services": {"router": "router.svc:7001",
                                        "providers": "providers.svc:7002"}})
    be = Backends(config)
    try:
        assert be.addresses == {"router": "router.svc:7001", "providers": "providers.svc:7002",
                                "state": "state.svc:9000"}
        # A client channel per backend, plus one health-check channel each.
        assert sorted(t for t, _ in opened) == sorted(
            f"dns:///{a}" for a in be.addresses.values() for _ in range(2))
        assert all(options is channel.CLIENT_OPTIONS for _, options in opened)
    finally:
        await be.close()
