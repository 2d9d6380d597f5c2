"""Per-target circuit breakers: stop sending traffic to a target that keeps failing."""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown_s` admits one probe."""

    def __init__(self, threshold: int = 5, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at < self.cooldown_s:
            return OPEN
        return HALF_OPEN

    def admits(self) -> bool:
        """Whether a request may go to this target now (closed, or half-open with no probe out)."""
        state = self.state
        return state == CLOSED or (state == HALF_OPEN and not self._probing)

    def begin(self) -> None:
        """An attempt starts; in half-open state it is the one probe."""
        if self.state == HALF_OPEN:
            self._probing = True

    def release(self) -> None:
        """The attempt ended without an outcome (cancelled): let another probe through."""
        self._probing = False

    def record_success(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        self.failures += 1
        # A failed half-open probe re-opens at once; a closed breaker opens at the threshold.
        if self._opened_at is not None or self.failures >= self.threshold:
            self._opened_at = self._clock()
        self._probing = False


class BreakerBoard:
    """One breaker per key (provider entry, upstream model), created on first use."""

    def __init__(self, threshold: int = 5, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._breakers: dict[Hashable, CircuitBreaker] = {}

    def get(self, key: Hashable) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(self.threshold, self.cooldown_s, self.clock)
            self._breakers[key] = breaker
        return breaker

    def admits(self, key: Hashable) -> bool:
        breaker = self._breakers.get(key)
        return breaker is None or breaker.admits()
