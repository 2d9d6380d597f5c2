"""Retry policy: which failures are retried, and how long to wait before the next attempt.

A wait the upstream asks for is read by `switchyard.common.http_headers.retry_after_seconds`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

# Upstream statuses worth another attempt (529: Anthropic overloaded).
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 529})
# Gateway-made error types that are transient (connect failures, timeouts).
RETRYABLE_TYPES = frozenset({"upstream_unreachable", "timeout"})


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between attempts at one target (a `retry-after` from the upstream wins)."""
    base_s: float = 0.25
    cap_s: float = 8.0

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with full jitter for the `retry`-th retry (0-based)."""
        ceiling = min(self.cap_s, self.base_s * (2 ** retry))
        return (rng or random).uniform(0.0, ceiling)


def is_retryable(http_status: int, error_type: str) -> bool:
    """Whether a failure with this status or gateway error type is worth another attempt."""
    return http_status in RETRYABLE_STATUS or error_type in RETRYABLE_TYPES
