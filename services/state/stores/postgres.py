"""PostgreSQL store (asyncpg): one row per response, history in one recursive query.

Messages are stored as serialized protobuf (`History` with only `messages` set) and usage as
a serialized `Usage`: compact, and decoding is one C call. Times are unix seconds taken from
the store's clock, so expiry is judged the same way by every replica with a sane clock.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg

from switchyard.common.proto import chat_pb2, state_pb2
from switchyard.state.migrate import apply_migrations
from switchyard.state.stores.base import (
    MAX_CONVERSATION_BYTES,
    MAX_CONVERSATION_ITEMS,
    ConversationNotFound,
    InvalidInput,
    ItemNotFound,
    NotFound,
    StoreUnavailable,
    TooDeep,
    check_append,
    resolve_expiry,
    stop_task,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that mean "the connection or server went away": worth a reconnect and a retry.
_TRANSIENT = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
              asyncpg.exceptions.OperatorInterventionError,
              asyncpg.exceptions.TooManyConnectionsError, OSError, asyncio.TimeoutError)
# Errors about the values themselves (class 22 "data exception": NUL or unencodable text,
# also raised by asyncpg's own encoder; class 54: a key too large for the index).
_REJECTED = (asyncpg.DataError, asyncpg.exceptions.ProgramLimitExceededError)

_COLUMNS = ("tenant, id, model, provider, previous_id, kind, input, output, usage, body_json,"
            " input_items_json, created_at, expires_at")
_PUT = f"""
INSERT INTO responses ({_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (tenant, id) DO UPDATE SET
  model = EXCLUDED.model, provider = EXCLUDED.provider, previous_id = EXCLUDED.previous_id,
  kind = EXCLUDED.kind, input = EXCLUDED.input, output = EXCLUDED.output,
  usage = EXCLUDED.usage, body_json = EXCLUDED.body_json,
  input_items_json = EXCLUDED.input_items_json, created_at = EXCLUDED.created_at,
  expires_at = EXCLUDED.expires_at
"""
_GET = f"SELECT {_COLUMNS} FROM responses WHERE tenant = $1 AND id = $2 AND expires_at > $3"
# Walk previous_id from $2 back; stops at a missing/expired ancestor, at a repeated id
# (cycle) and after $4 + 1 rows, so a too-deep chain is detected without walking it all.
_HISTORY = """
WITH RECURSIVE chain(id, previous_id, input, output, depth, path) AS (
    SELECT id, previous_id, input, output, 1, ARRAY[id]
    FROM responses WHERE tenant = $1 AND id = $2 AND expires_at > $3
  UNION ALL
    SELECT r.id, r.previous_id, r.input, r.output, c.depth + 1, c.path || r.id
    FROM chain c
    JOIN responses r ON r.tenant = $1 AND r.id = c.previous_id
    WHERE c.depth <= $4 AND r.expires_at > $3 AND r.id <> ALL (c.path)
)
SELECT id, input, output FROM chain ORDER BY depth DESC
"""
_DELETE = "DELETE FROM responses WHERE tenant = $1 AND id = $2 RETURNING expires_at"
_INPUT_ITEMS = ("SELECT input_items_json FROM responses"
                " WHERE tenant = $1 AND id = $2 AND expires_at > $3")
_PURGE = """
DELETE FROM {table} WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM {table} WHERE expires_at <= $1
    ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))
"""
# Expired conversations go with their items (ON DELETE CASCADE).
_PURGES = tuple(_PURGE.format(table=t) for t in ("responses", "conversations"))

# ---- conversations (migration 0002) -------------------------------------------------------
_CONV = "tenant, id, metadata, created_at, expires_at, item_count"
_CONV_CREATE = f"""
INSERT INTO conversations (tenant, id, metadata, created_at, expires_at, next_seq,
                           item_count, item_bytes)
VALUES ($1, $2, $3, $4, $5, $6::int, $6::int, $7) RETURNING {_CONV}
"""
_CONV_GET = f"SELECT {_CONV} FROM conversations WHERE tenant = $1 AND id = $2 AND expires_at > $3"
_CONV_UPDATE = f"""
UPDATE conversations SET metadata = $3, expires_at = $4
WHERE tenant = $1 AND id = $2 AND expires_at > $5 RETURNING {_CONV}
"""
_CONV_DELETE = "DELETE FROM conversations WHERE tenant = $1 AND id = $2 RETURNING expires_at"
# Reserves `$3` sequence numbers; the row lock orders concurrent appends.
_CONV_GROW = """
UPDATE conversations SET next_seq = next_seq + $3::int, item_count = item_count + $3::int,
  item_bytes = item_bytes + $4, expires_at = $5
WHERE tenant = $1 AND id = $2 AND expires_at > $6
RETURNING next_seq - $3::int AS first_seq, item_count, item_bytes
"""
_ITEMS_INSERT = """
INSERT INTO conversation_items (tenant, conversation_id, seq, id, item_json)
SELECT $1, $2, $3 + s.n - 1, s.id, s.item_json
FROM unnest($4::text[], $5::bytea[]) WITH ORDINALITY AS s(id, item_json, n)
"""
_ITEM_SEQ = ("SELECT seq FROM conversation_items"
             " WHERE tenant = $1 AND conversation_id = $2 AND id = $3")
_ITEMS_PAGE = """
SELECT id, item_json FROM conversation_items
WHERE tenant = $1 AND conversation_id = $2 AND seq {op} $3
ORDER BY seq {order} LIMIT $4
"""
_ITEMS_ASC = _ITEMS_PAGE.format(op=">", order="ASC")
_ITEMS_DESC = _ITEMS_PAGE.format(op="<", order="DESC")
_ITEM_GET = """
SELECT (SELECT true FROM conversations
        WHERE tenant = $1 AND id = $2 AND expires_at > $3) AS live,
       (SELECT item_json FROM conversation_items
        WHERE tenant = $1 AND conversation_id = $2 AND id = $4) AS item_json
"""
_CONV_LOCK = ("SELECT 1 FROM conversations WHERE tenant = $1 AND id = $2 AND expires_at > $3"
              " FOR UPDATE")
_ITEM_DELETE = ("DELETE FROM conversation_items WHERE tenant = $1 AND conversation_id = $2"
                " AND id = $3 RETURNING length(item_json)")
_CONV_SHRINK = f"""
UPDATE conversations SET item_count = item_count - 1, item_bytes = item_bytes - $3,
  expires_at = $4
WHERE tenant = $1 AND id = $2 RETURNING {_CONV}
"""


def describe_dsn(dsn: str) -> str:
    """`user@host:port/db` for messages: never the password."""
    try:
        u = urlsplit(dsn)
        user = f"{u.username}@" if u.username else ""
        host = u.hostname or "localhost"
        port = u.port or 5432
        db = u.path.lstrip("/") or (u.username or "postgres")
        return f"{user}{host}:{port}/{db}"
    except ValueError:
        return "<unparseable connection string>"


def _scrub(text: str, dsn: str) -> str:
    """Remove the password from an error text, in case a driver ever echoes it."""
    try:
        password = urlsplit(dsn).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text


def _messages_bytes(messages) -> bytes:
    return state_pb2.History(messages=messages).SerializeToString()


def _conversation(row: asyncpg.Record) -> state_pb2.Conversation:
    return state_pb2.Conversation(
        tenant=row["tenant"], id=row["id"], metadata_json=row["metadata"],
        created_at=row["created_at"], expires_at=row["expires_at"],
        item_count=row["item_count"])


def _unique_ids(items: list[state_pb2.ConversationItem]) -> None:
    if len({i.id for i in items}) < len(items):
        raise InvalidInput("an item with this id is already in the conversation")


class PostgresStore:
    """Stored responses in PostgreSQL; survives restarts of itself and of the database."""

    def __init__(self, dsn: str, *, ttl_seconds: int = 30 * 24 * 3600,
                 purge_interval: float = 60.0, purge_batch: int = 1000,
                 connect_timeout: float = 30.0, retry_seconds: float = 1.0,
                 pool_min: int = 1, pool_max: int = 10, command_timeout: float = 5.0,
                 clock: Callable[[], float] = time.time,
                 max_items: int = MAX_CONVERSATION_ITEMS,
                 max_bytes: int = MAX_CONVERSATION_BYTES) -> None:
        self.dsn = dsn
        self.ttl_seconds = ttl_seconds
        self.purge_interval = purge_interval
        self.purge_batch = purge_batch
        self.connect_timeout = connect_timeout
        self.retry_seconds = retry_seconds
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.command_timeout = command_timeout
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._clock = clock
        self._pool: asyncpg.Pool | None = None
        self._purger: asyncio.Task | None = None

    @property
    def where(self) -> str:
        return describe_dsn(self.dsn)

    async def start(self) -> None:
        """Connect (retrying with backoff up to `connect_timeout`), migrate, start purging."""
        deadline = time.monotonic() + self.connect_timeout
        delay, attempts = 0.1, 0
        while True:
            attempts += 1
            try:
                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=self.pool_min, max_size=self.pool_max,
                    command_timeout=self.command_timeout,
                    timeout=max(1.0, min(10.0, self.connect_timeout)))
                break
            except _TRANSIENT as e:
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(
                        f"cannot connect to PostgreSQL at {self.where} after {attempts}"
                        f" attempts in {self.connect_timeout:g}s: {_scrub(str(e), self.dsn)}"
                    ) from None
                log.warning("state: PostgreSQL at %s not reachable yet (%s); retrying",
                            self.where, _scrub(str(e), self.dsn))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except asyncpg.PostgresError as e:
                raise StoreUnavailable(f"cannot use PostgreSQL at {self.where}:"
                                       f" {_scrub(str(e), self.dsn)}") from None
        try:
            async with self._pool.acquire() as conn:
                applied = await apply_migrations(conn)
        except BaseException:
            await self._pool.close()
            self._pool = None
            raise
        if applied:
            log.info("state: applied migrations %s to %s", applied, self.where)
        if self.purge_interval > 0:
            self._purger = asyncio.create_task(self._purge_loop(), name="state-postgres-purge")

    async def close(self) -> None:
        await stop_task(self._purger)
        self._purger = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5.0)
            except (TimeoutError, *_TRANSIENT):
                pool.terminate()

    async def put(self, resp: state_pb2.StoredResponse) -> None:
        now = self._clock()
        args = (resp.tenant, resp.id, resp.model, resp.provider, resp.previous_response_id,
                resp.kind, _messages_bytes(resp.input), _messages_bytes(resp.output),
                resp.usage.SerializeToString(), resp.body_json, resp.input_items_json,
                resp.created_at or int(now), resolve_expiry(resp.expires_at, now,
                                                            self.ttl_seconds))
        await self._run(lambda conn: conn.execute(_PUT, *args))

    async def get(self, tenant: str, id: str) -> state_pb2.StoredResponse | None:
        row = await self._run(lambda conn: conn.fetchrow(_GET, tenant, id, int(self._clock())))
        if row is None:
            return None
        resp = state_pb2.StoredResponse(
            tenant=row["tenant"], id=row["id"], model=row["model"], provider=row["provider"],
            previous_response_id=row["previous_id"], kind=row["kind"],
            usage=chat_pb2.Usage.FromString(row["usage"]), body_json=row["body_json"],
            input_items_json=row["input_items_json"], created_at=row["created_at"],
            expires_at=row["expires_at"])
        resp.input.extend(state_pb2.History.FromString(row["input"]).messages)
        resp.output.extend(state_pb2.History.FromString(row["output"]).messages)
        return resp

    async def history(self, tenant: str, id: str,
                      max_depth: int) -> tuple[list[chat_pb2.Message], list[str]]:
        rows = await self._run(lambda conn: conn.fetch(
            _HISTORY, tenant, id, int(self._clock()), max_depth))
        if not rows:
            raise NotFound(id)
        if len(rows) > max_depth:
            raise TooDeep(max_depth)
        messages: list[chat_pb2.Message] = []
        for row in rows:
            messages.extend(state_pb2.History.FromString(row["input"]).messages)
            messages.extend(state_pb2.History.FromString(row["output"]).messages)
        return messages, [row["id"] for row in rows]

    async def delete(self, tenant: str, id: str) -> bool:
        expires_at = await self._run(lambda conn: conn.fetchval(_DELETE, tenant, id))
        return expires_at is not None and expires_at > self._clock()

    async def input_items(self, tenant: str, id: str) -> bytes | None:
        return await self._run(lambda conn: conn.fetchval(
            _INPUT_ITEMS, tenant, id, int(self._clock())))

    # ---- conversations ---------------------------------------------------------------------

    async def create_conversation(self, conv: state_pb2.Conversation,
                                  items: list[state_pb2.ConversationItem]
                                  ) -> state_pb2.Conversation:
        _unique_ids(items)
        size = sum(len(i.item_json) for i in items)
        check_append(len(items), size, self.max_items, self.max_bytes)
        now = self._clock()

        async def create(conn: asyncpg.Connection) -> asyncpg.Record:
            async with conn.transaction():
                row = await conn.fetchrow(
                    _CONV_CREATE, conv.tenant, conv.id, conv.metadata_json,
                    conv.created_at or int(now), resolve_expiry(0, now, self.ttl_seconds),
                    len(items), size)
                await self._insert_items(conn, conv.tenant, conv.id, 0, items)
                return row
        return _conversation(await self._run(create))

    async def get_conversation(self, tenant: str, id: str) -> state_pb2.Conversation | None:
        row = await self._run(lambda conn: conn.fetchrow(_CONV_GET, tenant, id,
                                                         int(self._clock())))
        return None if row is None else _conversation(row)

    async def update_conversation(self, tenant: str, id: str,
                                  metadata_json: bytes) -> state_pb2.Conversation | None:
        now = self._clock()
        row = await self._run(lambda conn: conn.fetchrow(
            _CONV_UPDATE, tenant, id, metadata_json, resolve_expiry(0, now, self.ttl_seconds),
            int(now)))
        return None if row is None else _conversation(row)

    async def delete_conversation(self, tenant: str, id: str) -> bool:
        expires_at = await self._run(lambda conn: conn.fetchval(_CONV_DELETE, tenant, id))
        return expires_at is not None and expires_at > self._clock()

    async def append_items(self, tenant: str, id: str,
                           items: list[state_pb2.ConversationItem]) -> None:
        _unique_ids(items)
        size = sum(len(i.item_json) for i in items)
        now = self._clock()

        async def append(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                row = await conn.fetchrow(_CONV_GROW, tenant, id, len(items), size,
                                          resolve_expiry(0, now, self.ttl_seconds), int(now))
                if row is None:
                    raise ConversationNotFound(id)
                # Raising rolls the reservation back: the append is all or nothing.
                check_append(row["item_count"], row["item_bytes"], self.max_items,
                             self.max_bytes)
                await self._insert_items(conn, tenant, id, row["first_seq"], items)
        await self._run(append)

    async def list_items(self, tenant: str, id: str, *, after: str = "", limit: int = 0,
                         descending: bool = False
                         ) -> tuple[list[state_pb2.ConversationItem], bool]:
        now = int(self._clock())

        async def page(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            if await conn.fetchrow(_CONV_GET, tenant, id, now) is None:
                raise ConversationNotFound(id)
            start = -1 if not descending else 2**63 - 1
            if after:
                start = await conn.fetchval(_ITEM_SEQ, tenant, id, after)
                if start is None:
                    raise ItemNotFound(after)
            return await conn.fetch(_ITEMS_DESC if descending else _ITEMS_ASC, tenant, id,
                                    start, limit + 1 if limit > 0 else None)
        rows = await self._run(page)
        more = 0 < limit < len(rows)   # one row more than asked says more follow
        return [state_pb2.ConversationItem(id=r["id"], item_json=r["item_json"])
                for r in (rows[:limit] if limit > 0 else rows)], more

    async def get_item(self, tenant: str, id: str,
                       item_id: str) -> state_pb2.ConversationItem:
        row = await self._run(lambda conn: conn.fetchrow(_ITEM_GET, tenant, id,
                                                         int(self._clock()), item_id))
        if not row["live"]:
            raise ConversationNotFound(id)
        if row["item_json"] is None:
            raise ItemNotFound(item_id)
        return state_pb2.ConversationItem(id=item_id, item_json=row["item_json"])

    async def delete_item(self, tenant: str, id: str, item_id: str) -> state_pb2.Conversation:
        now = self._clock()

        async def delete(conn: asyncpg.Connection) -> asyncpg.Record:
            async with conn.transaction():
                if await conn.fetchval(_CONV_LOCK, tenant, id, int(now)) is None:
                    raise ConversationNotFound(id)
                size = await conn.fetchval(_ITEM_DELETE, tenant, id, item_id)
                if size is None:
                    raise ItemNotFound(item_id)
                return await conn.fetchrow(_CONV_SHRINK, tenant, id, size,
                                           resolve_expiry(0, now, self.ttl_seconds))
        return _conversation(await self._run(delete))

    @staticmethod
    async def _insert_items(conn: asyncpg.Connection, tenant: str, id: str, first_seq: int,
                            items: list[state_pb2.ConversationItem]) -> None:
        if not items:
            return
        try:
            await conn.execute(_ITEMS_INSERT, tenant, id, first_seq, [i.id for i in items],
                               [i.item_json for i in items])
        except asyncpg.UniqueViolationError:
            raise InvalidInput("an item with this id is already in the conversation") from None

    async def purge_expired(self) -> int:
        """Delete expired responses and conversations in batches of `purge_batch`; returns
        how many went."""
        total = 0
        for sql in _PURGES:
            async def purge(conn: asyncpg.Connection, sql: str = sql) -> str:
                status: str = await conn.execute(sql, int(self._clock()), self.purge_batch)
                return status
            while True:
                n = int((await self._run(purge)).split()[-1])
                total += n
                if n < self.purge_batch:
                    break
        return total

    async def _run(self, op: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `op` on a pooled connection; reconnect and retry for `retry_seconds`."""
        if self._pool is None:
            raise StoreUnavailable("state store is not started")
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.02
        while True:
            try:
                async with self._pool.acquire(timeout=self.command_timeout) as conn:
                    return await op(conn)
            except _TRANSIENT as e:
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(f"PostgreSQL at {self.where} unavailable:"
                                           f" {_scrub(str(e), self.dsn)}") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)
            except _REJECTED as e:
                # Not an outage: the message names the kind of error, never the value.
                raise InvalidInput(f"the state store cannot keep this value"
                                   f" ({type(e).__name__})") from None
            except asyncpg.PostgresError as e:
                raise StoreUnavailable(f"PostgreSQL at {self.where} failed:"
                                       f" {_scrub(str(e), self.dsn)}") from None

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(self.purge_interval)
            try:
                n = await self.purge_expired()
                if n:
                    log.debug("state: purged %d expired responses", n)
            except StoreUnavailable as e:
                log.warning("state: purge skipped: %s", e)
            except Exception:  # never let the purge loop die
                log.exception("state: postgres purge failed")
