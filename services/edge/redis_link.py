"""One edge's connection to a Redis it shares with the other edges (the limits' buckets,
the routing pins), and what happens when that Redis fails: no retries, so a slow or missing
Redis costs one timeout; then a second in which no call is tried at all; a warning at most
once a minute, never with the URL's password. Each user decides what a request gets while
Redis is down."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from switchyard.common.config.model import RedisSettings

# After a failed call Redis is left alone this long: requests get the fallback at once
# instead of each waiting out a timeout.
BACKOFF_S = 1.0
LOG_EVERY_S = 60.0
FAILURES = (RedisError, OSError, TimeoutError, ValueError)
T = TypeVar("T")


class RedisLink:
    """A lazily connected client and its up/down state. `what` names the user in the log
    ("rate limits"), written to `log`; `while_down` says what requests get meanwhile;
    `on_state` is told True/False after each call (a gauge)."""

    def __init__(self, settings: RedisSettings, what: str, while_down: str,
                 log: logging.Logger, on_state: Callable[[bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.what, self.while_down, self.log = what, while_down, log
        self.on_state = on_state
        self.clock = clock
        self.down = False
        self.down_until = 0.0
        self.logged_at = -LOG_EVERY_S
        self.failures = 0          # since the last warning
        self._client: Redis | None = None

    @property
    def resting(self) -> bool:
        """Within the backoff after a failure: do not call."""
        return self.clock() < self.down_until

    def client(self) -> Redis:
        if self._client is None:
            timeout = self.settings.timeout_s
            self._client = Redis.from_url(self.settings.url, socket_timeout=timeout,
                                          socket_connect_timeout=timeout,
                                          retry=Retry(NoBackoff(), 0))
        return self._client

    async def run(self, op: Callable[[Redis], Awaitable[T]]) -> T | None:
        """`op(client)`, bounded by twice the timeout (the socket timeouts bound each read
        and connect; this, the whole call); None while resting or when it fails."""
        if self.resting:
            return None
        try:
            async with asyncio.timeout(2 * self.settings.timeout_s):
                result = await op(self.client())
        except FAILURES as exc:
            self.failed(exc)
            return None
        self.answered()
        return result

    def answered(self) -> None:
        if self.down:
            self.down = False
            self.log.warning("%s: Redis at %s answers again", self.what, self.settings.display)
        if self.on_state is not None:
            self.on_state(True)

    def failed(self, exc: BaseException) -> None:
        self.down = True
        self.down_until = now = self.clock()
        self.down_until += BACKOFF_S
        self.failures += 1
        if self.on_state is not None:
            self.on_state(False)
        if now - self.logged_at < LOG_EVERY_S:
            return
        self.log.warning("%s: Redis at %s is unavailable (%s; %d failed calls since the last "
                    "report); %s until it answers", self.what, self.settings.display,
                    self.describe(exc), self.failures, self.while_down)
        self.logged_at, self.failures = now, 0

    def describe(self, exc: BaseException) -> str:
        """The error in words, without the URL's password should the message quote it."""
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        password = urlsplit(self.settings.url).password
        return text.replace(password, "***") if password else text

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
