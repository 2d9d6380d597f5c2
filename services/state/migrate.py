"""Versioned schema migrations for the PostgreSQL store, applied at start-up.

Files are `migrations/NNNN_name.sql`, applied in version order, each recorded in
`schema_migrations(version, name, applied_at)`. Everything runs in one transaction holding
a transaction-scoped advisory lock, so replicas starting together apply each file once and
a failed migration leaves the database as it was.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary constant shared by every replica: "SwYdSt" in ASCII.
ADVISORY_LOCK_KEY = 0x5377_5964_5374
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in `directory`, sorted by version; bad names are an error."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path}")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {directory}")
    return found


async def apply_migrations(conn: asyncpg.Connection,
                           migrations: list[Migration] | None = None) -> list[int]:
    """Apply the migrations this database lacks; returns the versions applied now."""
    migrations = load_migrations() if migrations is None else migrations
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in migrations:
            if m.version in done:
                continue
            log.info("state: applying migration %04d_%s", m.version, m.name)
            await conn.execute(m.sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                               m.version, m.name)
            applied_now.append(m.version)
        unknown = done - {m.version for m in migrations}
        if unknown:
            log.warning("state: database has migrations this build does not know: %s",
                        sorted(unknown))
    return applied_now
