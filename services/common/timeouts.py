"""Timeouts for the request path at a fraction of `asyncio.timeout`'s cost.

`asyncio.timeout` schedules and cancels a loop timer on every use (~4.7 µs with uvloop, two
or more per request on each side of the hop). `within(seconds)` only notes its limit in its
loop's registry; the registry keeps one timer, armed for the earliest limit, and when it fires
cancels the tasks whose limits have passed. The contract is asyncio.timeout's: the block's
task is cancelled at the limit and `TimeoutError` leaves the block; a cancellation from
elsewhere stays a cancellation.
"""
from __future__ import annotations

import asyncio
import weakref
from types import TracebackType

INF = float("inf")


class _Registry:
    """The limits open on one event loop, and its one timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.open: set[Limit] = set()
        self.armed_at = INF
        self.timer: asyncio.TimerHandle | None = None

    def arm(self, at: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.armed_at = at
        self.timer = self.loop.call_at(at, self.fire)

    def fire(self) -> None:
        self.timer, self.armed_at = None, INF
        now = self.loop.time()
        earliest = INF
        for limit in list(self.open):
            if limit.at <= now:
                self.open.discard(limit)
                limit.expire()
            elif limit.at < earliest:
                earliest = limit.at
        if earliest < INF:
            self.arm(earliest)


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Registry] = \
    weakref.WeakKeyDictionary()
_last: tuple[asyncio.AbstractEventLoop | None, _Registry | None] = (None, None)


def _registry(loop: asyncio.AbstractEventLoop) -> _Registry:
    global _last
    last_loop, registry = _last
    if last_loop is loop and registry is not None:
        return registry
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = _Registry(loop)
    _last = (loop, registry)
    return registry


class Limit:
    """One open `within` block."""

    __slots__ = ("seconds", "at", "task", "registry", "expired", "cancelling")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = INF
        self.task: asyncio.Task[object] | None = None
        self.registry: _Registry | None = None
        self.expired = False
        self.cancelling = 0   # the task's pending cancellations on entry (asyncio.timeout's rule)

    def __enter__(self) -> Limit:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("timeouts.within() must be used inside a task")
        registry = self.registry = _registry(task.get_loop())
        self.task = task
        self.cancelling = task.cancelling()
        self.at = registry.loop.time() + self.seconds
        registry.open.add(self)
        if self.at < registry.armed_at:
            registry.arm(self.at)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.registry is not None:
            self.registry.open.discard(self)
        if self.expired and exc_type is asyncio.CancelledError:
            assert self.task is not None
            if self.task.uncancel() <= self.cancelling:
                raise TimeoutError from exc

    def expire(self) -> None:
        self.expired = True
        if self.task is not None:
            self.task.cancel()


def within(seconds: float) -> Limit:
    """`with within(s):` — the block's task is cancelled after `s` seconds and TimeoutError
    raised out of the block, like `async with asyncio.timeout(s)`."""
    return Limit(seconds)
