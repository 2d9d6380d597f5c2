"""The storage contract every state backend implements, and the rules they share.

Semantics (both backends):
- records are keyed by (tenant, id); `put` is an idempotent upsert (the last write wins);
- `expires_at` is unix seconds; 0 means now + the store's default TTL; a record whose
  `expires_at` is at or before now is invisible at once and purged later in the background;
- `history(tenant, id, max_depth)` walks `previous_response_id` from `id` back to the root and
  returns the chain oldest first (each response's input, then its output). The newest record
  must exist (else `NotFound`); an ancestor that is missing, expired or deleted simply ends the
  chain (the conversation starts after it); a chain longer than `max_depth` responses raises
  `TooDeep`; a cycle (only possible by overwriting an old record) ends the chain where it
  would repeat.

Conversations (the Conversations API) are a second kind of record: per (tenant, id) the
conversation's metadata and an ordered list of items, each an opaque JSON value with an id
unique in its conversation. Every write (create, metadata update, append, item delete) moves
the conversation's expiry to now + the TTL; an expired conversation is gone with its items.
A conversation holds at most `max_items` items of at most `max_bytes` JSON in all (its whole
history is sent upstream on every turn, in one gRPC message); an append that would pass
either bound, or that repeats an item id, is refused whole (`InvalidInput`).
"""
from __future__ import annotations

import asyncio
from typing import Protocol

from switchyard.common.proto import chat_pb2, state_pb2
from switchyard.common.random_hex import random_hex

DEFAULT_TENANT = "default"
# Bounds of one conversation: its items are the history of every turn that uses it.
MAX_CONVERSATION_ITEMS = 10_000
MAX_CONVERSATION_BYTES = 32 * 1024 * 1024
CONVERSATION_PREFIX = "conv_"


class StoreError(Exception):
    """Base class of the errors a store raises on purpose."""


class NotFound(StoreError):
    """The requested response is absent or expired."""


class ConversationNotFound(StoreError):
    """The conversation is absent, expired or another tenant's."""


class ItemNotFound(StoreError):
    """The conversation has no item with this id."""


class TooDeep(StoreError):
    """The conversation chain is longer than the allowed depth."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"conversation longer than {max_depth} turns")
        self.max_depth = max_depth


class StoreUnavailable(StoreError):
    """The backend cannot be reached or failed; callers may retry later."""


class InvalidInput(StoreError):
    """The backend refuses a value itself (bad text, too large): retrying cannot help."""


# Ids and tenants are key columns: bounded so that (tenant, id) always fits PostgreSQL's
# btree row limit (2704 bytes) even at 4 bytes a character.
MAX_KEY_CHARS = 256


def key_problem(**keys: str) -> str:
    """Why these ids/tenants cannot be stored or looked up (too long, NUL); "" if they can."""
    for name, value in keys.items():
        if len(value) > MAX_KEY_CHARS:
            return f"{name} is longer than {MAX_KEY_CHARS} characters"
    return text_problem(**keys)


def text_problem(**texts: str) -> str:
    """Why these text fields cannot be stored (PostgreSQL text holds no NUL); "" if they can."""
    for name, value in texts.items():
        if "\x00" in value:
            return f"{name} contains a NUL character"
    return ""


class Store(Protocol):
    """Conversation storage: stored responses and their history, scoped by tenant."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, resp: state_pb2.StoredResponse) -> None: ...

    async def get(self, tenant: str, id: str) -> state_pb2.StoredResponse | None: ...

    async def history(self, tenant: str, id: str,
                      max_depth: int) -> tuple[list[chat_pb2.Message], list[str]]: ...

    async def delete(self, tenant: str, id: str) -> bool: ...

    async def input_items(self, tenant: str, id: str) -> bytes | None: ...

    async def create_conversation(self, conv: state_pb2.Conversation,
                                  items: list[state_pb2.ConversationItem]
                                  ) -> state_pb2.Conversation:
        """Store a new conversation (id, tenant, metadata set) with its first items; returns
        it as stored (created_at, expires_at, item_count)."""
        ...

    async def get_conversation(self, tenant: str, id: str) -> state_pb2.Conversation | None: ...

    async def update_conversation(self, tenant: str, id: str,
                                  metadata_json: bytes) -> state_pb2.Conversation | None: ...

    async def delete_conversation(self, tenant: str, id: str) -> bool: ...

    async def append_items(self, tenant: str, id: str,
                           items: list[state_pb2.ConversationItem]) -> None:
        """Append in order; `ConversationNotFound`, or `InvalidInput` (bounds, repeated id)."""
        ...

    async def list_items(self, tenant: str, id: str, *, after: str = "", limit: int = 0,
                         descending: bool = False
                         ) -> tuple[list[state_pb2.ConversationItem], bool]:
        """Up to `limit` items (0: all) following `after` in the order asked, and whether
        more follow; `ConversationNotFound`, `ItemNotFound` for an unknown `after`."""
        ...

    async def get_item(self, tenant: str, id: str,
                       item_id: str) -> state_pb2.ConversationItem:
        """`ConversationNotFound` or `ItemNotFound` when absent."""
        ...

    async def delete_item(self, tenant: str, id: str, item_id: str) -> state_pb2.Conversation:
        """Remove one item; the conversation afterwards. Errors as `get_item`."""
        ...


def new_conversation_id() -> str:
    """A fresh conversation id in OpenAI's shape (`conv_` and 48 hex digits)."""
    return CONVERSATION_PREFIX + random_hex(24)


def check_append(count: int, size: int, max_items: int, max_bytes: int) -> None:
    """`InvalidInput` when a conversation of `count` items and `size` bytes would pass the
    bounds."""
    if count > max_items:
        raise InvalidInput(f"a conversation holds at most {max_items} items; start a new "
                           "conversation")
    if size > max_bytes:
        raise InvalidInput(f"a conversation holds at most {max_bytes} bytes of items; start a "
                           "new conversation")


def tenant_key(tenant: str) -> str:
    """The tenant a record is filed under: an empty tenant means the default one."""
    return tenant or DEFAULT_TENANT


def resolve_expiry(expires_at: int, now: float, ttl_seconds: int) -> int:
    """Absolute expiry in unix seconds: 0 means the store's default TTL from now."""
    return int(expires_at) if expires_at else int(now) + int(ttl_seconds)


def is_expired(expires_at: int, now: float) -> bool:
    """Expired records are invisible from the second they expire."""
    return expires_at <= now


async def stop_task(task: asyncio.Task | None) -> None:
    """Cancel a background task (a purge loop) and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
