"""A backend service as a set of endpoints: the replicas its address names — a list, and DNS
names re-resolved every few seconds — with one channel each. Every endpoint is watched: its
gRPC health (a Watch stream, so a draining replica is known at once) and its connection (a
server's GOAWAY, e.g. after its max connection age, shows as the channel leaving READY).
Clients pick an endpoint per call or stream and hear when one changes (`listen`)."""
from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.common.config.model import endpoints_of
from switchyard.edge.clients.channel import GRPC_SCHEMES, open_channel

log = logging.getLogger(__name__)

RESOLVE_INTERVAL_S = 10.0   # a new replica is found within this (and gets traffic at once)
RESOLVE_MIN_GAP_S = 1.0     # re-resolving on a lost endpoint: at most this often
HEALTH_BACKOFF_S = (0.1, 1.0)
RESOLVE_LOG_INTERVAL_S = 60.0

Resolver = Callable[[str, int], Awaitable[list[str]]]
T = TypeVar("T")


class Status(enum.IntEnum):
    """An endpoint's state as its health watch sees it; lower is picked first."""
    UP = 0
    UNKNOWN = 1    # no answer yet
    DRAINING = 2   # NOT_SERVING: finishing its calls, give it no new ones
    DOWN = 3       # unreachable


class Change(enum.Enum):
    """What a listener hears about an endpoint."""
    RECONNECT = "reconnect"   # its connection went away (GOAWAY or broken): new calls reconnect
    STATUS = "status"         # its Status changed
    REMOVED = "removed"       # no longer resolved: finish what runs on it, start nothing new


Listener = Callable[["Endpoint", Change], None]


class Endpoint:
    """One replica: its channel, its watched status, and how many users hold its channel."""

    def __init__(self, target: str, owner: EndpointSet) -> None:
        self.target = target
        self.owner = owner
        self.channel = open_channel(target)
        self.status = Status.UNKNOWN
        self.removed = False
        self.holds = 0
        self._stubs: dict[Any, Any] = {}
        self._health: asyncio.Task[None] | None = None
        self._connection: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Endpoint({self.target!r}, {self.status.name})"

    @property
    def rank(self) -> Status:
        """Its status for choosing: DOWN too while its channel cannot connect, which the
        health watch may not have seen yet."""
        if self.channel.get_state() == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            return Status.DOWN
        return self.status

    def stub(self, cls: Any) -> Any:
        """A stub of `cls` on this endpoint's channel (one per class)."""
        stub = self._stubs.get(cls)
        if stub is None:
            stub = self._stubs[cls] = cls(self.channel)
        return stub

    # ---- holds: the channel closes once a removed endpoint's last user is done ----------
    def hold(self) -> None:
        self.holds += 1

    def release(self) -> None:
        self.holds -= 1
        if self.removed and self.holds <= 0:
            self._close_soon()

    @contextlib.contextmanager
    def held(self) -> Iterator[Endpoint]:
        self.hold()
        try:
            yield self
        finally:
            self.release()

    # ---- watches --------------------------------------------------------------------------
    def start(self) -> None:
        if self._connection is None:
            self._connection = asyncio.create_task(self._watch_connection())
            self._health = asyncio.create_task(self._watch_health())

    def check(self) -> None:
        """Look at its health again now (a call just failed to reach it)."""
        if self._health is not None and not self.removed:
            self._health.cancel()
            self._health = asyncio.create_task(self._watch_health())

    def mark_draining(self) -> None:
        """The server said it drains (the providers' GOAWAY reply): no new work here."""
        if self.status < Status.DRAINING:
            self._set(Status.DRAINING)

    def _set(self, status: Status) -> None:
        if status is self.status:
            return
        self.status = status
        if status is Status.DOWN:
            self.owner.poke()   # a replaced replica has a new address: resolve again
        self.owner.notify(self, Change.STATUS)

    async def _watch_health(self) -> None:
        """grpc.health.v1 Watch, again whenever it ends; two failures in a row mean DOWN (one
        alone may be a connection that was recycled under the watch)."""
        stub = self.stub(health_pb2_grpc.HealthStub)
        serving = health_pb2.HealthCheckResponse.SERVING
        delay, failures = HEALTH_BACKOFF_S[0], 0
        while True:
            try:
                async for reply in stub.Watch(health_pb2.HealthCheckRequest(service="")):
                    failures, delay = 0, HEALTH_BACKOFF_S[0]
                    self._set(Status.UP if reply.status == serving else Status.DRAINING)
                code = grpc.StatusCode.OK   # the server ended the watch: it drains
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                self._set(Status.UP)   # it answers but has no health service: count it up
                return                 # _watch_connection restarts this when it goes away
            if code != grpc.StatusCode.OK:
                failures += 1
                if failures == 1:
                    continue   # at once: maybe only the connection under it was recycled
                self._set(Status.DOWN)
            await asyncio.sleep(delay)   # backoff before watching again
            delay = min(delay * 2, HEALTH_BACKOFF_S[1])

    async def _watch_connection(self) -> None:
        """A channel leaving READY lost its connection (a GOAWAY, a break): say so, and let
        the health watch follow to the next connection."""
        state = self.channel.get_state()
        while True:
            await self.channel.wait_for_state_change(state)
            new = self.channel.get_state()
            if state == grpc.ChannelConnectivity.READY and new != state:
                self.check()
                self.owner.notify(self, Change.RECONNECT)
            state = new

    # ---- the end ----------------------------------------------------------------------------
    def remove(self) -> None:
        """No longer resolved: users finish on it; the channel closes when they are done."""
        self.removed = True
        self._stop_watches()
        self.owner.notify(self, Change.REMOVED)
        if self.holds <= 0:
            self._close_soon()

    def _stop_watches(self) -> None:
        for task in (self._health, self._connection):
            if task is not None:
                task.cancel()

    def _close_soon(self) -> None:
        if self._closing is None:
            self._closing = asyncio.create_task(self.channel.close())
            self._closing.add_done_callback(lambda _: self.owner.retired.discard(self))

    async def close(self) -> None:
        self._stop_watches()
        tasks = [t for t in (self._health, self._connection) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._closing is None:
            self._closing = asyncio.create_task(self.channel.close())
        await self._closing


class EndpointSet:
    """Every endpoint `address` names, kept current; `pick` chooses one for a call."""

    def __init__(self, address: str, *, resolve_interval: float = RESOLVE_INTERVAL_S,
                 resolver: Resolver | None = None) -> None:
        self.address = address
        self.resolve_interval = resolve_interval
        self._resolver = resolver or resolve_name
        self._static: list[str] = []
        self._names: list[tuple[str, int]] = []
        for part in endpoints_of(address):
            name = dns_name(part)
            if name is None:
                self._static.append(part)
            elif (literal := ip_literal(*name)) is not None:
                self._static.append(literal)
            else:
                self._names.append(name)
        self.endpoints: dict[str, Endpoint] = {}
        self._order: list[Endpoint] = []
        self._turn = 0
        self._listeners: list[Listener] = []
        self._resolved: dict[tuple[str, int], list[str]] = {}
        self._resolver_task: asyncio.Task[None] | None = None
        self._poke: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None
        self._first_resolution: asyncio.Event | None = None
        self._last_log = -RESOLVE_LOG_INTERVAL_S
        self.retired: set[Endpoint] = set()   # removed, channel not closed yet
        self.started = False

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Open the fixed endpoints and start watching (idempotent; needs a running loop)."""
        if self.started:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return      # no loop yet: the first pick (inside one) starts it
        self.started = True
        self._poke, self._changed = asyncio.Event(), asyncio.Event()
        self._first_resolution = asyncio.Event()
        self._apply(self._static)
        if self._names:
            self._resolver_task = asyncio.create_task(self._resolve_loop())
        else:
            self._first_resolution.set()

    async def close(self) -> None:
        if self._resolver_task is not None:
            self._resolver_task.cancel()
            await asyncio.gather(self._resolver_task, return_exceptions=True)
        endpoints = [*self.endpoints.values(), *self.retired]
        self.endpoints, self._order = {}, []
        await asyncio.gather(*(ep.close() for ep in endpoints), return_exceptions=True)

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def notify(self, endpoint: Endpoint, change: Change) -> None:
        if self._changed is not None:
            self._changed.set()
        for listener in self._listeners:
            listener(endpoint, change)

    def poke(self) -> None:
        """Resolve again soon (rate-limited)."""
        if self._poke is not None:
            self._poke.set()

    # ---- choosing ---------------------------------------------------------------------------
    def pick(self, load: Callable[[Endpoint], int] | None = None,
             exclude: Iterable[Endpoint] = ()) -> Endpoint | None:
        """The best endpoint: healthiest status first, then the least `load`, ties taken in
        turn (round robin). None when there is none (nothing resolved yet, or all excluded)."""
        self.start()
        order = self._order
        n = len(order)
        if n == 1 and not exclude:
            return order[0]
        self._turn = (self._turn + 1) % max(n, 1)
        best: Endpoint | None = None
        best_key = (Status.DOWN + 1, 0)
        for i in range(n):
            ep = order[(self._turn + i) % n]
            if exclude and ep in exclude:
                continue
            key = (int(ep.rank), load(ep) if load is not None else 0)
            if key < best_key:
                best, best_key = ep, key
        return best

    async def choose(self, load: Callable[[Endpoint], int] | None = None,
                     exclude: Iterable[Endpoint] = (), timeout: float = 2.0
                     ) -> Endpoint | None:
        """`pick`, waiting (at most `timeout`) for the first resolution of the names."""
        endpoint = self.pick(load, exclude)
        if endpoint is None and self._first_resolution is not None and \
                not self._first_resolution.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_resolution.wait(), timeout)
            endpoint = self.pick(load, exclude)
        return endpoint

    def alone(self, endpoint: Endpoint) -> bool:
        """No other endpoint could take a call instead of `endpoint`."""
        return all(ep is endpoint or ep.rank is Status.DOWN for ep in self._order)

    @property
    def up(self) -> bool:
        """Some endpoint answers its health check SERVING."""
        return any(ep.status is Status.UP for ep in self._order)

    def statuses(self) -> dict[str, str]:
        """Each endpoint's status by target, for humans (/readyz)."""
        return {ep.target: ep.status.name.lower() for ep in self._order}

    async def settled(self, timeout: float) -> None:
        """Wait (at most `timeout`) until something is known of every endpoint: the first
        answers right after start-up, so a probe does not report a backend down too early."""
        self.start()
        assert self._changed is not None
        deadline = time.monotonic() + timeout
        assert self._first_resolution is not None
        while not self._first_resolution.is_set() or \
                any(ep.status is Status.UNKNOWN for ep in self._order):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    # ---- resolution -------------------------------------------------------------------------
    def _apply(self, targets: list[str]) -> None:
        """Open endpoints for new targets; remove the ones no longer named."""
        wanted = dict.fromkeys(targets)
        for target in list(self.endpoints):
            if target not in wanted:
                gone = self.endpoints.pop(target)
                self.retired.add(gone)
                gone.remove()
        for target in wanted:
            if target not in self.endpoints:
                ep = self.endpoints[target] = Endpoint(target, self)
                ep.start()
        self._order = list(self.endpoints.values())
        if self._changed is not None:
            self._changed.set()

    async def _resolve_loop(self) -> None:
        assert self._poke is not None
        while True:
            await self._refresh()
            # A rate limit between resolutions, not synchronisation.
            await asyncio.sleep(RESOLVE_MIN_GAP_S)
            self._poke.clear()
            wait = self.resolve_interval if self._order else RESOLVE_MIN_GAP_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), wait)

    async def _refresh(self) -> None:
        for host, port in self._names:
            try:
                found = await self._resolver(host, port)
            except (OSError, UnicodeError) as exc:
                found = []
                self._log_failure(host, port, exc)
            if found:
                self._resolved[(host, port)] = found
            # No answer keeps the last one: a DNS hiccup must not empty the set.
        targets = list(self._static)
        for name in self._names:
            targets.extend(self._resolved.get(name, ()))
        self._apply(targets)
        assert self._first_resolution is not None
        self._first_resolution.set()

    def _log_failure(self, host: str, port: int, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_log >= RESOLVE_LOG_INTERVAL_S:
            self._last_log = now
            log.warning("cannot resolve %s:%d (%s); keeping %d known endpoints", host, port,
                        exc, len(self._order))


UNAVAILABLE_ATTEMPTS = 3   # an idempotent call's tries when each meets UNAVAILABLE


async def unary(endpoints: EndpointSet,
                invoke: Callable[[Endpoint, float, bool], Awaitable[T]],
                timeout: float, retry: bool = True) -> T | None:
    """`invoke(endpoint, seconds_left, alone)` on a live endpoint, holding it; None when
    there is none. `alone`: no other endpoint could take the call, so it may wait for this
    one to (re)connect; else it should fail fast. UNAVAILABLE is tried again, on another
    endpoint when there is one, within the same deadline, up to UNAVAILABLE_ATTEMPTS in all:
    a call that raced its connection's GOAWAY (max connection age) fails so without having
    run, gRPC's own transparent retry is off (see channel.py), and one call can meet a
    replica that just went away and then another's GOAWAY. `retry=False` for calls whose
    repeat would repeat their effect: UNAVAILABLE may also be a connection lost after the
    call ran."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    endpoint = endpoints.pick() or await endpoints.choose(timeout=timeout)
    for attempt in range(1, UNAVAILABLE_ATTEMPTS + 1):
        if endpoint is None:
            return None
        with endpoint.held():
            try:
                return await invoke(endpoint, max(deadline - loop.time(), 0.001),
                                    endpoints.alone(endpoint))
            except grpc.aio.AioRpcError as exc:
                if attempt == UNAVAILABLE_ATTEMPTS or not retry or \
                        exc.code() != grpc.StatusCode.UNAVAILABLE or deadline - loop.time() <= 0:
                    raise
        endpoint = endpoints.pick(exclude=(endpoint,)) or endpoint
    return None  # not reached


def dns_name(part: str) -> tuple[str, int] | None:
    """(host, port) when `part` is a name to resolve — `dns:[//auth]/host:port` or a plain
    `host:port` — else None (unix sockets and other gRPC targets are used as given)."""
    if part.startswith("dns:"):
        rest = part[len("dns:"):]
        part = rest.split("/", 3)[3] if rest.startswith("//") and rest.count("/") >= 3 \
            else rest.lstrip("/")
    elif part.startswith(GRPC_SCHEMES) or "://" in part:
        return None
    host, sep, port = part.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def ip_target(ip: str, port: int) -> str:
    """An address as a gRPC target that skips gRPC's own resolver."""
    return f"ipv6:[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"ipv4:{ip}:{port}"


def ip_literal(host: str, port: int) -> str | None:
    """The target of `host:port` when host is an IP address (nothing to resolve), else None."""
    try:
        return ip_target(host, port)
    except ValueError:
        return None


async def resolve_name(host: str, port: int) -> list[str]:
    """Every address of `host` (the system resolver, off the event loop), as targets."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    ips = dict.fromkeys(str(info[4][0]) for info in infos)
    return [ip_target(ip, port) for ip in ips]
