"""A throwaway Redis server for tests: `redis-server` on a free port in a temp dir.

Usage from a conftest or test module:

    from tests.support.redis import redis_server
    redis = redis_server()              # a module-scoped fixture named `redis`

    def test_x(redis):
        url = redis.url(db=1)           # redis://127.0.0.1:PORT/1

Each fixture made by `redis_server()` starts its own server (tests stop and start it to
show outages). `RedisServer(password=...)` requires a password.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.servers import Throwaway, stop_process

INSTALL_HINT = ("redis-server not found; install it with `apt-get install -y redis-server` "
                "(scripts/test.sh does)")


def find_binary() -> str:
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server")
         if Path(p).exists()), None)
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return found



class RedisServer(Throwaway):
    """One redis-server listening on 127.0.0.1 only, no persistence, its files in a temp dir."""

    def __init__(self, password: str | None = None, startup_timeout: float = 20.0) -> None:
        self.binary = find_binary()
        self.password = password
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="switchyard-redis-"))
        self.logfile = self.root / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def start(self) -> None:
        """Start (again, on the same port) and wait until it answers PING."""
        args = [self.binary, "--port", str(self.port), "--bind", self.host,
                "--dir", str(self.root), "--save", "", "--appendonly", "no",
                "--logfile", str(self.logfile), "--protected-mode", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()

    def ping(self) -> bool:
        """One PING over a raw socket (the test does not depend on the client under test)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                if self.password:
                    s.sendall(f"AUTH {self.password}\r\n".encode())
                    if not s.recv(64).startswith(b"+OK"):
                        return False
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not self.ping():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n"
                                   f"{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING "
                                   f"within {self.startup_timeout}s:\n{self.log()}")
            time.sleep(0.05)  # polling interval, not synchronisation

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""

    def stop(self) -> None:
        """Stop the server and wait until it has exited (its port refuses connections)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        stop_process(proc)

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def redis_server(scope: str = "module", password: str | None = None):
    """A fixture yielding a running `RedisServer`, removed when its scope ends."""

    @pytest.fixture(scope=scope)
    def _fixture() -> Iterator[RedisServer]:
        try:
            server = RedisServer(password=password)
        except RuntimeError as e:  # binary missing: say how to install it
            pytest.fail(str(e), pytrace=False)
        with server:
            yield server

    return _fixture
