"""The one way the edge opens a channel to a backend endpoint (router, providers, state); a
service's replicas are a channel each (`endpoints.EndpointSet`)."""
from __future__ import annotations

from typing import Any

import grpc

from switchyard.common.grpc_server import CHANNEL_OPTIONS
from switchyard.common.internal_auth import METADATA_KEY, internal_token
from switchyard.common.telemetry import propagation, tracer

# Every client channel of the edge uses exactly this list.
CLIENT_OPTIONS: list[tuple[str, int | str]] = [
    # Keepalive (a dead peer is noticed within seconds, not at the next call) and 64 MiB
    # messages; shared with the servers, whose ping policy must accept these pings.
    *CHANNEL_OPTIONS,
    # One address per channel (the edge resolves names and spreads load itself), so gRPC's
    # pick_first: a GOAWAY then shows as the channel leaving READY, which moves the streams.
    ("grpc.lb_policy_name", "pick_first"),
    # A restarted backend is found again within a request's deadline (state reads wait 2 s);
    # gRPC's default backoff starts at 1 s and grows to 120 s.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # The edge decides itself what a failure means (503 to the client, a new mux stream, a
    # reconnecting watch); gRPC-level retries would only buffer every message for replay.
    ("grpc.enable_retries", 0),
]


# Addresses that already are gRPC targets.
GRPC_SCHEMES = ("unix:", "unix-abstract:", "ipv4:", "ipv6:", "dns:", "vsock:")


def target(address: str) -> str:
    """`host:port` as a `dns:///` target; an address that already is a target (`ipv4:...`,
    `unix:...`, `scheme://...`) is kept."""
    return address if "://" in address or address.startswith(GRPC_SCHEMES) \
        else f"dns:///{address}"


def open_channel(address: str) -> grpc.aio.Channel:
    """A channel to one backend endpoint, kept while the endpoint is; every call on it
    carries the internal token when one is set, and unary calls the caller's `traceparent`
    whenever tracing is on (it may be switched on by a reload: always wrapped)."""
    channel = grpc.aio.insecure_channel(target(address), options=CLIENT_OPTIONS)
    return TokenChannel(channel, internal_token())


class _WithToken:
    """A multicallable that adds the token to each call's metadata."""

    __slots__ = ("_call", "_metadata")

    def __init__(self, call: Any, metadata: tuple[tuple[str, str], ...]) -> None:
        self._call = call
        self._metadata = metadata

    def __call__(self, *args: Any, metadata: Any = None, **kwargs: Any) -> Any:
        md = self._metadata if metadata is None else (*metadata, *self._metadata)
        return self._call(*args, metadata=md, **kwargs)


class _Traced(_WithToken):
    """A unary multicallable that also carries the current span as `traceparent`, so the
    backend's span continues the request's trace (streams are long-lived: never)."""

    __slots__ = ()

    def __call__(self, *args: Any, metadata: Any = None, **kwargs: Any) -> Any:
        md = self._metadata if metadata is None else (*metadata, *self._metadata)
        if tracer.ENABLED and (parent := propagation.current_traceparent()):
            md = (*md, (propagation.HEADER, parent))
        return self._call(*args, metadata=md, **kwargs)


class TokenChannel:
    """The channel with the token (if any) added per call where stubs build their calls.

    Not a client interceptor: grpc.aio routes an intercepted stream's every write through a
    queue and two extra tasks, a cost on each message of the multiplexed hot path.
    """

    def __init__(self, channel: grpc.aio.Channel, token: str | None) -> None:
        self._channel = channel
        self._metadata: tuple[tuple[str, str], ...] = ((METADATA_KEY, token),) if token else ()

    def unary_unary(self, *args: Any, **kwargs: Any) -> _WithToken:
        return _Traced(self._channel.unary_unary(*args, **kwargs), self._metadata)

    def unary_stream(self, *args: Any, **kwargs: Any) -> _WithToken:
        return _WithToken(self._channel.unary_stream(*args, **kwargs), self._metadata)

    def stream_unary(self, *args: Any, **kwargs: Any) -> _WithToken:
        return _WithToken(self._channel.stream_unary(*args, **kwargs), self._metadata)

    def stream_stream(self, *args: Any, **kwargs: Any) -> _WithToken:
        return _WithToken(self._channel.stream_stream(*args, **kwargs), self._metadata)

    def __getattr__(self, name: str) -> Any:  # close, get_state, channel_ready, ...
        return getattr(self._channel, name)

    async def __aenter__(self) -> TokenChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()
