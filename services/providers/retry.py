"""Retry policy: which failures are retried, and how long to wait before the next attempt."""
from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# Upstream statuses worth another attempt (529: Anthropic overloaded).
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 529})
# Gateway-made error types that are transient (connect failures, timeouts).
RETRYABLE_TYPES = frozenset({"upstream_unreachable", "timeout"})


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 0.25
    cap_s: float = 8.0

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with full jitter for the `retry`-th retry (0-based)."""
        ceiling = min(self.cap_s, self.base_s * (2 ** retry))
        return (rng or random).uniform(0.0, ceiling)


def is_retryable(http_status: int, error_type: str) -> bool:
    return http_status in RETRYABLE_STATUS or error_type in RETRYABLE_TYPES


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asked us to wait: `retry-after-ms`, else `retry-after` (seconds or date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
