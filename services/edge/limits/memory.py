"""Token buckets in this edge process: the limiter when the config names no `redis:` (the
embedded default). Each edge process counts alone, so N edges allow N times a limit."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from switchyard.edge.limits.base import ADMITTED, REQUESTS, Bucket, Charge, Decision

# Full buckets are forgotten (a missing bucket is a full one) once there are this many, so
# one-off callers (client addresses without auth) do not accumulate for ever.
SWEEP_ABOVE = 4096


class MemoryLimiter:
    """Buckets by key: (level, time of the level). The same arithmetic as the Redis script."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.levels: dict[str, tuple[float, float]] = {}
        self._capacity: dict[str, tuple[float, float]] = {}   # key -> (capacity, rate)

    async def admit(self, charges: Sequence[Charge]) -> Decision:
        return self.take(charges)

    def take(self, charges: Sequence[Charge]) -> Decision:
        """Synchronous `admit`: nothing here waits."""
        now = self.clock()
        levels = [self._level(c.bucket, now) for c in charges]
        worst, limit = 0.0, None
        for charge, level in zip(charges, levels):
            if level < charge.amount:
                wait = (charge.amount - level) / charge.bucket.rate
                if wait > worst:
                    worst, limit = wait, charge.bucket
        if limit is not None:
            return Decision(False, worst, limit)
        for charge, level in zip(charges, levels):
            self._store(charge.bucket, level - charge.amount, now)
        return ADMITTED

    def settle(self, charges: Sequence[Charge]) -> None:
        now = self.clock()
        for charge in charges:
            level = self._level(charge.bucket, now) + charge.amount
            self._store(charge.bucket, min(charge.bucket.capacity, level), now)

    async def close(self) -> None:
        self.levels.clear()

    def _level(self, bucket: Bucket, now: float) -> float:
        found = self.levels.get(bucket.key)
        if found is None:
            return bucket.capacity
        level, then = found
        return min(bucket.capacity, level + max(0.0, now - then) * bucket.rate)

    def _store(self, bucket: Bucket, level: float, now: float) -> None:
        if bucket.key not in self.levels and len(self.levels) >= SWEEP_ABOVE:
            self._sweep(now)
        self.levels[bucket.key] = (level, now)
        self._capacity[bucket.key] = (bucket.capacity, bucket.rate)

    def _sweep(self, now: float) -> None:
        for key, (level, then) in list(self.levels.items()):
            capacity, rate = self._capacity[key]
            if level + (now - then) * rate >= capacity:
                del self.levels[key], self._capacity[key]


class RateLimiter:
    """Requests per minute per caller, bursting up to that many: one request bucket each."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.store = MemoryLimiter(clock)

    def take(self, who: str, per_minute: int | None = None) -> float:
        """0 when allowed, else the seconds until a request would be."""
        bucket = Bucket(who, float(per_minute or self.per_minute), 60.0, "", REQUESTS)
        return self.store.take([Charge(bucket, 1.0)]).retry_after
