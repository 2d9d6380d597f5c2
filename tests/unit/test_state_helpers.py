"""Pure helpers of the state service: DSN descriptions, expiry, migration discovery."""
from __future__ import annotations

import pytest

from switchyard.common.config.model import StateStorage
from switchyard.state.migrate import load_migrations
from switchyard.state.service import make_store
from switchyard.state.stores.base import resolve_expiry, tenant_key
from switchyard.state.stores.memory import MemoryStore
from switchyard.state.stores.postgres import PostgresStore, _scrub, describe_dsn


def test_describe_dsn_never_shows_the_password():
    dsn = "postgresql://app:hunter2@db.internal:6543/switchyard"
    assert describe_dsn(dsn) == "app@db.internal:6543/switchyard"
    assert describe_dsn("postgresql://localhost") == "localhost:5432/postgres"
    assert "hunter2" not in _scrub("failed for postgresql://app:hunter2@db", dsn)


def test_expiry_and_tenant_defaults():
    assert resolve_expiry(0, 1000.7, 60) == 1060
    assert resolve_expiry(5, 1000, 60) == 5
    assert tenant_key("") == "default"
    assert tenant_key("acme") == "acme"


def test_shipped_migrations_are_ordered_and_named():
    found = load_migrations()
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].version == 1 and "CREATE TABLE responses" in found[0].sql


def test_badly_named_migration_is_rejected(tmp_path):
    (tmp_path / "1_init.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match="NNNN_name.sql"):
        load_migrations(tmp_path)


def test_duplicate_versions_are_rejected(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0001_b.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match="duplicate"):
        load_migrations(tmp_path)


def test_make_store_follows_config():
    mem = make_store(StateStorage(type="memory", max_entries=7, ttl_seconds=9))
    assert isinstance(mem, MemoryStore) and mem.max_entries == 7 and mem.ttl_seconds == 9
    pg = make_store(StateStorage(type="postgres", connection_string="postgresql://h/db"))
    assert isinstance(pg, PostgresStore) and pg.dsn == "postgresql://h/db"
    with pytest.raises(SystemExit, match="connection_string"):
        make_store(StateStorage(type="postgres"))
    with pytest.raises(SystemExit, match="unknown type 'redis'"):
        make_store(StateStorage(type="redis"))
