"""Every edge client channel comes from the one factory, with its one option list: one per
endpoint of the loaded config's addresses (lists and resolved names)."""
from __future__ import annotations

import grpc
import pytest

from switchyard.common.config import parse_config
from switchyard.common.grpc_server import CHANNEL_OPTIONS
from switchyard.edge.clients import channel
from switchyard.edge.clients.backends import Backends
from switchyard.edge.clients.endpoints import EndpointSet, dns_name
from switchyard.edge.clients.router import RouteCache
from switchyard.edge.clients.state import StateClient
from tests.support.postgres import free_port


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
    # One address per channel: a GOAWAY shows as the channel leaving READY.
    assert options["grpc.lb_policy_name"] == "pick_first"
    assert options["grpc.enable_retries"] == 0
    assert options["grpc.initial_reconnect_backoff_ms"] == 100
    assert options["grpc.min_reconnect_backoff_ms"] == 100
    assert options["grpc.max_reconnect_backoff_ms"] <= 2000


@pytest.mark.parametrize("address, target", [
    ("127.0.0.1:12001", "dns:///127.0.0.1:12001"),
    ("router.svc:7001", "dns:///router.svc:7001"),
    ("dns:///router.svc:7001", "dns:///router.svc:7001"),
    ("ipv4://10.0.0.1:7001", "ipv4://10.0.0.1:7001"),
    ("ipv4:10.0.0.1:7001", "ipv4:10.0.0.1:7001"),
    ("ipv6:[::1]:7001", "ipv6:[::1]:7001"),
    ("unix:/run/state.sock", "unix:/run/state.sock"),
])
def test_targets(address, target):
    assert channel.target(address) == target


async def test_each_client_uses_the_one_list(opened):
    router, state = free_port(), free_port()
    cache = RouteCache(f"127.0.0.1:{router}")   # inside a loop: opens its channel at once
    client = StateClient(f"127.0.0.1:{state}")
    try:
        assert opened == [(f"ipv4:127.0.0.1:{router}", channel.CLIENT_OPTIONS),
                          (f"ipv4:127.0.0.1:{state}", channel.CLIENT_OPTIONS)]
    finally:
        await cache.close()
        await client.close()


async def test_backends_open_a_channel_per_endpoint_of_the_configured_addresses(
        opened, monkeypatch):
    ports = [free_port() for _ in range(4)]
    monkeypatch.setenv("SWITCHYARD_STATE_ADDR", f"127.0.0.1:{ports[3]}")
    monkeypatch.delenv("SWITCHYARD_ROUTER_ADDR", raising=False)
    monkeypatch.delenv("SWITCHYARD_PROVIDERS_ADDR", raising=False)
    providers = [f"127.0.0.1:{ports[1]}", f"127.0.0.1:{ports[2]}"]
    config = parse_config({"model_providers": [{"model": "ollama/llama3.1"}],
                           "services": {"router": f"127.0.0.1:{ports[0]}",
                                        "providers": providers}})
    be = Backends(config)
    await be.start()
    try:
        assert be.addresses == {"router": f"127.0.0.1:{ports[0]}",
                                "providers": ",".join(providers),
                                "state": f"127.0.0.1:{ports[3]}"}
        # One channel per endpoint, shared by its client, its streams and its health watch.
        assert sorted(t for t, _ in opened) == sorted(f"ipv4:127.0.0.1:{p}" for p in ports)
        assert all(options is channel.CLIENT_OPTIONS for _, options in opened)
    finally:
        await be.close()


async def test_names_are_resolved_into_an_endpoint_each(opened):
    """A DNS name (a headless service) names every address it resolves to."""
    port, other = free_port(), free_port()   # two "pods", both on loopback

    async def resolver(host: str, asked: int) -> list[str]:
        assert (host, asked) == ("providers.svc", port)
        return [f"ipv4:127.0.0.1:{port}", f"ipv4:127.0.0.1:{other}"]
    endpoints = EndpointSet(f"dns:///providers.svc:{port}", resolver=resolver)
    try:
        assert await endpoints.choose() is not None
        assert list(endpoints.endpoints) == [f"ipv4:127.0.0.1:{port}",
                                             f"ipv4:127.0.0.1:{other}"]
        assert [t for t, _ in opened] == list(endpoints.endpoints)
    finally:
        await endpoints.close()


def test_endpoint_names():
    assert dns_name("dns:///providers.svc:12002") == ("providers.svc", 12002)
    assert dns_name("dns://10.0.0.10:53/providers.svc:12002") == ("providers.svc", 12002)
    assert dns_name("providers:12002") == ("providers", 12002)
    assert dns_name("unix:/run/p.sock") is None
    assert dns_name("ipv4:10.0.0.1:1") is None
