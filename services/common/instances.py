"""The switchyard services running for a config file, so `switchyard reload` can find them.

Each `switchyard serve` process keeps a small JSON record in the run directory: its service,
the config file it runs, the digest of the config it has applied and of the last one it
refused (with why). Best effort: where nothing can be written (a read-only disk) only
`reload`'s way of finding the process is lost; SIGHUP and the file watch still work.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)

RUN_DIR_ENV = "SWITCHYARD_RUN_DIR"


def run_dir() -> str:
    """`$SWITCHYARD_RUN_DIR`, else `$XDG_RUNTIME_DIR/switchyard`, else a per-user directory
    under the temp dir."""
    explicit = os.environ.get(RUN_DIR_ENV)
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "switchyard")
    return os.path.join(tempfile.gettempdir(), f"switchyard-{os.getuid()}")


def same_file(a: str, b: str) -> bool:
    """The same config file, as written or through its links."""
    return os.path.abspath(a) == os.path.abspath(b) or \
        os.path.realpath(a) == os.path.realpath(b)


def start_time(pid: int) -> str:
    """The process's start time (clock ticks since boot, Linux); "" where unknown. A pid
    reused by another process has another start time."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


@dataclass
class Instance:
    """One running service, as its record says."""
    pid: int
    service: str
    config: str
    started: str = ""
    applied: str = ""                 # digest of the config it runs
    rejected: str = ""                # digest of the last config it refused
    error: str = ""                   # why it refused that one (the config's errors)
    restart: list[str] = field(default_factory=list)   # changes waiting for a restart

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return not self.started or start_time(self.pid) == self.started


def _usable(directory: str) -> bool:
    """Ours and closed to others (a directory someone else made could feed us records)."""
    try:
        st = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and \
        not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class Registration:
    """This process's record, rewritten on every change and removed at exit."""

    def __init__(self, service: str, config_path: str) -> None:
        self.directory = run_dir()
        self.instance = Instance(pid=os.getpid(), service=service,
                                 config=os.path.abspath(config_path),
                                 started=start_time(os.getpid()))
        self.path = os.path.join(self.directory, f"{self.instance.pid}.json")
        self.written = False

    def update(self, **changes: object) -> None:
        for name, value in changes.items():
            setattr(self.instance, name, value)
        self.write()

    def write(self) -> None:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            if not _usable(self.directory):
                log.debug("run directory %s is not private; not registering", self.directory)
                return
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(asdict(self.instance), fh)
            os.replace(tmp, self.path)   # readers never see half a record
            self.written = True
        except OSError as exc:
            log.debug("cannot write %s: %s", self.path, exc)

    def remove(self) -> None:
        if self.written:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.written = False


def running(config_path: str) -> list[Instance]:
    """The live services registered for `config_path`, by pid; stale records are removed."""
    directory = run_dir()
    if not _usable(directory):
        return []
    found = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(directory, name)
        instance = read(path)
        if instance is None:
            continue
        if not instance.alive():
            with contextlib.suppress(OSError):
                os.unlink(path)
            continue
        if same_file(instance.config, config_path):
            found.append(instance)
    return sorted(found, key=lambda i: i.pid)


def read(path: str) -> Instance | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return Instance(**data)
    except (OSError, ValueError, TypeError):
        return None


def record_of(instance: Instance) -> Instance | None:
    """The instance's record as it is now (None once it is gone)."""
    return read(os.path.join(run_dir(), f"{instance.pid}.json"))
