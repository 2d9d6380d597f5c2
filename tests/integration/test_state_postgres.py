"""PostgreSQL store specifics against a real server: migrations, purge, reconnects."""
from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from switchyard.common.proto import chat_pb2, state_pb2
from switchyard.state.migrate import apply_migrations
from switchyard.state.stores.base import StoreUnavailable
from switchyard.state.stores.postgres import PostgresStore
from tests.support.postgres import PostgresServer, free_port, postgres_server

pg = postgres_server()


def resp(id: str, expires_at: int = 0, tenant: str = "t") -> state_pb2.StoredResponse:
    return state_pb2.StoredResponse(
        id=id, tenant=tenant, expires_at=expires_at,
        input=[chat_pb2.Message(role=chat_pb2.ROLE_USER,
                                parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text=id))])])


async def count(dsn: str, sql: str = "SELECT count(*) FROM responses") -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_migrations_on_an_empty_database_then_reapplied(pg):
    dsn = pg.create_database()
    conn = await asyncpg.connect(dsn)
    try:
        assert await apply_migrations(conn) == [1, 2]
        rows = await conn.fetch("SELECT version, name, applied_at FROM schema_migrations"
                                " ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [(1, "responses"),
                                                               (2, "conversations")]
        assert rows[0]["applied_at"] is not None
        cols = {r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name='responses'")}
        assert {"id", "tenant", "model", "provider", "previous_id", "kind", "input", "output",
                "usage", "body_json", "input_items_json", "created_at",
                "expires_at"} <= cols
        assert await apply_migrations(conn) == []
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 2
    finally:
        await conn.close()
    store = PostgresStore(dsn, purge_interval=0)     # a store starting on a current database
    await store.start()
    await store.put(resp("x"))
    assert await store.get("t", "x") is not None
    await store.close()


async def test_replicas_starting_together_migrate_once(pg):
    dsn = pg.create_database()
    stores = [PostgresStore(dsn, purge_interval=0) for _ in range(4)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        assert await count(dsn, "SELECT count(*) FROM schema_migrations") == 2
        await stores[0].put(resp("shared"))
        assert await stores[3].get("t", "shared") is not None
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_expired_rows_are_invisible_and_purged_in_batches(pg):
    dsn = pg.create_database()
    store = PostgresStore(dsn, purge_interval=0, purge_batch=3)
    await store.start()
    try:
        past = int(time.time()) - 10
        for i in range(10):
            await store.put(resp(f"old{i}", expires_at=past))
        await store.put(resp("live"))
        assert await store.get("t", "old0") is None
        assert await store.input_items("t", "old0") is None
        assert await count(dsn) == 11          # invisible, not yet gone
        assert await store.purge_expired() == 10
        assert await count(dsn) == 1
        assert await store.get("t", "live") is not None
    finally:
        await store.close()


async def test_background_purge_loop_deletes_expired_rows(pg):
    dsn = pg.create_database()
    store = PostgresStore(dsn, purge_interval=0.05)
    await store.start()
    try:
        await store.put(resp("old", expires_at=int(time.time()) - 1))
        deadline = time.monotonic() + 10
        while await count(dsn) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await count(dsn) == 0
    finally:
        await store.close()


async def test_unreachable_database_fails_after_bounded_retries_without_the_password():
    port = free_port()
    store = PostgresStore(f"postgresql://app:s3cr3t-pw@127.0.0.1:{port}/convdb",
                          connect_timeout=0.6)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        await store.start()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert f"127.0.0.1:{port}/convdb" in message
    assert "s3cr3t-pw" not in message
    assert "attempts" in message
    assert 0.3 <= elapsed < 5


async def test_missing_database_fails_fast_with_a_clear_message(pg):
    store = PostgresStore(pg.dsn("no_such_db"), connect_timeout=10)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="no_such_db"):
        await store.start()
    assert time.monotonic() - started < 5


async def test_operations_before_start_are_unavailable():
    with pytest.raises(StoreUnavailable, match="not started"):
        await PostgresStore("postgresql://127.0.0.1/x").get("t", "x")


async def test_start_waits_for_a_database_that_comes_up_late():
    with PostgresServer() as server:
        dsn = server.create_database()
        server.stop()
        store = PostgresStore(dsn, connect_timeout=30, purge_interval=0)
        starting = asyncio.create_task(store.start())
        await asyncio.sleep(0.3)               # let it fail at least once; not a sync point
        assert not starting.done()
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(starting, 30)
        try:
            await store.put(resp("late"))
            assert await store.get("t", "late") is not None
        finally:
            await store.close()


async def test_pool_reconnects_after_postgres_restarts():
    with PostgresServer() as server:
        store = PostgresStore(server.create_database(), purge_interval=0, pool_min=2,
                              retry_seconds=5)
        await store.start()
        try:
            await store.put(resp("before"))
            await asyncio.to_thread(server.restart)
            assert await store.get("t", "before") is not None
            await store.put(resp("after"))
            _, ids = await store.history("t", "after", 5)
            assert ids == ["after"]
            # while the database is down, callers get StoreUnavailable rather than a hang
            await asyncio.to_thread(server.stop)
            store.retry_seconds = 0.3
            with pytest.raises(StoreUnavailable, match="127.0.0.1"):
                await store.get("t", "before")
            await asyncio.to_thread(server.start)
            store.retry_seconds = 5
            assert await store.get("t", "after") is not None
        finally:
            await store.close()
