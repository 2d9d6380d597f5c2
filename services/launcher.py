"""`switchyard up`: start the four services as child processes, wait until each is healthy,
supervise them (restart with backoff), and stop them all on SIGINT/SIGTERM."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from types import FrameType

from switchyard.common.config.model import Config
from switchyard.common.config.sections import SERVICE_ENV
from switchyard.common.internal_auth import TOKEN_ENV, TOKEN_FILE_ENV
from switchyard.common.launched import INSTANCE_ENV, INSTANCE_HEADER, LAUNCHER_PID_ENV
from switchyard.common.ports import EXIT_ADDRESS_IN_USE, bind_error, in_use

START_ORDER = ("state", "router", "providers", "edge")
BACKENDS = ("state", "router", "providers")
HEALTH_DEADLINE_S = 30.0
STOP_GRACE_S = 12.0
BASE_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
HEALTHY_RESET_S = 60.0   # a child that ran this long starts its backoff afresh
SOCKET_PATH_MAX = 100    # sun_path holds 108 bytes on Linux, 104 on macOS


def restart_backoff(failures: int, ran_for_s: float) -> tuple[float, int]:
    """(delay before the next start, failures counted now) for a child that exited after
    running `ran_for_s`: doubling from 0.5 s to 10 s, reset by a run of 60 s or more."""
    n = 0 if ran_for_s >= HEALTHY_RESET_S else failures
    return min(BASE_BACKOFF_S * (2 ** n), MAX_BACKOFF_S), n + 1


def private_runtime_dir() -> str:
    """A fresh 0700 directory for this instance's sockets, short enough for socket paths."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not os.path.isdir(base) or len(base) > SOCKET_PATH_MAX - 40:
        base = tempfile.gettempdir()
        if len(base) > SOCKET_PATH_MAX - 40:
            base = "/tmp"
    return tempfile.mkdtemp(prefix="switchyard-", dir=base)


def service_command(service: str, config_path: str, allow_unsupported: bool = False
                    ) -> list[str]:
    """This interpreter and this copy of the package, whatever else is installed; the child
    names itself `switchyard serve <service>` (setproctitle) so `ps` says which is which."""
    return [sys.executable, "-m", "switchyard", "serve", service, "--config", config_path,
            *(["--allow-unsupported"] if allow_unsupported else [])]


def service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Children run this copy of the `switchyard` package (the folder holding it goes first on
    PYTHONPATH; an editable install finds it through its own hook) and learn the launcher's
    pid so they can stop when it dies (see `launched.die_with_launcher`); `extra` is set on top."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""),
            LAUNCHER_PID_ENV: str(os.getpid()), **(extra or {})}


class Launcher:
    def __init__(self, config: Config, config_path: str, allow_unsupported: bool = False
                 ) -> None:
        self.config = config
        self.config_path = config_path
        self.allow_unsupported = allow_unsupported   # handed to the children (`serve`)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[str, float] = {}
        self.restarts: dict[str, int] = {}
        self.stopping = False
        self.reload_requested = False
        self.instance = secrets.token_urlsafe(16)
        self.runtime_dir: str | None = None
        self.addresses: dict[str, str] = {s: getattr(config.services, s) for s in BACKENDS}
        self.child_env: dict[str, str] = {INSTANCE_ENV: self.instance}

    def _say(self, text: str) -> None:
        print(f"switchyard: {text}", flush=True)

    def _fail(self, text: str) -> None:
        print(f"switchyard: {text}", file=sys.stderr, flush=True)

    def _prepare(self) -> None:
        """Private sockets for the backends the config does not place, and the internal
        token for the children when the environment has none."""
        unnamed = [s for s in BACKENDS if s not in self.config.services.named]
        if unnamed:
            self.runtime_dir = private_runtime_dir()
        for service in unnamed:
            address = f"unix:{self.runtime_dir}/{service}.sock"
            self.addresses[service] = address
            self.child_env[SERVICE_ENV[service]] = address
        if not (os.environ.get(TOKEN_ENV) or os.environ.get(TOKEN_FILE_ENV)):
            self.child_env[TOKEN_ENV] = secrets.token_urlsafe(32)

    def _env(self) -> dict[str, str]:
        env = service_env(self.child_env)
        for service in BACKENDS:  # a private socket is where the service binds, too
            if SERVICE_ENV[service] in self.child_env:
                env.pop(f"SWITCHYARD_{service.upper()}_LISTEN", None)
        return env

    def _spawn(self, service: str) -> None:
        # Own process group: Ctrl-C reaches the launcher only; it stops the children in order.
        self.procs[service] = subprocess.Popen(
            service_command(service, self.config_path, self.allow_unsupported),
            env=self._env(), process_group=0)
        self.started[service] = time.monotonic()

    def _edge_url(self) -> str:
        lst = self.config.listener
        host = "127.0.0.1" if lst.address in ("0.0.0.0", "::") else lst.address
        return f"http://{host}:{lst.port}/healthz"

    def _healthy(self, service: str) -> bool:
        if service == "edge":
            # Up once it answers with our instance token; /healthz reports the backends.
            try:
                with urllib.request.urlopen(self._edge_url(), timeout=1.0) as reply:
                    got = reply.headers.get(INSTANCE_HEADER)
            except urllib.error.HTTPError as err:
                got = err.headers.get(INSTANCE_HEADER)
            except OSError:
                return False
            return got == self.instance
        import asyncio

        from switchyard.common.grpc_server import is_serving
        return asyncio.run(is_serving(self.addresses[service]))

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

    def _port_taken(self) -> str | None:
        """The one-line complaint when the listener port is already taken, else None."""
        lst = self.config.listener
        err = bind_error(lst.address, lst.port)
        if err is None:
            return None
        if in_use(err):
            return (f"port {lst.port} is already in use ({lst.address}:{lst.port}, another "
                    f"gateway?); stop what is using it or set another port under listeners "
                    f"in {self.config_path}")
        return f"cannot listen on {lst.address}:{lst.port}: {err.strerror or err}"

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        self.stopping = True

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        self.reload_requested = True   # passed on by the supervision loop

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_reload)
        try:
            if (taken := self._port_taken()) is not None:
                self._fail(taken)   # one line, naming the config file
                return 1
            self._announce_config()
            self._prepare()
            for service in START_ORDER:
                self._spawn(service)
                if not self._wait_healthy(service):
                    if self.stopping:
                        return 0
                    self._fail(self._start_failure(service))
                    return 1
                self._say(f"{service} is up (pid {self.procs[service].pid})")
            lst = self.config.listener
            self._say(f"gateway listening on http://{lst.address}:{lst.port} "
                      f"(chat completions, responses, messages under /v1); Ctrl-C stops it")
            return self._supervise()
        finally:
            self._stop_all()

    def _announce_config(self) -> None:
        """Which file (and `.env`) this gateway runs, and what of it is not served."""
        env_file = self.config.env_file
        self._say(f"config {self.config_path}" + (f" (variables also from {env_file})"
                                                  if env_file else ""))
        for notice in self.config.notices:
            self._say(notice.line)

    def _start_failure(self, service: str) -> str:
        code = self.procs[service].poll()
        if code is None:
            return f"{service} did not become healthy within {HEALTH_DEADLINE_S:.0f}s; stopping"
        if service == "edge" and (taken := self._port_taken()) is not None:
            return f"{taken}; stopping"
        return f"{service} exited with code {code} during start (see above); stopping"

    def _supervise(self) -> int:
        next_start: dict[str, float] = {}
        while not self.stopping:
            now = time.monotonic()
            if self.reload_requested:
                self._pass_reload()
            for service, proc in list(self.procs.items()):
                if proc.poll() is None:
                    continue
                if proc.returncode == EXIT_ADDRESS_IN_USE:
                    # Its address went to someone else: restarting cannot help.
                    self._fail(f"{service} cannot listen: its address is taken (see above); "
                               f"stopping")
                    return 1
                if service not in next_start:
                    delay, self.restarts[service] = restart_backoff(
                        self.restarts.get(service, 0), now - self.started[service])
                    self._say(f"{service} exited with code {proc.returncode}; "
                              f"restarting in {delay:.1f}s")
                    next_start[service] = now + delay
                elif now >= next_start[service]:
                    del next_start[service]
                    self._spawn(service)
                    self._say(f"{service} restarted (pid {self.procs[service].pid})")
            time.sleep(0.2)  # supervision tick
        return 0

    def _pass_reload(self) -> None:
        """SIGHUP: every running service reloads the config file now (config/reload.py)."""
        self.reload_requested = False
        running = [s for s in START_ORDER if s in self.procs and self.procs[s].poll() is None]
        self._say(f"reload requested: asking {', '.join(running)} to apply "
                  f"{self.config_path}")
        for service in running:
            self.procs[service].send_signal(signal.SIGHUP)

    def _stop_all(self) -> None:
        self.stopping = True
        for service in reversed(START_ORDER):
            proc = self.procs.get(service)
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        # The edge may drain for `limits.drain_seconds` (then ends open streams cleanly);
        # killing it sooner would cut them with no error event.
        grace = max(STOP_GRACE_S, self.config.security.drain_s + 5.0)
        end = time.monotonic() + grace
        for service in reversed(START_ORDER):
            proc = self.procs.get(service)
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        if self.procs:
            self._say("all services stopped")
