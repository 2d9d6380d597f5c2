"""The one way the edge opens a channel to a backend service (router, providers, state)."""
from __future__ import annotations

import grpc

from switchyard.common.grpc_server import CHANNEL_OPTIONS

# Every client channel of the edge uses exactly this list.
CLIENT_OPTIONS: list[tuple[str, int | str]] = [
    # Keepalive (a dead peer is noticed within seconds, not at the next call) and 64 MiB
    # messages; shared with the servers, whose ping policy must accept these pings.
    *CHANNEL_OPTIONS,
    # A headless DNS name (k8s) resolves to every replica: spread calls and mux streams over
    # all of them instead of pinning one. Harmless with a single address.
    ("grpc.lb_policy_name", "round_robin"),
    # A restarted backend is found again within a request's deadline (state reads wait 2 s);
    # gRPC's default backoff starts at 1 s and grows to 120 s.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # The edge decides itself what a failure means (503 to the client, a new mux stream, a
    # reconnecting watch); gRPC-level retries would only buffer every message for replay.
    ("grpc.enable_retries", 0),
]


def target(address: str) -> str:
    """`host:port` as a `dns:///` target, so every resolved replica is used; an address that
    already is a target (`scheme://...`, `unix:...`) is kept."""
    return address if "://" in address or address.startswith("unix:") else f"dns:///{address}"


def open_channel(address: str) -> grpc.aio.Channel:
    """A channel to one backend, meant to be kept for the process's life."""
    return grpc.aio.insecure_channel(target(address), options=CLIENT_OPTIONS)
