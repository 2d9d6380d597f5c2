"""A write queue for a gRPC stream: one write at a time (grpc.aio allows no more), and
everything queued during a write goes out together in the next one. Both ends of the
multiplexed edge<->providers hop use it.

With `linger_s`, a busy queue writes at most once per `linger_s`: a message on a grpc.aio
stream costs each side far more CPU (a completion through gRPC's poller thread, wake-ups)
than the tokens it carries, so under load the tokens of many streams, and many whole
requests and answers, share one message. A queue idle for `linger_s` writes at once, and so
does an `urgent` item (a stream's request and first batch: its time to first token):
lingering only ever delays the traffic of a busy hop, by < linger_s."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class CoalescingWriter(Generic[T]):
    """`post` items; `run` writes them in batches through `write` until `finish` is posted."""

    def __init__(self, write: Callable[[list[T]], Awaitable[None]],
                 linger_s: float = 0.0) -> None:
        self._write = write
        self._linger = linger_s
        self._queue: list[T | None] = []
        self._wake: asyncio.Future[None] | None = None
        self._holding = False   # lingering: only an urgent item or `finish` cuts it short
        self._urgent = False
        self._last = float("-inf")   # loop time the previous write ended

    def post(self, item: T, urgent: bool = False) -> None:
        """Queue `item`; `urgent` sends it (and what is queued) without lingering."""
        if urgent:
            self._urgent = True
        self._push(item)

    def finish(self) -> None:
        """Stop after writing everything queued so far."""
        self._urgent = True
        self._push(None)

    def _push(self, item: T | None) -> None:
        self._queue.append(item)
        if self._wake is not None and not self._wake.done() and (
                not self._holding or self._urgent):
            self._wake.set_result(None)

    async def _hold(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until `linger_s` after the previous write (or an urgent item)."""
        wait = self._last + self._linger - loop.time()
        if wait <= 0 or self._urgent:
            return
        wake = self._wake = loop.create_future()
        timer = loop.call_later(wait, _release, wake)
        self._holding = True
        try:
            await wake
        finally:
            self._holding = False
            timer.cancel()

    async def run(self) -> None:
        """Write until `finish`; returns then (write errors propagate to the caller)."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake = loop.create_future()
                await self._wake
            if self._linger > 0:
                await self._hold(loop)
            batch, self._queue = self._queue, []
            self._urgent = False
            stop = batch[-1] is None
            items = [i for i in batch if i is not None]
            if items:
                await self._write(items)
                self._last = loop.time()
            if stop:
                return


def _release(wake: asyncio.Future[None]) -> None:
    if not wake.done():
        wake.set_result(None)
