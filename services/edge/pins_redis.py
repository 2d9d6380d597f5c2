"""Routing pins in a Redis every edge shares (`routing.session_cache: {type: redis}`): one
GET per loop step, one SET with the TTL per routed user turn, the decision as the router's
own RouteDecision message. Redis unavailable: pins are advice, so a loop step is routed
afresh and a decision is not pinned; a warning at most once a minute (redis_link.py)."""
from __future__ import annotations

import asyncio
import logging
import math

from google.protobuf.message import DecodeError

from switchyard.common.config.model import RedisSettings
from switchyard.common.proto import router_pb2
from switchyard.edge.redis_link import FAILURES, RedisLink

log = logging.getLogger("switchyard.edge.routing")

PREFIX = "switchyard:affinity:"


class RedisPins:
    """The `PinStore` of edges that share their pins."""

    def __init__(self, settings: RedisSettings, ttl_s: float) -> None:
        self.settings = settings
        self.ttl_s = max(1, math.ceil(ttl_s))
        self.link = RedisLink(settings, "routing pins", "loop steps are routed afresh and "
                              "decisions are not pinned", log)

    async def get(self, key: str) -> router_pb2.RouteDecision | None:
        if self.link.resting:
            return None
        try:
            async with asyncio.timeout(2 * self.settings.timeout_s):
                raw = await self.link.client().get(PREFIX + key)
        except FAILURES as exc:
            self.link.failed(exc)
            return None
        self.link.answered()
        if not isinstance(raw, bytes):
            return None
        try:
            return router_pb2.RouteDecision.FromString(raw)
        except DecodeError:   # a value this gateway did not write: no pin
            return None

    async def put(self, key: str, decision: router_pb2.RouteDecision) -> None:
        if self.link.resting:
            return
        try:
            async with asyncio.timeout(2 * self.settings.timeout_s):
                await self.link.client().set(PREFIX + key, decision.SerializeToString(),
                                             ex=self.ttl_s)
        except FAILURES as exc:
            self.link.failed(exc)
            return
        self.link.answered()

    async def close(self) -> None:
        await self.link.close()
