"""`switchyard up`: start the four services as child processes, wait until each is healthy,
supervise them (restart with backoff), and stop them all on SIGINT/SIGTERM."""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import FrameType

from switchyard.common.config.model import Config

START_ORDER = ("state", "router", "providers", "edge")
LAUNCHER_PID_ENV = "SWITCHYARD_LAUNCHER_PID"
HEALTH_DEADLINE_S = 30.0
STOP_GRACE_S = 12.0
MAX_BACKOFF_S = 10.0


def service_command(service: str, config_path: str) -> list[str]:
    """This interpreter and this copy of the package, whatever else is installed; the child
    names itself `switchyard serve <service>` (setproctitle) so `ps` says which is which."""
    return [sys.executable, "-m", "switchyard", "serve", service, "--config", config_path]


def service_env() -> dict[str, str]:
    """Children import the same `services` package as the launcher, and learn its pid so
    they can stop when it dies (see `die_with_launcher`)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""),
            LAUNCHER_PID_ENV: str(os.getpid())}


def die_with_launcher() -> None:
    """In a child: get SIGTERM when the launcher dies, even by SIGKILL (Linux prctl).

    Done by the child itself at start-up rather than in a preexec_fn: forking with a
    preexec_fn in the launcher, which has gRPC threads, can deadlock.
    """
    launcher = os.environ.get(LAUNCHER_PID_ENV)
    if not launcher:
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - non-Linux
        return
    if os.getppid() != int(launcher):  # the launcher died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class Launcher:
    def __init__(self, config: Config, config_path: str) -> None:
        self.config = config
        self.config_path = config_path
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self.stopping = False

    def _say(self, text: str) -> None:
        print(f"switchyard: {text}", flush=True)

    def _spawn(self, service: str) -> None:
        # Own process group: Ctrl-C reaches the launcher only; it stops the children in order.
        self.procs[service] = subprocess.Popen(
            service_command(service, self.config_path), env=service_env(), process_group=0)

    def _healthy(self, service: str) -> bool:
        if service == "edge":
            # The edge is up once it answers; /healthz itself reports the backends.
            lst = self.config.listener
            host = "127.0.0.1" if lst.address in ("0.0.0.0", "::") else lst.address
            try:
                with urllib.request.urlopen(f"http://{host}:{lst.port}/healthz", timeout=1.0):
                    return True
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
        import asyncio

        from switchyard.common.grpc_server import is_serving
        # The children are reached where the edge reaches them: the loaded `services`
        # addresses (SWITCHYARD_<SERVICE>_ADDR applied by the loader).
        address: str = getattr(self.config.services, service)
        return asyncio.run(is_serving(address))

    def _wait_healthy(self, service: str, deadline_s: float = HEALTH_DEADLINE_S) -> bool:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and not self.stopping:
            proc = self.procs[service]
            if proc.poll() is not None:
                return False
            if self._healthy(service):
                return True
            time.sleep(0.1)  # polling a child's health; not synchronisation between tests
        return False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            for service in START_ORDER:
                self._spawn(service)
                if not self._wait_healthy(service):
                    if self.stopping:
                        return 0
                    self._say(f"{service} did not become healthy within "
                              f"{HEALTH_DEADLINE_S:.0f}s; stopping")
                    return 1
                self._say(f"{service} is up (pid {self.procs[service].pid})")
            lst = self.config.listener
            self._say(f"gateway listening on http://{lst.address}:{lst.port} "
                      f"(chat completions, responses, messages under /v1); Ctrl-C stops it")
            self._supervise()
            return 0
        finally:
            self._stop_all()

    def _supervise(self) -> None:
        next_start: dict[str, float] = {}
        while not self.stopping:
            now = time.monotonic()
            for service, proc in list(self.procs.items()):
                if proc.poll() is None:
                    continue
                if service not in next_start:
                    n = self.restarts.get(service, 0)
                    delay = min(0.5 * (2 ** n), MAX_BACKOFF_S)
                    self._say(f"{service} exited with code {proc.returncode}; "
                              f"restarting in {delay:.1f}s")
                    next_start[service] = now + delay
                    self.restarts[service] = n + 1
                elif now >= next_start[service]:
                    del next_start[service]
                    self._spawn(service)
                    self._say(f"{service} restarted (pid {self.procs[service].pid})")
            time.sleep(0.2)  # supervision tick

    def _stop_all(self) -> None:
        self.stopping = True
        for service in reversed(START_ORDER):
            proc = self.procs.get(service)
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE_S
        for service in reversed(START_ORDER):
            proc = self.procs.get(service)
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._say("all services stopped")
