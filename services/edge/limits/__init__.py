"""Rate and token limits: what is counted (policy.py, rules.py) over where it is counted
(a `Limiter`: memory.py in this process, redis_store.py shared by every edge)."""
from __future__ import annotations

from switchyard.common.config.model import Security
from switchyard.edge.limits.base import Limiter
from switchyard.edge.limits.memory import MemoryLimiter
from switchyard.edge.limits.policy import (
    STATE_KEY,
    Caller,
    Limits,
    Pending,
    admit,
    record_usage,
    refusal,
)

__all__ = ["STATE_KEY", "Caller", "Limits", "Pending", "admit", "build", "record_usage",
           "refusal"]


def build(security: Security) -> Limits | None:
    """The edge's limits; None when the config sets none (then nothing is counted at all)."""
    if not (security.requests_per_minute or security.tokens_per_minute or security.ratelimits
            or any(k.requests_per_minute or k.tokens_per_minute for k in security.keys)):
        return None
    limiter: Limiter
    if security.redis is None:
        limiter = MemoryLimiter()
    else:
        # redis-py is imported only by edges that use it.
        from switchyard.edge.limits.redis_store import RedisLimiter
        limiter = RedisLimiter(security.redis)
    return Limits(security, limiter)
