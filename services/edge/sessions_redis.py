"""Per-conversation routing state in a Redis every edge shares (`routing.session_cache:
{type: redis}`): one GET per read, one SET with the session TTL per write, under
`switchyard:<namespace>:<key>` (pins.py names the namespaces). Redis unavailable: the state is
advice, so a read finds nothing and a write is dropped; a warning at most once a minute
(redis_link.py)."""
from __future__ import annotations

import logging
import math

from switchyard.common.config.model import RedisSettings
from switchyard.edge.redis_link import RedisLink

log = logging.getLogger("switchyard.edge.routing")

PREFIX = "switchyard:"


class RedisStore:
    """The `SessionStore` of edges that share their routing sessions."""

    def __init__(self, settings: RedisSettings, ttl_s: float) -> None:
        self.settings = settings
        self.ttl_s = max(1, math.ceil(ttl_s))
        self.link = RedisLink(settings, "routing sessions", "loop steps are routed afresh, "
                              "decisions are not pinned and switches are not budgeted", log)

    async def get(self, key: str) -> bytes | None:
        raw = await self.link.run(lambda client: client.get(PREFIX + key))
        return raw if isinstance(raw, bytes) else None

    async def put(self, key: str, value: bytes) -> None:
        await self.link.run(lambda client: client.set(PREFIX + key, value, ex=self.ttl_s))

    async def close(self) -> None:
        await self.link.close()
