"""The limits' Prometheus metrics (served with the rest at the edge's /metrics)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

RATE_LIMITED = Counter("switchyard_rate_limited_total",
                       "Requests refused with a 429 by a limit: requests (per key or client "
                       "address), tokens (per key) or ratelimits (Plano's entries)", ["limit"])
STORE_UNAVAILABLE = Counter("switchyard_limits_store_unavailable_total",
                            "Limit checks Redis could not answer, decided by "
                            "redis.on_unavailable (allow or deny)", ["policy"])
STORE_UP = Gauge("switchyard_limits_store_up",
                 "1 while this edge's last Redis call for the limits succeeded, 0 after a "
                 "failure (no redis: configured: never set)")
