"""Finished spans leave a serving process here. The hot path appends a record (a plain tuple,
`spans.Record`) to a bounded deque; a thread ships what is queued every SHIP_INTERVAL_S over
a pipe to the process's exporter process (`exporter.py`), which builds the OTLP messages and
exports them. So neither protobuf encoding nor the export call ever runs under this
process's GIL — marshalling plain tuples is one short C call — and no collector, slow or
gone, can make the event loop wait: a full queue drops its oldest spans, counted and logged.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import marshal
import os
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from switchyard.common.telemetry.spans import Record

log = logging.getLogger(__name__)

SHIP_INTERVAL_S = 0.1      # short: each shipment is small, so its GIL pause is too
FRAME = struct.Struct("<I")  # a frame: its length, then one marshalled value
PIPE_BYTES = 1 << 20       # room for a few seconds of spans if the exporter falls behind
RESPAWN_AFTER_S = 10.0     # an exporter that died is started again at most this often
DROP_LOG_INTERVAL_S = 60.0
EXPORTER_COMMAND = (sys.executable, "-m", "switchyard.common.telemetry.exporter")


class Shipper:
    """This process's span queue and its exporter process (started with the first spans)."""

    def __init__(self, settings: dict[str, Any], max_queue: int = 2048,
                 interval_s: float = SHIP_INTERVAL_S,
                 command: Sequence[str] = EXPORTER_COMMAND,
                 respawn_after_s: float = RESPAWN_AFTER_S) -> None:
        self._settings = settings        # the exporter's first frame: endpoint, service, delay
        self._queue: deque[Record] = deque(maxlen=max_queue)
        self.dropped = 0
        self._reported = 0
        self._reported_at = -DROP_LOG_INTERVAL_S
        self._interval_s = interval_s
        self._command = list(command)
        self._proc: subprocess.Popen[bytes] | None = None
        self._respawn_after_s = respawn_after_s
        self._failed_at = -respawn_after_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="span-shipper", daemon=True)
        self._thread.start()

    def add(self, record: Record) -> None:
        """The hot path: one append (deque appends are atomic; a full deque drops its oldest)."""
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append(record)

    @property
    def exporter_pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self._interval_s)
            try:
                self._ship()
            except Exception:   # a bug here must not end shipping for the process's life
                log.exception("shipping spans failed; this batch is dropped")
            if stopping:
                return

    def _take(self) -> list[Record]:
        queue = self._queue
        pop = queue.popleft
        return [pop() for _ in range(len(queue))]

    def _ship(self) -> None:
        self._report_drops()
        batch = self._take()
        if not batch:
            return
        proc = self._exporter()
        if proc is None or proc.stdin is None:
            self.dropped += len(batch)
            return
        try:
            data = marshal.dumps(batch)
        except ValueError:   # an attribute value of some other type: sent as the SDK would
            data = marshal.dumps([plain_record(r) for r in batch])
        try:
            _write_frame(proc.stdin.fileno(), data)
        except OSError:
            self.dropped += len(batch)
            self._lost(proc)

    def _exporter(self) -> subprocess.Popen[bytes] | None:
        """The running exporter process; started (again) when there is none."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        if proc is not None:
            self._lost(proc)
        if time.monotonic() - self._failed_at < self._respawn_after_s:
            return None
        proc = None
        try:
            # Its stderr is ours (the SDK's export warnings land in the service's log);
            # OTEL_* variables reach it through the inherited environment.
            proc = subprocess.Popen(self._command, stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, close_fds=True)
            assert proc.stdin is not None
            # Before its first frame: threads it starts inherit both.
            lower_priority(proc.pid)
            keep_off_serving_cpus(proc.pid)
            with contextlib.suppress(OSError):   # above pipe-max-size: keep the default
                fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            _write_frame(proc.stdin.fileno(), marshal.dumps(self._settings))
        except OSError as exc:
            log.warning("cannot start the span exporter process: %s; spans are dropped for "
                        "%.0f s", exc, self._respawn_after_s)
            self._failed_at = time.monotonic()
            if proc is not None:
                _close(proc)
                proc.kill()
                proc.wait()
            return None
        self._proc = proc
        return proc

    def _lost(self, proc: subprocess.Popen[bytes]) -> None:
        if self._proc is proc:
            self._proc = None
            self._failed_at = time.monotonic()
            log.warning("the span exporter process exited (code %s); it is restarted in "
                        "%.0f s", proc.poll(), self._respawn_after_s)
        _close(proc)

    def _report_drops(self) -> None:
        now = time.monotonic()
        if self.dropped > self._reported and now - self._reported_at >= DROP_LOG_INTERVAL_S:
            log.warning("%d spans dropped so far: the span exporter is not keeping up (or "
                        "not running)", self.dropped)
            self._reported, self._reported_at = self.dropped, now

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Ship what is queued, close the pipe (the exporter exports the rest and exits), and
        wait for it up to `timeout_s`."""
        self._stop.set()
        self._thread.join(timeout_s)
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _close(proc)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("the span exporter did not finish within %.0f s; stopping it", timeout_s)
            proc.kill()
            proc.wait()


def plain_value(value: Any) -> Any:
    """`value` as the SDK keeps an attribute value (bool, int, float, str, bytes, None, and
    sequences and mappings of those; anything else as its str), in types marshal carries."""
    if value is None or type(value) in (bool, int, float, str, bytes):
        return value
    if isinstance(value, bool):   # subclasses (enums, ...) as their base type
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    return str(value)


def plain_record(record: Record) -> Record:
    """A record whose attributes (and events' attributes) marshal can carry."""
    fields = list(record)
    fields[0] = str(fields[0])
    fields[9] = {str(k): plain_value(v) for k, v in fields[9].items()}
    if fields[11] is not None:
        fields[11] = str(fields[11])
    if fields[12]:
        fields[12] = [(str(n), int(t), {str(k): plain_value(v) for k, v in a.items()})
                      for n, t, a in fields[12]]
    return tuple(fields)


def lower_priority(pid: int) -> None:
    """SCHED_IDLE for `pid` (0: this thread): any runnable normal task preempts it at once,
    so it only uses idle CPU. Else the lowest nice value."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, 19)


EXPORTER_CPUS_ENV = "SWITCHYARD_SPAN_EXPORTER_CPUS"


def exporter_cpus(setting: str | None, service_cpus: set[int],
                  cpu_count: int) -> set[int] | None:
    """The CPUs an exporter may use (None: the service's own). SWITCHYARD_SPAN_EXPORTER_CPUS
    is a taskset list ("0,2-3") or `inherit`; unset, every CPU but the service's, when the
    service is pinned to some and others exist."""
    if setting is None or not setting.strip():
        others = set(range(cpu_count)) - service_cpus
        return others or None
    if setting.strip() == "inherit":
        return None
    cpus: set[int] = set()
    for part in setting.split(","):
        low, _, high = part.strip().partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def keep_off_serving_cpus(pid: int) -> None:
    """Move the exporter `pid` off the CPUs its service is pinned to: it is background work,
    and on a serving core even idle-priority work costs every request time at c=1
    (docs/benchmarks.md, "Tracing on"). An unpinned service's exporter stays unpinned."""
    if not hasattr(os, "sched_setaffinity"):
        return
    setting = os.environ.get(EXPORTER_CPUS_ENV)
    try:
        cpus = exporter_cpus(setting, os.sched_getaffinity(0), os.cpu_count() or 1)
    except ValueError:
        log.warning("%s is not a CPU list; the span exporter keeps the service's CPUs",
                    EXPORTER_CPUS_ENV)
        return
    if cpus is None:
        return
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError as exc:   # none of them available here (a container's cpuset)
        if setting:
            log.warning("the span exporter keeps the service's CPUs: %s", exc)


def _write_frame(fd: int, data: bytes) -> None:
    """One frame to a blocking pipe (only the shipper thread writes, so frames never mix)."""
    view = memoryview(FRAME.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _close(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
