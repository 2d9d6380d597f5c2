"""Concurrent embedding requests are batched onto one worker thread: the event loop never
blocks on the encoder, and requests that arrive while it runs go together in its next
call (one thread hop for all of them; minilm.py runs each text alone inside it)."""
from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence

import numpy as np

Embed = Callable[[list[str]], np.ndarray]
MAX_BATCH = 32


class Batcher:
    """`await embed(texts)`: texts queued while a run is in flight go in the next run."""

    def __init__(self, embed: Embed, max_batch: int = MAX_BATCH) -> None:
        self._embed = embed
        self._max = max_batch
        self._pending: list[tuple[list[str], asyncio.Future[np.ndarray]]] = []
        self._running = False
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="embed")

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text."""
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((list(texts), future))
        if not self._running:
            self._run_next()
        return await future

    def _run_next(self) -> None:
        batch: list[tuple[list[str], asyncio.Future[np.ndarray]]] = []
        count = 0
        while self._pending and (not batch or count + len(self._pending[0][0]) <= self._max):
            item = self._pending.pop(0)
            if item[1].cancelled():
                continue
            batch.append(item)
            count += len(item[0])
        if not batch:
            return
        self._running = True
        texts = [t for item, _ in batch for t in item]
        loop = asyncio.get_running_loop()
        run = loop.run_in_executor(self._pool, self._embed, texts)
        run.add_done_callback(lambda done: self._finished(batch, done))

    def _finished(self, batch: list[tuple[list[str], asyncio.Future[np.ndarray]]],
                  done: asyncio.Future[np.ndarray]) -> None:
        self._running = False
        exc = done.exception()
        start = 0
        for texts, future in batch:
            if not future.done():
                if exc is not None:
                    future.set_exception(exc)
                else:
                    future.set_result(done.result()[start:start + len(texts)])
            start += len(texts)
        if self._pending:
            self._run_next()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
