"""In-process store: bounded LRU of stored responses with TTL; the embedded default.

Records are kept as protobuf objects (no serialization). Safe under concurrency on one event
loop because no method awaits between reading and writing the table.

Conversations sit in their own table, bounded by `max_entries` too and ordered by their last
write: with one TTL for all, that is also the order they expire in, so purging pops from the
front and eviction drops the least recently written.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from switchyard.common.proto import chat_pb2, state_pb2
from switchyard.state.stores.base import (
    MAX_CONVERSATION_BYTES,
    MAX_CONVERSATION_ITEMS,
    ConversationNotFound,
    InvalidInput,
    ItemNotFound,
    NotFound,
    TooDeep,
    check_append,
    is_expired,
    resolve_expiry,
    stop_task,
)

log = logging.getLogger(__name__)

Key = tuple[str, str]


@dataclass
class _Conversation:
    """One conversation: its record and its items (id -> JSON, in conversation order)."""
    record: state_pb2.Conversation
    items: dict[str, bytes] = field(default_factory=dict)
    size: int = 0   # bytes of item JSON

    def shown(self) -> state_pb2.Conversation:
        out = state_pb2.Conversation()
        out.CopyFrom(self.record)
        out.item_count = len(self.items)
        return out


class MemoryStore:
    """LRU-bounded, TTL-expiring store; history is O(depth) dict lookups."""

    def __init__(self, *, max_entries: int = 100_000, ttl_seconds: int = 30 * 24 * 3600,
                 purge_interval: float = 60.0, clock: Callable[[], float] = time.time,
                 max_items: int = MAX_CONVERSATION_ITEMS,
                 max_bytes: int = MAX_CONVERSATION_BYTES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self.purge_interval = purge_interval
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._clock = clock
        self._conversations: OrderedDict[Key, _Conversation] = OrderedDict()
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

    # ---- conversations ---------------------------------------------------------------------

    async def create_conversation(self, conv: state_pb2.Conversation,
                                  items: list[state_pb2.ConversationItem]
                                  ) -> state_pb2.Conversation:
        now = self._clock()
        rec = state_pb2.Conversation()
        rec.CopyFrom(conv)
        rec.created_at = rec.created_at or int(now)
        entry = _Conversation(rec)
        self._add_items(entry, items)
        key = (rec.tenant, rec.id)
        self._conversations[key] = entry
        self._touch(key, entry, now)
        while len(self._conversations) > self.max_entries:
            self._conversations.popitem(last=False)
        return entry.shown()

    async def get_conversation(self, tenant: str, id: str) -> state_pb2.Conversation | None:
        entry = self._live_conversation(tenant, id)
        return None if entry is None else entry.shown()

    async def update_conversation(self, tenant: str, id: str,
                                  metadata_json: bytes) -> state_pb2.Conversation | None:
        entry = self._live_conversation(tenant, id)
        if entry is None:
            return None
        entry.record.metadata_json = metadata_json
        self._touch((tenant, id), entry, self._clock())
        return entry.shown()

    async def delete_conversation(self, tenant: str, id: str) -> bool:
        entry = self._conversations.pop((tenant, id), None)
        return entry is not None and not is_expired(entry.record.expires_at, self._clock())

    async def append_items(self, tenant: str, id: str,
                           items: list[state_pb2.ConversationItem]) -> None:
        entry = self._conversation(tenant, id)
        self._add_items(entry, items)
        self._touch((tenant, id), entry, self._clock())

    async def list_items(self, tenant: str, id: str, *, after: str = "", limit: int = 0,
                         descending: bool = False
                         ) -> tuple[list[state_pb2.ConversationItem], bool]:
        entry = self._conversation(tenant, id)
        ids = list(reversed(entry.items)) if descending else list(entry.items)
        start = 0
        if after:
            if after not in entry.items:
                raise ItemNotFound(after)
            start = ids.index(after) + 1
        end = len(ids) if limit <= 0 else min(len(ids), start + limit)
        page = [state_pb2.ConversationItem(id=i, item_json=entry.items[i])
                for i in ids[start:end]]
        return page, end < len(ids)

    async def get_item(self, tenant: str, id: str,
                       item_id: str) -> state_pb2.ConversationItem:
        entry = self._conversation(tenant, id)
        item = entry.items.get(item_id)
        if item is None:
            raise ItemNotFound(item_id)
        return state_pb2.ConversationItem(id=item_id, item_json=item)

    async def delete_item(self, tenant: str, id: str, item_id: str) -> state_pb2.Conversation:
        entry = self._conversation(tenant, id)
        item = entry.items.pop(item_id, None)
        if item is None:
            raise ItemNotFound(item_id)
        entry.size -= len(item)
        self._touch((tenant, id), entry, self._clock())
        return entry.shown()

    def _add_items(self, entry: _Conversation, items: list[state_pb2.ConversationItem]) -> None:
        """All of `items` or none: bounds and repeated ids are checked before any is added."""
        new_ids = {i.id for i in items}
        if len(new_ids) < len(items) or any(i in entry.items for i in new_ids):
            raise InvalidInput("an item with this id is already in the conversation")
        size = entry.size + sum(len(i.item_json) for i in items)
        check_append(len(entry.items) + len(items), size, self.max_items, self.max_bytes)
        for item in items:
            entry.items[item.id] = item.item_json
        entry.size = size

    def _touch(self, key: Key, entry: _Conversation, now: float) -> None:
        """A write: the expiry moves to now + TTL and the conversation to the back."""
        entry.record.expires_at = resolve_expiry(0, now, self.ttl_seconds)
        self._conversations.move_to_end(key)

    def _conversation(self, tenant: str, id: str) -> _Conversation:
        entry = self._live_conversation(tenant, id)
        if entry is None:
            raise ConversationNotFound(id)
        return entry

    def _live_conversation(self, tenant: str, id: str) -> _Conversation | None:
        key = (tenant, id)
        entry = self._conversations.get(key)
        if entry is not None and is_expired(entry.record.expires_at, self._clock()):
            del self._conversations[key]
            return None
        return entry

    def purge_expired(self) -> int:
        """Drop every expired record now; returns how many were dropped."""
        now = self._clock()
        dropped = 0
        # Conversations are in expiry order (see the module docstring).
        while self._conversations:
            key, entry = next(iter(self._conversations.items()))
            if not is_expired(entry.record.expires_at, now):
                break
            del self._conversations[key]
            dropped += 1
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
