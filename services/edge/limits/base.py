"""The seam between what the edge limits (policy.py) and where the counts live: this process
(memory.py) or one Redis shared by every edge (redis_store.py)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# What a bucket limits, as the `limit` label of switchyard_rate_limited_total.
REQUESTS, TOKENS, RATELIMITS = "requests", "tokens", "ratelimits"


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: holds up to `capacity`, refilled at `capacity` per `period_s`, so
    a full bucket allows a burst of its whole capacity."""
    key: str            # where it is counted; never a gateway key, only its digest
    capacity: float
    period_s: float
    label: str          # what it limits, for the client's 429 message
    kind: str = REQUESTS

    @property
    def rate(self) -> float:
        """Refill per second."""
        return self.capacity / self.period_s


@dataclass(frozen=True, slots=True)
class Charge:
    """`amount` taken from `bucket` (at admit), or given back (negative: taken) at settle."""
    bucket: Bucket
    amount: float


@dataclass(frozen=True, slots=True)
class Decision:
    """A limiter's answer. Refused by a limit: `retry_after` seconds and the `limit`; the
    store unreachable: `unavailable`, and `allowed` is what `redis.on_unavailable` says."""
    allowed: bool
    retry_after: float = 0.0
    limit: Bucket | None = None
    unavailable: bool = False


ADMITTED = Decision(True)


class Limiter(Protocol):
    """Where the buckets live. Both implementations run the same arithmetic: refill by the
    time elapsed (capped at capacity), then take every charge or none."""

    async def admit(self, charges: Sequence[Charge]) -> Decision:
        """Take every charge, or none of them and say how long until all would fit."""
        ...

    def settle(self, charges: Sequence[Charge]) -> None:
        """Give amounts back (a negative amount takes more, possibly below zero), after the
        real usage is known. Never waits: a shared store is written in the background."""
        ...

    async def close(self) -> None:
        """Finish background writes and release connections."""
        ...
