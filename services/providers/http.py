"""Upstream HTTP: one long-lived client (its kept-alive connections) per provider entry, and
the timeouts of its calls."""
from __future__ import annotations

import asyncio
import functools
import ssl
from dataclasses import dataclass

from switchyard.common.config.model import Config, ProviderEntry
from switchyard.providers.http_client import UpstreamClient

POOL_LIMIT = 1024          # connections per provider entry; LLM calls are long, allow many
KEEPALIVE_S = 75.0         # idle keep-alive; most upstreams close at 60-120 s
CONNECT_CAP_S = 10.0       # a TCP+TLS connect slower than this is a dead upstream


@dataclass(frozen=True)
class Timeouts:
    """Per-attempt bounds: connect, wait for response headers, silence between body reads."""
    connect_s: float
    first_byte_s: float
    idle_s: float


def default_timeouts(listener_timeout_s: float, connect_s: float | None = None) -> Timeouts:
    """Defaults derived from the listener timeout (non-streaming replies send headers last);
    `connect_s` is Plano's `overrides.upstream_connect_timeout` when set."""
    t = listener_timeout_s if listener_timeout_s > 0 else 30.0
    return Timeouts(connect_s=connect_s or min(CONNECT_CAP_S, t), first_byte_s=t, idle_s=t)


def timeouts_for(entry: ProviderEntry, defaults: Timeouts) -> Timeouts:
    """`defaults`, overridden by per-provider fields when the config model grows them."""
    return Timeouts(
        connect_s=getattr(entry, "connect_timeout_s", None) or defaults.connect_s,
        first_byte_s=getattr(entry, "first_byte_timeout_s", None) or defaults.first_byte_s,
        idle_s=getattr(entry, "idle_timeout_s", None) or defaults.idle_s,
    )


@functools.cache
def system_tls() -> ssl.SSLContext:
    """The system's trust store, loaded at the first https connection (not at start-up:
    an http-only deployment does not pay its memory)."""
    return ssl.create_default_context()


class ClientPool:
    """Lazily creates one UpstreamClient per provider entry and keeps it for the process's life."""

    def __init__(self, defaults: Timeouts, tls_ca_path: str | None = None) -> None:
        self.defaults = defaults   # the setter below also empties the per-entry cache
        # Plano's `overrides.upstream_tls_ca_path`: only these CAs are trusted upstream. Built
        # once here, so a bad bundle fails at start-up rather than at the first request.
        self.tls: ssl.SSLContext | None = ssl.create_default_context(cafile=tls_ca_path) \
            if tls_ca_path else None
        self._clients: dict[str, UpstreamClient] = {}

    @classmethod
    def for_config(cls, config: Config) -> ClientPool:
        """The pool a providers process uses: listener timeout and Plano's `overrides`."""
        up = config.upstream
        return cls(default_timeouts(config.listener.timeout_s, up.connect_timeout_s),
                   tls_ca_path=up.tls_ca_path)

    @property
    def defaults(self) -> Timeouts:
        return self._defaults

    @defaults.setter
    def defaults(self, value: Timeouts) -> None:
        self._defaults = value
        self._timeouts: dict[str, tuple[ProviderEntry, Timeouts]] = {}

    def timeouts(self, entry: ProviderEntry) -> Timeouts:
        """The entry's bounds, worked out once per entry (a reload brings new entries and
        defaults, and with them new bounds); every attempt asks."""
        found = self._timeouts.get(entry.name)
        if found is None or found[0] is not entry:
            found = self._timeouts[entry.name] = (entry, timeouts_for(entry, self._defaults))
        return found[1]

    def client(self, entry: ProviderEntry) -> UpstreamClient:
        """The entry's client (created on first use, inside the running loop). First-byte
        and idle bounds are applied per read by the caller (they differ before and after
        the stream commits); the client bounds only the connect."""
        client = self._clients.get(entry.name)
        if client is None or client.closed:
            client = self._clients[entry.name] = UpstreamClient(
                POOL_LIMIT, KEEPALIVE_S, self.timeouts(entry).connect_s, self.tls_context)
        return client

    def tls_context(self) -> ssl.SSLContext:
        """What an https upstream is verified against: the configured CAs, else the system's."""
        return self.tls or system_tls()

    async def close(self) -> None:
        """Close every client (on shutdown)."""
        clients, self._clients = list(self._clients.values()), {}
        if clients:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
