"""What the tests' throwaway servers (postgres.py, redis.py, prometheus.py) share: a context
manager that removes the server when starting it fails, and stopping a process for sure."""
from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from typing import Self


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; waits either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Throwaway(ABC):
    """Started on enter, removed (stopped, its files deleted) on exit."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def remove(self) -> None: ...

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
