"""One background task that refreshes N sources, each on its own interval, keeping what
the last good load gave when a load fails, and saying so once per outage: the cost catalogs
(telemetry/cost.py) and the latency sources (router/routing/prometheus.py)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence


class Refresher:
    """`load(i)` now, then every `intervals[i]` seconds, for every i, in the running loop
    from `start()` until `close()`. A load that raises keeps the source's last values:
    `failed(i, exc)` is told at its first failure, `recovered(i)` when it loads again."""

    def __init__(self, intervals: Sequence[float], load: Callable[[int], Awaitable[None]],
                 failed: Callable[[int, Exception], None], recovered: Callable[[int], None],
                 name: str) -> None:
        self.intervals = tuple(intervals)
        self.load, self.failed, self.recovered = load, failed, recovered
        self.name = name
        self._failing: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    async def refresh(self, index: int) -> bool:
        """Load source `index` once; whether it loaded."""
        try:
            await self.load(index)
        except Exception as exc:  # noqa: BLE001 - any failure only keeps the last values
            if index not in self._failing:
                self._failing.add(index)
                self.failed(index, exc)
            return False
        if index in self._failing:
            self._failing.discard(index)
            self.recovered(index)
        return True

    def start(self) -> None:
        if self.intervals and self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = [0.0] * len(self.intervals)
        while True:
            now = loop.time()
            for i, interval in enumerate(self.intervals):
                if due[i] <= now:
                    await self.refresh(i)
                    due[i] = now + interval
            await asyncio.sleep(max(0.0, min(due) - loop.time()))

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
