"""One background task that refreshes N sources, each on its own interval: the cost
catalogs (telemetry/cost.py) and the latency sources (router/routing/prometheus.py)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence


class Refresher:
    """`refresh(i)` now, then every `intervals[i]` seconds, for every i, in the running loop
    from `start()` until `close()`."""

    def __init__(self, intervals: Sequence[float], refresh: Callable[[int], Awaitable[object]],
                 name: str) -> None:
        self.intervals = tuple(intervals)
        self.refresh = refresh
        self.name = name
        self._task: asyncio.Task[None] | None = None

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
