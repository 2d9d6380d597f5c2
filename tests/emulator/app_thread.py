"""An aiohttp Application served from its own thread and event loop: how the emulator and
the test filter servers run inside a test process."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web


class AppThread:
    """`build()`'s app on `host:port` (0: a free port) until `stop`; `start` returns the
    bound port once it is listening, or raises the bind error in the starting thread."""

    def __init__(self, build: Callable[[], web.Application], *, host: str, port: int,
                 name: str, shutdown_timeout: float) -> None:
        self._build = build
        self.host, self.port = host, port
        self._name = name
        self._shutdown_timeout = shutdown_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> int:
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:   # a bind error: the starting thread raises it
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"{self._name} did not start")
        if failure:
            raise failure[0]
        return self.port

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self._build(), handler_cancellation=True,
                                     access_log=None, shutdown_timeout=self._shutdown_timeout)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        """Stop serving and join the thread (in-flight requests get `shutdown_timeout`)."""
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = self._runner = None
