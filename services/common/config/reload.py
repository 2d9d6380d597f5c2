"""Live reload: every service watches the config file it was started with (and the `.env`
beside it) and applies a changed one without a restart; SIGHUP — what `switchyard reload`
and the launcher send — makes it look at once.

The file is polled: a `stat` each second, and only when that changes the content's digest,
so a `touch` reloads nothing. `stat` follows links, so the symlink swap by which Kubernetes
updates a ConfigMap volume shows as a new file. A file with errors is refused whole: the
service keeps what it runs and logs why in one record (the config's one-screen error).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from switchyard.common.config.envfile import env_file_for
from switchyard.common.config.fields import SERVICES, ConfigError
from switchyard.common.config.loader import load_config, source_digest
from switchyard.common.config.model import Config
from switchyard.common.instances import Registration
from switchyard.common.telemetry import tracer

log = logging.getLogger("switchyard.config")

POLL_S = 1.0
Apply = Callable[[Config], Awaitable[None]]
Stamp = tuple[tuple[int, int, int, int] | None, ...]

EVERY = frozenset(SERVICES)
# What a running service cannot change in place, for the services it matters to: a change
# here is logged as waiting for a restart (the rest of the file is applied).
RESTART_ONLY: tuple[tuple[str, frozenset[str], Callable[[Config], object]], ...] = (
    ("services (addresses, connection age)", EVERY, lambda c: c.services),
    ("limits.drain_seconds", EVERY, lambda c: c.security.drain_s),   # the servers' own
    ("listeners (address, port)", frozenset({"edge"}),
     lambda c: (c.listener.address, c.listener.port)),
    # Settings of the edge's connection protocol (edge/connections.py), fixed at start.
    ("limits (max_connections, header_timeout_seconds, body_timeout_seconds, "
     "keep_alive_seconds)", frozenset({"edge"}),
     lambda c: (c.security.max_connections, c.security.header_timeout_s,
                c.security.body_timeout_s, c.security.keep_alive_s)),
    ("state_storage (type, connection_string)", frozenset({"state"}),
     lambda c: (c.state.type, c.state.connection_string)),
    ("overrides (upstream_connect_timeout, upstream_tls_ca_path)", frozenset({"providers"}),
     lambda c: c.upstream),
)


async def apply_tracing(config: Config, service: str) -> None:
    """Swap the process's tracer for the new `tracing:`; the old exporter finishes its last
    shipment in a thread."""
    retired = tracer.reconfigure(config.tracing, service)
    if retired is not None:
        await asyncio.to_thread(retired.shutdown)


def restart_needed(old: Config, new: Config, service: str) -> list[str]:
    """The parts of `new` that `service` applies only when it starts again."""
    return [label for label, users, part in RESTART_ONLY
            if service in users and part(old) != part(new)]


def _stat(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def file_stamp(path: str) -> Stamp:
    """What changes when the file or its `.env` is written, replaced or relinked."""
    return _stat(path), _stat(env_file_for(path))


def read_digest(path: str) -> str | None:
    """The digest `load_config` would give the file now (None: it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return source_digest(fh.read(), path)
    except (OSError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class Outcome:
    """What one look at the file did."""
    digest: str
    applied: bool
    error: str = ""
    restart: tuple[str, ...] = ()


class ConfigWatcher:
    """Watches `config.path` for `service` and hands every valid new config to `apply`.

    `apply` runs in the event loop and must swap the service's state in one step (requests
    in flight keep what they hold); if it raises, the running config stays. With `register`
    the process keeps a record for `switchyard reload` (common/instances.py); `signals`
    installs the SIGHUP handler (main thread only).
    """

    def __init__(self, config: Config, service: str, apply: Apply, *,
                 interval: float = POLL_S, allow_unsupported: bool = False,
                 register: bool = True, signals: bool = True) -> None:
        self.config = config
        self.started_with = config   # what restart-only parts are compared with
        self.path = config.path
        self.service = service
        self.apply = apply
        self.interval = interval
        self.allow_unsupported = allow_unsupported
        self.applied = config.source_digest
        self.rejected = ""
        self.last_error = ""              # why `rejected` was refused
        self.restart: tuple[str, ...] = ()   # applied changes waiting for a restart
        self.reloads = 0
        self.registration = Registration(service, self.path) if register else None
        self._signals = signals
        self._stamp: Stamp | None = None   # none yet: the first look compares digests
        self._wake: asyncio.Event | None = None
        self._forced = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Start watching (in the running loop)."""
        if self._task is None:
            self._wake = asyncio.Event()
            if self._signals:
                # Not the main thread, or a loop without signal support: watch the file only.
                with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request)
            self._task = asyncio.create_task(self._run(), name=f"{self.service}-config-watch")
        return self._task

    def request(self) -> None:
        """Look now, and reload even a file whose stat did not change (SIGHUP)."""
        self._forced = True
        if self._wake is not None:
            self._wake.set()

    async def close(self) -> None:
        if self._signals and self._task is not None:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.registration is not None:
            self.registration.remove()

    async def _run(self) -> None:
        assert self._wake is not None
        if self.registration is not None:
            await asyncio.to_thread(self.registration.update, applied=self.applied)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            forced, self._forced = self._forced, False
            try:
                await self.check(forced)
            except Exception:  # the watch must outlive any one bad look
                log.exception("config %s: reload failed unexpectedly", self.path)

    async def check(self, forced: bool = False) -> Outcome | None:
        """Look at the file; reload it when its content changed (or `forced`)."""
        stamp = await asyncio.to_thread(file_stamp, self.path)
        if stamp == self._stamp and not forced:
            return None
        self._stamp = stamp
        digest = await asyncio.to_thread(read_digest, self.path)
        if digest is None:
            # Mid-replace, or gone: keep running, the next change is seen.
            if forced:
                log.error("config reload failed: cannot read %s; still running the config "
                          "loaded before", self.path)
            return None
        # Nothing new: a SIGHUP is answered with what was decided before (nothing else
        # could differ: the digest covers the file and its `.env`).
        if digest == self.applied:
            return await self._report(Outcome(digest, True, restart=self.restart)) \
                if forced else None
        if digest == self.rejected:
            return await self._report(Outcome(digest, False, self.last_error)) \
                if forced else None
        try:
            config = await asyncio.to_thread(load_config, self.path, self.service)
            if config.unsupported and not self.allow_unsupported:
                raise ConfigError(self.path, [n.line for n in config.unsupported] + [
                    f"{self.path}: uses Plano features Switchyard does not serve (above); "
                    "remove them, or start with --allow-unsupported"])
        except ConfigError as exc:
            return await self._refuse(digest, str(exc))
        restart = restart_needed(self.started_with, config, self.service)
        try:
            if config.tracing != self.config.tracing:   # the same for every service: here
                await apply_tracing(config, self.service)
            await self.apply(config)
        except ConfigError as exc:   # the service found the config unusable: say why
            return await self._refuse(digest, str(exc))
        except Exception as exc:
            log.exception("config reload failed: %s could not be applied", self.path)
            return await self._refuse(digest, f"{self.path}: could not be applied: {exc}")
        self.config, self.applied, self.rejected = config, config.source_digest, ""
        self.restart = tuple(restart)
        self.reloads += 1
        log.info("config reloaded from %s", self.path)
        if restart:
            log.warning("config %s: changes to %s take effect when %s restarts; the rest is "
                        "applied", self.path, "; ".join(restart), self.service)
        return await self._report(Outcome(config.source_digest, True, restart=tuple(restart)))

    async def _refuse(self, digest: str, error: str) -> Outcome:
        self.rejected, self.last_error = digest, error
        # One record with the whole error, so the reason is never split over log lines.
        log.error("config reload failed: %s has errors; still running the config loaded "
                  "before:\n%s", self.path, error)
        return await self._report(Outcome(digest, False, error=error))

    async def _report(self, outcome: Outcome) -> Outcome:
        """Put the outcome in the process record, for `switchyard reload` (off the loop)."""
        if self.registration is not None:
            if outcome.applied:
                changes = {"applied": outcome.digest, "restart": list(outcome.restart),
                           "rejected": "", "error": ""}
            else:
                changes = {"rejected": outcome.digest, "error": outcome.error}
            await asyncio.to_thread(self.registration.update, **changes)
        return outcome


def watch(config: Config, service: str, apply: Apply, *, allow_unsupported: bool = False
          ) -> ConfigWatcher | None:
    """A started watcher for a service process (None when the config is not a file)."""
    if not os.path.isfile(config.path):
        return None
    watcher = ConfigWatcher(config, service, apply, allow_unsupported=allow_unsupported)
    watcher.start()
    return watcher
