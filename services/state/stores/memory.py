"""In-process store: bounded LRU of stored responses with TTL; the embedded default.

Records are kept as protobuf objects (no serialization). Safe under concurrency on one event
loop because no method awaits between reading and writing the table.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from switchyard.common.proto import chat_pb2, state_pb2
from switchyard.state.stores.base import NotFound, TooDeep, is_expired, resolve_expiry, stop_task

log = logging.getLogger(__name__)

Key = tuple[str, str]


class MemoryStore:
    """LRU-bounded, TTL-expiring store; history is O(depth) dict lookups."""

    def __init__(self, *, max_entries: int = 100_000, ttl_seconds: int = 30 * 24 * 3600,
                 purge_interval: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self.purge_interval = purge_interval
        self._clock = clock
        self._items: OrderedDict[Key, state_pb2.StoredResponse] = OrderedDict()
        # (expires_at, key) min-heap; entries go stale when a key is overwritten or evicted.
        self._expiry: list[tuple[int, Key]] = []
        self._purger: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._items)

    async def start(self) -> None:
        if self._purger is None and self.purge_interval > 0:
            self._purger = asyncio.create_task(self._purge_loop(), name="state-memory-purge")

    async def close(self) -> None:
        await stop_task(self._purger)
        self._purger = None

    async def put(self, resp: state_pb2.StoredResponse) -> None:
        now = self._clock()
        rec = state_pb2.StoredResponse()
        rec.CopyFrom(resp)
        rec.expires_at = resolve_expiry(rec.expires_at, now, self.ttl_seconds)
        if not rec.created_at:
            rec.created_at = int(now)
        key = (rec.tenant, rec.id)
        self._items[key] = rec
        self._items.move_to_end(key)
        heapq.heappush(self._expiry, (rec.expires_at, key))
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
        if len(self._expiry) > 2 * self.max_entries + 1024:
            self._rebuild_expiry()

    async def get(self, tenant: str, id: str) -> state_pb2.StoredResponse | None:
        rec = self._live(tenant, id)
        if rec is None:
            return None
        out = state_pb2.StoredResponse()
        out.CopyFrom(rec)
        return out

    async def history(self, tenant: str, id: str,
                      max_depth: int) -> tuple[list[chat_pb2.Message], list[str]]:
        """The chain ending at `id`, oldest first; messages are the store's own, read-only."""
        rec = self._live(tenant, id)
        if rec is None:
            raise NotFound(id)
        if max_depth < 1:
            raise TooDeep(max_depth)
        chain = [rec]
        seen = {id}
        prev = rec.previous_response_id
        while prev and prev not in seen:
            parent = self._live(tenant, prev)
            if parent is None:
                break
            if len(chain) >= max_depth:
                raise TooDeep(max_depth)
            chain.append(parent)
            seen.add(prev)
            prev = parent.previous_response_id
        messages: list[chat_pb2.Message] = []
        ids: list[str] = []
        for r in reversed(chain):
            messages.extend(r.input)
            messages.extend(r.output)
            ids.append(r.id)
        return messages, ids

    async def delete(self, tenant: str, id: str) -> bool:
        rec = self._items.pop((tenant, id), None)
        return rec is not None and not is_expired(rec.expires_at, self._clock())

    async def input_items(self, tenant: str, id: str) -> bytes | None:
        rec = self._live(tenant, id)
        return None if rec is None else rec.input_items_json

    def purge_expired(self) -> int:
        """Drop every expired record now; returns how many were dropped."""
        now = self._clock()
        dropped = 0
        while self._expiry and is_expired(self._expiry[0][0], now):
            expires_at, key = heapq.heappop(self._expiry)
            rec = self._items.get(key)
            if rec is not None and rec.expires_at == expires_at:
                del self._items[key]
                dropped += 1
        return dropped

    def _live(self, tenant: str, id: str) -> state_pb2.StoredResponse | None:
        """The unexpired record, marked as recently used; expired ones are dropped on sight."""
        key = (tenant, id)
        rec = self._items.get(key)
        if rec is None:
            return None
        if is_expired(rec.expires_at, self._clock()):
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return rec

    def _rebuild_expiry(self) -> None:
        """Forget stale heap entries so the heap stays proportional to the table."""
        self._expiry = [(r.expires_at, k) for k, r in self._items.items()]
        heapq.heapify(self._expiry)

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(self.purge_interval)
            try:
                dropped = self.purge_expired()
                if dropped:
                    log.debug("state: purged %d expired responses", dropped)
            except Exception:  # never let the purge loop die
                log.exception("state: memory purge failed")
