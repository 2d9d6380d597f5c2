"""Percentiles and the one result shape every driver returns."""
from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of unsorted values (0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def result(requests: int, errors: int, seconds: float, p50_ms: float, p99_ms: float,
           **extra: float | str) -> dict:
    """One measurement: counts, rate and latency percentiles (plus driver-specific extras)."""
    return {"requests": requests, "errors": errors, "seconds": seconds,
            "rps": requests / seconds if seconds > 0 else 0.0,
            "p50_ms": p50_ms, "p99_ms": p99_ms, **extra}
