"""Token buckets in Redis, shared by every edge: one EVALSHA per admit takes all of a
request's charges at once (atomically, on Redis's clock), one more settles the tokens when
the answer ends, in the background. Redis unreachable: `redis.on_unavailable` decides, a
warning is logged at most once a minute, and for a second no call is tried at all."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from switchyard.common.config.model import RedisSettings
from switchyard.edge.limits.base import ADMITTED, Charge, Decision
from switchyard.edge.limits.metrics import STORE_UNAVAILABLE, STORE_UP

log = logging.getLogger("switchyard.edge.limits")

PREFIX = "switchyard:limits:"
# After a failed call the store is left alone this long: requests get the policy at once
# instead of each waiting out a timeout.
BACKOFF_S = 1.0
LOG_EVERY_S = 60.0

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

FAILURES = (RedisError, OSError, TimeoutError, ValueError)


class RedisLimiter:
    """The `Limiter` of an edge with `redis:` configured."""

    def __init__(self, settings: RedisSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.policy = settings.on_unavailable
        self.down_until = 0.0
        self.down = False
        self.logged_at = -LOG_EVERY_S
        self.failures = 0          # since the last warning
        self.tasks: set[asyncio.Task[None]] = set()
        self._client: Redis | None = None
        self._script: AsyncScript | None = None

    async def admit(self, charges: Sequence[Charge]) -> Decision:
        if self.clock() < self.down_until:
            return self._unavailable()
        try:
            allowed, wait_ms, worst = await self._run("take", charges)
        except FAILURES as exc:
            self._failed(exc)
            return self._unavailable()
        self._answered()
        if allowed:
            return ADMITTED
        return Decision(False, wait_ms / 1000.0, charges[int(worst) - 1].bucket)

    def settle(self, charges: Sequence[Charge]) -> None:
        if not charges or self.clock() < self.down_until:
            return   # a correction lost to an outage only errs one request's estimate
        task = asyncio.get_running_loop().create_task(self._give(charges))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=2 * self.settings.timeout_s)
        if self._client is not None:
            client, self._client, self._script = self._client, None, None
            await client.aclose()

    async def _give(self, charges: Sequence[Charge]) -> None:
        try:
            await self._run("give", charges)
        except FAILURES as exc:
            self._failed(exc)
        else:
            self._answered()

    async def _run(self, mode: str, charges: Sequence[Charge]) -> list[int]:
        script = self._script or self._connect()
        args: list[str | float] = [mode]
        for c in charges:
            args += (c.bucket.capacity, c.bucket.rate / 1000.0, c.amount)
        # The socket timeouts bound each read and connect; this bounds the whole call.
        async with asyncio.timeout(2 * self.settings.timeout_s):
            reply: list[int] = await script(keys=[PREFIX + c.bucket.key for c in charges],
                                            args=args)
        return reply

    def _connect(self) -> AsyncScript:
        timeout = self.settings.timeout_s
        # No retries: a slow or missing Redis must cost one timeout, then the policy.
        self._client = Redis.from_url(self.settings.url, socket_timeout=timeout,
                                      socket_connect_timeout=timeout,
                                      retry=Retry(NoBackoff(), 0))
        self._script = self._client.register_script(SCRIPT)
        return self._script

    def _unavailable(self) -> Decision:
        STORE_UNAVAILABLE.labels(self.policy).inc()
        if self.policy == "deny":
            return Decision(False, BACKOFF_S, None, unavailable=True)
        return Decision(True, unavailable=True)

    def _answered(self) -> None:
        if self.down:
            self.down = False
            log.warning("rate limits: Redis at %s answers again; limits are shared again",
                        self.settings.display)
        STORE_UP.set(1)

    def _failed(self, exc: BaseException) -> None:
        self.down = True
        self.down_until = now = self.clock()
        self.down_until += BACKOFF_S
        self.failures += 1
        STORE_UP.set(0)
        if now - self.logged_at < LOG_EVERY_S:
            return
        outcome = ("refused with a 503" if self.policy == "deny"
                   else "admitted without the shared limits")
        log.warning("rate limits: Redis at %s is unavailable (%s; %d failed calls since the "
                    "last report); redis.on_unavailable is %s, so requests are %s until it "
                    "answers", self.settings.display, self.describe(exc), self.failures,
                    self.policy, outcome)
        self.logged_at, self.failures = now, 0

    def describe(self, exc: BaseException) -> str:
        """The error in words, without the URL's password should the message quote it."""
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        password = urlsplit(self.settings.url).password
        return text.replace(password, "***") if password else text
