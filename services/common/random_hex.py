"""Random hex for the ids the services mint (responses, items, calls, conversations).

The bytes are the kernel's CSPRNG, as with `os.urandom` per id, but drawn from a pool
refilled with one system call per 4 KB: a request mints two or more ids, and a system call
on this path is also where a busy core switches away (see docs/benchmarks.md).
"""
from __future__ import annotations

import os

POOL_BYTES = 4096

_pool = b""
_at = 0


def random_hex(nbytes: int) -> str:
    """`nbytes` random bytes as 2×`nbytes` lowercase hex digits, never handed out twice."""
    global _pool, _at
    end = _at + nbytes
    if end > len(_pool):
        _pool, _at, end = os.urandom(max(POOL_BYTES, nbytes)), 0, nbytes
    piece = _pool[_at:end]
    _at = end
    return piece.hex()


def _forget_pool() -> None:
    """A forked child draws its own bytes: parent and child must never mint the same id."""
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_forget_pool)
