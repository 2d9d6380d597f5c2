"""The machine under the benchmark: CPU time of the processes under test, how busy each core
was meanwhile (so other work on the gateway's core shows), and the state to print with the
table (cores, load, memory, versions)."""
from __future__ import annotations

import os
import pathlib
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of `pids` (processes that vanished count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def core_times() -> dict[int, tuple[int, int]]:
    """Per core: (busy ticks, all ticks) since boot, from /proc/stat."""
    out = {}
    for line in pathlib.Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            ticks = [int(v) for v in vals]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)   # idle + iowait
            out[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return out


class Window:
    """CPU over one measurement: the processes `pids()` names (their CPU %, of one core) and
    the gateway core's busy % (what else ran there is busy minus theirs)."""

    def __init__(self, pids: Callable[[], list[int]] | None, core: int | None) -> None:
        self.pids = pids
        self.core = core
        self._pids: list[int] = []
        self._cpu = 0.0
        self._cores: dict[int, tuple[int, int]] = {}
        self._t = 0.0

    def __enter__(self) -> Window:
        self._pids = self.pids() if self.pids else []
        self._cpu = cpu_seconds(self._pids)
        self._cores = core_times()
        self._t = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.monotonic() - self._t, 1e-9)
        self.cpu_pct = 100.0 * (cpu_seconds(self._pids) - self._cpu) / wall
        self.cpu_s = cpu_seconds(self._pids) - self._cpu
        now = core_times()
        self.core_pct: float | None = None
        if self.core is not None and self.core in now and self.core in self._cores:
            busy = now[self.core][0] - self._cores[self.core][0]
            total = now[self.core][1] - self._cores[self.core][1]
            self.core_pct = 100.0 * busy / total if total else None

    def fill(self, row: dict, units: int) -> None:
        """Put the window's numbers in `row` (`units`: requests or streams served)."""
        row["cpu_pct"] = self.cpu_pct
        row["cpu_ms_per_req"] = 1000.0 * self.cpu_s / units if units else None
        if self.core_pct is not None:
            row["core_busy_pct"] = self.core_pct
            row["core_other_pct"] = max(0.0, self.core_pct - self.cpu_pct)


def _first(path: str, prefix: str) -> str:
    try:
        for line in pathlib.Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _version(python: str, module: str) -> str:
    try:
        out = subprocess.run([python, "-c", f"import importlib.metadata as m; "
                              f"print(m.version({module!r}))"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def state(litellm_python: str | None = None) -> dict:
    """What to print with the table: cores, model, load, memory, versions, busy processes."""
    load = os.getloadavg()
    top = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"],
                         capture_output=True, text=True).stdout.splitlines()[:5]
    out = {"cores": os.cpu_count(), "cpu": _first("/proc/cpuinfo", "model name"),
           "kernel": platform.release(), "python": platform.python_version(),
           "mem_total": _first("/proc/meminfo", "MemTotal"),
           "mem_available": _first("/proc/meminfo", "MemAvailable"),
           "loadavg": [round(v, 2) for v in load], "busiest": [t.strip() for t in top],
           "grpcio": _version(sys.executable, "grpcio"),
           "uvicorn": _version(sys.executable, "uvicorn"),
           "aiohttp": _version(sys.executable, "aiohttp")}
    if litellm_python:
        out["litellm"] = _version(litellm_python, "litellm")
    return out
