"""Per-conversation routing state, in this edge's memory or in a Redis every edge shares
(`routing.session_cache: {type: redis}`, sessions_redis.py): the pins of
`routing.route_on_user_only` (a conversation's last routing decision, replayed for its loop
steps) and the switch budgets of `routing.routing_budget` (routing_budget.py). Both are
bytes under a key; each user keeps its own namespace."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from google.protobuf.message import DecodeError

from switchyard.common.config.model import Routing
from switchyard.common.proto import router_pb2


class SessionStore(Protocol):
    """Values by key; a value expires `session_ttl_seconds` after it was last set."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """Per edge process, bounded (least recently used out first), expiring."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._values: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        found = self._values.get(key)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._values[key]
            return None
        self._values.move_to_end(key)
        return found[1]

    async def put(self, key: str, value: bytes) -> None:
        self._values[key] = (time.monotonic() + self.ttl_s, value)
        self._values.move_to_end(key)
        while len(self._values) > self.max_entries:
            self._values.popitem(last=False)

    async def close(self) -> None:
        self._values.clear()


class Pins:
    """route_on_user_only's pins: the router's own RouteDecision, per conversation key."""
    PREFIX = "affinity:"

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def get(self, key: str) -> router_pb2.RouteDecision | None:
        raw = await self.store.get(self.PREFIX + key)
        if raw is None:
            return None
        try:
            return router_pb2.RouteDecision.FromString(raw)
        except DecodeError:   # a value this gateway did not write: no pin
            return None

    async def put(self, key: str, decision: router_pb2.RouteDecision) -> None:
        await self.store.put(self.PREFIX + key, decision.SerializeToString())


def store_settings(routing: Routing) -> tuple[object, ...]:
    """What a session store is built from: a reload that keeps these keeps the store."""
    return (routing.session_cache, routing.session_ttl_s, routing.session_max_entries)


def build(routing: Routing) -> SessionStore:
    if routing.session_cache is None:
        return MemoryStore(routing.session_ttl_s, routing.session_max_entries)
    # redis-py is imported only by edges that share their sessions.
    from switchyard.edge.sessions_redis import RedisStore
    return RedisStore(routing.session_cache, routing.session_ttl_s)
