"""What the process's file-descriptor limit allows: the defaults of `limits.max_connections`
and `limits.max_concurrent_requests` when the config leaves them out."""
from __future__ import annotations

import resource

# Descriptors kept for everything that is not a client connection: the listening socket,
# gRPC channels to router/providers/state, the event loop's own, logs, stdio.
FD_RESERVE = 64
MAX_CONCURRENT_DEFAULT_CAP = 1024
UNLIMITED = 1 << 20   # what RLIM_INFINITY counts as


def soft_fd_limit() -> int:
    """The soft RLIMIT_NOFILE of this process."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return UNLIMITED if soft == resource.RLIM_INFINITY or soft <= 0 else soft


def connection_budget(soft: int | None = None) -> int:
    """Client connections the process can hold open: the soft limit minus the reserve (at
    least half the limit, so a tiny limit still leaves room)."""
    n = soft_fd_limit() if soft is None else soft
    return max(n - FD_RESERVE, n // 2, 1)


def default_max_concurrent(soft: int | None = None) -> int:
    """Concurrent requests the descriptors allow (one connection each), capped at 1024."""
    return min(connection_budget(soft), MAX_CONCURRENT_DEFAULT_CAP)
