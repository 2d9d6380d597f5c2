"""A reloaded config in a running edge: the guard's gateway keys and limits (swapped
together), the body limits, the listener's filters, the price book, the request log and
the routing settings (its pins kept when they stay where they were kept).

Requests already admitted finish under the config they started with: they hold their key,
limits and filter chain. What a reload replaces (a Redis client, the filters' sessions, a
price book) is closed once the drain period has passed, so no request in flight loses it.
Routes are not here: the router publishes them (clients/router.py).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette

from switchyard.common.config.model import Config, RedisSettings, Security
from switchyard.common.telemetry import request_log
from switchyard.edge import filters, limits, observe, preferences
from switchyard.edge.guard import Guard
from switchyard.edge.limits.base import Limiter
from switchyard.edge.limits.memory import MemoryLimiter

log = logging.getLogger("switchyard.edge")

Close = Callable[[], Awaitable[None]]


def same_store(limiter: Limiter, redis: RedisSettings | None) -> bool:
    """Whether `limiter` counts where `redis` says to (then it is kept, and its counts)."""
    if redis is None:
        return isinstance(limiter, MemoryLimiter)
    return getattr(limiter, "settings", None) == redis


def rebuild_limits(current: limits.Limits | None, security: Security
                   ) -> tuple[limits.Limits | None, limits.Limits | None]:
    """(the limits for `security`, the current ones to retire). The store is kept when it is
    the same, so a reload neither forgets what was counted nor opens a new connection."""
    fresh = limits.build(security)
    if current is None:
        return fresh, None
    if fresh is None:
        return None, current
    if same_store(current.limiter, security.redis):
        return limits.Limits(security, current.limiter), None   # `fresh` opened nothing yet
    return fresh, current


class EdgeReloader:
    """Applies reloaded configs to one edge app (the Guard `create_app` returns)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._retiring: set[asyncio.Task[None]] = set()
        self._closers: list[Close] = []

    @property
    def app(self) -> Starlette:
        """The Starlette app behind the guard and the hot paths (app.py)."""
        app: Starlette = self.guard.app.app
        return app

    async def apply(self, config: Config) -> None:
        app = self.app
        old: Config = app.state.config
        new_limits, old_limits = rebuild_limits(self.guard.limits, config.security)
        self.guard.swap(config.security, new_limits)
        app.state.config = config
        # As create_app decides it (app.py): chat completions are stored when the file
        # asks for state storage.
        app.state.config_has_state = config.has_state_storage
        if old_limits is not None:
            self.retire(old_limits.close, config.security.drain_s)
        if config.filters != old.filters:
            current = app.state.filters
            app.state.filters = filters.from_config(config.filters)
            if current is not None:
                self.retire(current.close, config.security.drain_s)
        if config.routing != old.routing or config.aliases != old.aliases:
            self.reroute(config)
        accounting: observe.Accounting = app.state.accounting
        if config.cost_sources == old.cost_sources:
            accounting.use_entries(config)
        else:
            fresh = observe.Accounting(config)
            await fresh.start()
            app.state.accounting = fresh
            self.retire(accounting.close, config.security.drain_s)
        request_log.setup(config.request_log)

    def reroute(self, config: Config) -> None:
        """The edge's routing for `config` (routes, direct selections, pin settings)."""
        current: preferences.EdgeRouting | None = self.app.state.routing
        fresh = preferences.from_config(config)
        self.app.state.routing = fresh
        if current is None:
            return
        stale = fresh.carried_over(current) if fresh is not None else [current.sessions]
        for store in stale:
            self.retire(store.close, config.security.drain_s)

    def retire(self, close: Close, after_s: float) -> None:
        """Close `close`'s resource once requests that may use it have had their drain."""
        self._closers.append(close)

        async def later() -> None:
            await asyncio.sleep(after_s)   # the drain period, not synchronisation
            if close in self._closers:
                self._closers.remove(close)
                await close()
        task = asyncio.create_task(later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        """At shutdown: close whatever is still waiting to be retired, now."""
        for task in list(self._retiring):
            task.cancel()
        closers, self._closers = self._closers, []
        for close in closers:
            try:
                await close()
            except Exception:  # shutting down: one failed close must not stop the others
                log.exception("closing a replaced resource failed")
