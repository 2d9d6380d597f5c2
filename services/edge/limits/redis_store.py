"""Token buckets in Redis, shared by every edge: one EVALSHA per admit takes all of a
request's charges at once (atomically, on Redis's clock), one more settles the tokens when
the answer ends, in the background. Redis unreachable: `redis.on_unavailable` decides, a
warning is logged at most once a minute, and for a second no call is tried at all."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from switchyard.common.config.model import RedisSettings
from switchyard.edge.limits.base import ADMITTED, Charge, Decision
from switchyard.edge.limits.metrics import STORE_UNAVAILABLE, STORE_UP
from switchyard.edge.redis_link import BACKOFF_S, RedisLink

log = logging.getLogger("switchyard.edge.limits")

PREFIX = "switchyard:limits:"
# KEYS[i]: bucket i, a hash {l: level, t: when, in ms of Redis's clock}. ARGV[1]: "take" (all
# charges or none) or "give" (settle). ARGV[3i-1..3i+1]: capacity, refill per ms, amount.
# Returns {1, 0, 0}, or {0, ms until every charge would fit, i of the one that waits longest}.
SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local take = ARGV[1] == 'take'
local levels = {}
local worst, worst_i = 0, 0
for i, key in ipairs(KEYS) do
  local cap, rate = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local amount = tonumber(ARGV[3 * i + 1])
  local got = redis.call('HMGET', key, 'l', 't')
  local level = cap
  if got[1] then
    level = math.min(cap, tonumber(got[1]) + math.max(0, now - tonumber(got[2])) * rate)
  end
  if take and level < amount then
    local wait = math.ceil((amount - level) / rate)
    if wait > worst then worst, worst_i = wait, i end
  end
  levels[i] = level
end
if worst_i > 0 then return {0, worst, worst_i} end
for i, key in ipairs(KEYS) do
  local cap, rate = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local amount = tonumber(ARGV[3 * i + 1])
  local level
  if take then level = levels[i] - amount else level = math.min(cap, levels[i] + amount) end
  redis.call('HSET', key, 'l', tostring(level), 't', tostring(now))
  -- back at capacity it is the same as no bucket: expire then
  redis.call('PEXPIRE', key, math.ceil((cap - level) / rate) + 1000)
end
return {1, 0, 0}
"""

class RedisLimiter:
    """The `Limiter` of an edge with `redis:` configured."""

    def __init__(self, settings: RedisSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.policy = settings.on_unavailable
        outcome = ("refused with a 503" if self.policy == "deny"
                   else "admitted without the shared limits")
        self.link = RedisLink(settings, "rate limits", f"redis.on_unavailable is "
                              f"{self.policy}, so requests are {outcome}", log,
                              on_state=STORE_UP.set, clock=clock)
        self.tasks: set[asyncio.Task[None]] = set()
        self._script: AsyncScript | None = None

    async def admit(self, charges: Sequence[Charge]) -> Decision:
        reply = await self.link.run(lambda client: self._call(client, "take", charges))
        if reply is None:
            return self._unavailable()
        allowed, wait_ms, worst = reply
        if allowed:
            return ADMITTED
        return Decision(False, wait_ms / 1000.0, charges[int(worst) - 1].bucket)

    def settle(self, charges: Sequence[Charge]) -> None:
        if not charges or self.link.resting:
            return   # a correction lost to an outage only errs one request's estimate
        task = asyncio.get_running_loop().create_task(self._give(charges))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=2 * self.settings.timeout_s)
        self._script = None
        await self.link.close()

    async def _give(self, charges: Sequence[Charge]) -> None:
        await self.link.run(lambda client: self._call(client, "give", charges))

    async def _call(self, client: Redis, mode: str, charges: Sequence[Charge]) -> list[int]:
        if self._script is None:
            self._script = client.register_script(SCRIPT)
        args: list[str | float] = [mode]
        for c in charges:
            args += (c.bucket.capacity, c.bucket.rate / 1000.0, c.amount)
        reply: list[int] = await self._script(keys=[PREFIX + c.bucket.key for c in charges],
                                              args=args)
        return reply

    def _unavailable(self) -> Decision:
        STORE_UNAVAILABLE.labels(self.policy).inc()
        if self.policy == "deny":
            return Decision(False, BACKOFF_S, None, unavailable=True)
        return Decision(True, unavailable=True)
