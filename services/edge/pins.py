"""The pins of `routing.route_on_user_only`: a conversation's last routing decision, replayed
for its loop steps. In this edge's memory (`MemoryPins`), or in a Redis every edge shares
(`routing.session_cache: {type: redis}`, pins_redis.py), so a loop continued on another
edge keeps its model."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from switchyard.common.config.model import Routing
from switchyard.common.proto import router_pb2


class PinStore(Protocol):
    """Pins by conversation key; a pin expires `session_ttl_seconds` after it was set."""

    async def get(self, key: str) -> router_pb2.RouteDecision | None: ...

    async def put(self, key: str, decision: router_pb2.RouteDecision) -> None: ...

    async def close(self) -> None: ...


class MemoryPins:
    """Per edge process, bounded (least recently used out first), expiring."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._pins: OrderedDict[str, tuple[float, router_pb2.RouteDecision]] = OrderedDict()

    async def get(self, key: str) -> router_pb2.RouteDecision | None:
        found = self._pins.get(key)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._pins[key]
            return None
        self._pins.move_to_end(key)
        return found[1]

    async def put(self, key: str, decision: router_pb2.RouteDecision) -> None:
        self._pins[key] = (time.monotonic() + self.ttl_s, decision)
        self._pins.move_to_end(key)
        while len(self._pins) > self.max_entries:
            self._pins.popitem(last=False)

    async def close(self) -> None:
        self._pins.clear()


def pin_settings(routing: Routing) -> tuple[object, ...]:
    """What a pin store is built from: a reload that keeps these keeps the store."""
    return (routing.session_cache, routing.session_ttl_s, routing.session_max_entries)


def build(routing: Routing) -> PinStore:
    if routing.session_cache is None:
        return MemoryPins(routing.session_ttl_s, routing.session_max_entries)
    # redis-py is imported only by edges that share their pins.
    from switchyard.edge.pins_redis import RedisPins
    return RedisPins(routing.session_cache, routing.session_ttl_s)
