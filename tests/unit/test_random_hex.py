"""Ids from the pooled random bytes: the right length, hex, never repeated, and a forked
child does not mint its parent's next ids."""
from __future__ import annotations

import os
import re

from switchyard.common import random_hex as rh


def test_lengths_and_digits() -> None:
    for n in (1, 10, 12, 16, 24, rh.POOL_BYTES + 5):
        assert re.fullmatch(f"[0-9a-f]{{{2 * n}}}", rh.random_hex(n))


def test_no_bytes_are_handed_out_twice_across_refills() -> None:
    draws = [rh.random_hex(12) for _ in range(3 * rh.POOL_BYTES // 12)]
    assert len(set(draws)) == len(draws)


def test_a_forked_child_draws_its_own_bytes() -> None:
    rh.random_hex(1)   # the pool holds bytes the parent has not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: report its next id, then leave without pytest's clean-up
        os.write(write, rh.random_hex(12).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child and child != rh.random_hex(12)
