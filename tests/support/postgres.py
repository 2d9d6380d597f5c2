"""A throwaway PostgreSQL server for tests: initdb into a temp dir, start on a free port.

Usage from a conftest or test module:

    from tests.support.postgres import postgres_server
    pg = postgres_server()            # a session-scoped fixture named `pg`

    def test_x(pg):
        dsn = pg.create_database()    # fresh database, postgresql://postgres@127.0.0.1:PORT/DB

Every fixture made by `postgres_server()` shares one server per test session. For tests that
stop or restart the server, use `PostgresServer()` directly (it is a context manager).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.servers import Throwaway

INSTALL_HINT = ("PostgreSQL server binaries (initdb, pg_ctl) not found; install them with"
                " `apt-get install -y postgresql` (CI installs it)")


def find_bindir() -> Path:
    """Directory holding initdb/pg_ctl: `pg_config --bindir`, else /usr/lib/postgresql/*/bin."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            candidates.append(out)
        except (subprocess.SubprocessError, OSError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise RuntimeError(INSTALL_HINT)



class PostgresServer(Throwaway):
    """One PostgreSQL server in a temp dir, trust auth, listening on 127.0.0.1 only."""

    def __init__(self, startup_timeout: float = 30.0) -> None:
        self.bindir = find_bindir()
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.host = "127.0.0.1"
        self.root = Path(tempfile.mkdtemp(prefix="switchyard-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        self._initialized = False

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        """Server commands must not run as root: run them as the `postgres` user then."""
        return ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n"
                               f"{proc.stderr}\n{log}")

    def start(self) -> None:
        """initdb on first start, then start and wait until it accepts connections."""
        if not self._initialized:
            if self._as_postgres:
                shutil.chown(self.root, "postgres", "postgres")
            self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--no-sync")
            self._initialized = True
        opts = (f"-p {self.port} -c listen_addresses={self.host} -k {self.root}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                  "-o", opts, "-w", "-t", str(int(self.startup_timeout)), "start",
                  timeout=self.startup_timeout + 10)
        self.wait_ready()

    def wait_ready(self) -> None:
        """Poll pg_isready until the server accepts connections, or fail at the deadline."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            proc = subprocess.run([str(self.bindir / "pg_isready"), "-h", self.host, "-p",
                                   str(self.port), "-U", "postgres", "-t", "1"],
                                  capture_output=True, timeout=10)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {self.port} not ready after"
                                   f" {self.startup_timeout}s")
            time.sleep(0.05)  # polling interval, not synchronisation

    def stop(self) -> None:
        if self._initialized and (self.datadir / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w",
                      "stop")

    def restart(self) -> None:
        """Stop and start again on the same data dir and port (existing sessions die)."""
        self.stop()
        self.start()

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh database and return its DSN."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        proc = subprocess.run([str(self.bindir / "createdb"), "-h", self.host, "-p",
                               str(self.port), "-U", "postgres", name],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {proc.stderr}")
        return self.dsn(name)


_shared: PostgresServer | None = None


def postgres_server():
    """A session-scoped fixture yielding the session's one shared `PostgresServer`.

    Each test module may create its own fixture with this; they all share one server, which
    is stopped and removed when the pytest session ends.
    """

    @pytest.fixture(scope="session")
    def _fixture(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
        global _shared
        if _shared is None:
            try:
                server = PostgresServer()
            except RuntimeError as e:  # binaries missing: say how to install them
                pytest.fail(str(e), pytrace=False)
            server.__enter__()
            _shared = server
            request.config.add_cleanup(_remove_shared)
        yield _shared

    return _fixture


def _remove_shared() -> None:
    global _shared
    if _shared is not None:
        server, _shared = _shared, None
        server.remove()
