"""A write queue for a gRPC stream: one write at a time (grpc.aio allows no more), and
everything queued during a write goes out together in the next one. Both ends of the
multiplexed edge<->providers hop use it."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class CoalescingWriter(Generic[T]):
    """`post` items; `run` writes them in batches through `write` until `finish` is posted."""

    def __init__(self, write: Callable[[list[T]], Awaitable[None]]) -> None:
        self._write = write
        self._queue: list[T | None] = []
        self._wake: asyncio.Future[None] | None = None

    def post(self, item: T) -> None:
        self._push(item)

    def finish(self) -> None:
        """Stop after writing everything queued so far."""
        self._push(None)

    def _push(self, item: T | None) -> None:
        self._queue.append(item)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self) -> None:
        """Write until `finish`; returns then (write errors propagate to the caller)."""
        while True:
            if not self._queue:
                self._wake = asyncio.get_running_loop().create_future()
                await self._wake
            batch, self._queue = self._queue, []
            stop = batch[-1] is None
            items = [i for i in batch if i is not None]
            if items:
                await self._write(items)
            if stop:
                return
