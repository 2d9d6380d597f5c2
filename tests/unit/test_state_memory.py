"""Memory store specifics: LRU bound, expiry bookkeeping, background purge."""
from __future__ import annotations

import asyncio
import time

import pytest

from switchyard.common.proto import chat_pb2, state_pb2
from switchyard.state.stores.base import TooDeep
from switchyard.state.stores.memory import MemoryStore

T0 = 1_700_000_000


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def resp(id: str, prev: str = "", expires_at: int = 0) -> state_pb2.StoredResponse:
    return state_pb2.StoredResponse(
        id=id, tenant="t", previous_response_id=prev, expires_at=expires_at,
        output=[chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT)])


async def test_lru_bound_evicts_the_least_recently_used():
    store = MemoryStore(max_entries=3, purge_interval=0)
    for k in "abc":
        await store.put(resp(k))
    assert await store.get("t", "a") is not None      # a becomes most recent
    await store.put(resp("d"))
    assert len(store) == 3
    assert await store.get("t", "b") is None
    assert all([await store.get("t", k) for k in "acd"])


async def test_history_touches_ancestors_so_live_conversations_survive_eviction():
    store = MemoryStore(max_entries=3, purge_interval=0)
    await store.put(resp("r1"))
    await store.put(resp("r2", prev="r1"))
    await store.put(resp("other"))
    _, ids = await store.history("t", "r2", 10)
    assert ids == ["r1", "r2"]
    await store.put(resp("new"))
    assert await store.get("t", "other") is None
    assert await store.get("t", "r1") is not None


async def test_overwrite_does_not_grow_the_table_and_keeps_the_new_expiry():
    clock = Clock()
    store = MemoryStore(max_entries=5, ttl_seconds=100, purge_interval=0, clock=clock)
    await store.put(resp("x", expires_at=T0 + 10))
    await store.put(resp("x", expires_at=T0 + 50))
    assert len(store) == 1
    clock.now = T0 + 20
    assert store.purge_expired() == 0          # the stale heap entry must not drop the record
    assert (await store.get("t", "x")).expires_at == T0 + 50


async def test_expiry_heap_stays_bounded_under_churn():
    store = MemoryStore(max_entries=10, purge_interval=0)
    for i in range(5000):
        await store.put(resp(f"k{i % 50}"))
    assert len(store) == 10
    assert len(store._expiry) <= 2 * 10 + 1024


async def test_purge_expired_drops_only_expired_records():
    clock = Clock()
    store = MemoryStore(ttl_seconds=100, purge_interval=0, clock=clock)
    await store.put(resp("short", expires_at=T0 + 5))
    await store.put(resp("long"))
    clock.now = T0 + 5
    assert store.purge_expired() == 1
    assert len(store) == 1
    assert await store.get("t", "long") is not None


async def test_background_purge_loop_runs():
    clock = Clock()
    store = MemoryStore(purge_interval=0.01, clock=clock)
    await store.start()
    try:
        await store.put(resp("soon", expires_at=T0 + 1))
        clock.now = T0 + 2
        deadline = time.monotonic() + 5
        while len(store) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(store) == 0
    finally:
        await store.close()
    assert store._purger is None


async def test_zero_depth_is_too_deep():
    store = MemoryStore(purge_interval=0)
    await store.put(resp("a"))
    with pytest.raises(TooDeep):
        await store.history("t", "a", 0)


def test_max_entries_must_be_positive():
    with pytest.raises(ValueError):
        MemoryStore(max_entries=0)
