"""CoalescingWriter: one write at a time, what queued meanwhile goes together; with
`linger_s`, a busy writer waits until `linger_s` after its previous write (so many items
share a write), an idle one and urgent items do not wait, `finish` flushes at once."""
from __future__ import annotations

import asyncio
import time

from switchyard.common.coalesce import CoalescingWriter

LINGER = 0.2   # long against the loop's own latency, so the assertions have room


class Sink:
    """Records each write's items and when it happened."""

    def __init__(self) -> None:
        self.writes: list[tuple[float, list[int]]] = []
        self.wrote = asyncio.Event()

    async def write(self, items: list[int]) -> None:
        self.writes.append((time.monotonic(), list(items)))
        self.wrote.set()

    async def next_write(self) -> tuple[float, list[int]]:
        self.wrote.clear()
        await asyncio.wait_for(self.wrote.wait(), 5)
        return self.writes[-1]


async def test_without_linger_what_queues_during_a_write_goes_together():
    sink = Sink()
    w = CoalescingWriter(sink.write)
    task = asyncio.create_task(w.run())
    w.post(1)
    w.post(2)           # both queued before the writer ran
    assert (await sink.next_write())[1] == [1, 2]
    w.post(3)
    w.finish()
    await asyncio.wait_for(task, 5)
    assert [items for _, items in sink.writes] == [[1, 2], [3]]


async def test_an_idle_writer_writes_at_once_a_busy_one_lingers():
    sink = Sink()
    w = CoalescingWriter(sink.write, linger_s=LINGER)
    task = asyncio.create_task(w.run())
    t0 = time.monotonic()
    w.post(1)
    first_at, items = await sink.next_write()
    assert items == [1] and first_at - t0 < LINGER / 2   # idle: no wait
    w.post(2)
    w.post(3)
    second_at, items = await sink.next_write()
    assert items == [2, 3]                               # busy: held, then together
    assert second_at - first_at >= LINGER * 0.9
    w.finish()
    await asyncio.wait_for(task, 5)


async def test_urgent_items_and_finish_cut_the_linger_short():
    sink = Sink()
    w = CoalescingWriter(sink.write, linger_s=LINGER)
    task = asyncio.create_task(w.run())
    w.post(1)
    first_at, _ = await sink.next_write()
    w.post(2)                  # would linger...
    w.post(3, urgent=True)     # ...but an urgent item takes it along now
    at, items = await sink.next_write()
    assert items == [2, 3] and at - first_at < LINGER / 2
    w.post(4)
    w.finish()                 # flushes what is queued without waiting, then stops
    await asyncio.wait_for(task, LINGER / 2)
    assert sink.writes[-1][1] == [4]
