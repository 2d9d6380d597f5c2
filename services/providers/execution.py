"""Executing a route plan: try its targets in order, retry transient failures, and stream the
upstream's decoded events back as EventBatches (one per network read)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from switchyard.common import metrics
from switchyard.common.config.model import ProviderEntry
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2
from switchyard.providers import adapters
from switchyard.providers.breaker import BreakerBoard
from switchyard.providers.http import SessionPool
from switchyard.providers.ordering import order_targets
from switchyard.providers.retry import RetryPolicy, is_retryable, retry_after_seconds

log = logging.getLogger(__name__)

# Events that show the upstream is producing output: once one reached the client, no retry.
CONTENT_KINDS = frozenset({"block_start", "delta", "block_stop", "finish"})
ERROR_BODY_LIMIT = 64 * 1024

Adapter = Any  # a module (or object) with the upstream codec interface, see adapters/
AdapterLookup = Callable[[ProviderEntry], Adapter]
EntryLookup = Callable[[str], "ProviderEntry | None"]


def load_adapter(entry: ProviderEntry) -> Adapter:
    """The upstream codec module for the entry's interface."""
    try:
        return adapters.for_interface(entry.interface)
    except ValueError:
        raise GatewayError(500, f"provider '{entry.name}': no codec for interface "
                                f"'{entry.interface}'", provider=entry.name) from None


def default_sse_parser() -> Any:
    from switchyard.providers.adapters.sse import SSEParser
    return SSEParser()


def error_batch(err: chat_pb2.Error) -> chat_pb2.EventBatch:
    return chat_pb2.EventBatch(events=[chat_pb2.StreamEvent(error=err)])


def target_key(target: router_pb2.Target) -> tuple[str, str]:
    """Breakers are per target: (provider entry, upstream model)."""
    return (target.provider, target.model)


class _AttemptFailed(Exception):
    """One upstream attempt failed before anything reached the client."""

    def __init__(self, error: chat_pb2.Error, retryable: bool, retry_after: float | None = None,
                 final: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after
        self.final = final   # the time budget is spent: stop trying


@dataclass
class _Committed:
    """A successful attempt: the first batch to send, and the rest of the stream if any."""
    response: aiohttp.ClientResponse
    events: list[chat_pb2.StreamEvent]
    reader: _StreamReader | None
    upstream_ms: float


def _error(status: int, message: str, entry: ProviderEntry | None, type: str = "") -> chat_pb2.Error:
    return GatewayError(status, message, type=type,
                        provider=entry.name if entry else "").to_proto()


def _scrub(err: chat_pb2.Error, secrets: tuple[str | None, ...]) -> chat_pb2.Error:
    """Blank any key that an upstream echoed into its error message."""
    for secret in secrets:
        if secret and len(secret) >= 8 and secret in err.message:
            err.message = err.message.replace(secret, "***")
    return err


def _first_error(events: list[chat_pb2.StreamEvent]) -> int:
    for i, ev in enumerate(events):
        if ev.HasField("error"):
            return i
    return -1


def _has_content(events: list[chat_pb2.StreamEvent]) -> bool:
    return any(ev.WhichOneof("event") in CONTENT_KINDS for ev in events)


class _StreamReader:
    """Turns one SSE response body into lists of canonical events, one list per network read."""

    def __init__(self, response: aiohttp.ClientResponse, parser: Any, decoder: Any,
                 adapter: Adapter, entry: ProviderEntry) -> None:
        self.response = response
        self.parser = parser
        self.decoder = decoder
        self.adapter = adapter
        self.entry = entry
        self.done = False
        self.saw_finish = False

    async def read(self, timeout_s: float) -> list[chat_pb2.StreamEvent]:
        """Events from the next network read (TimeoutError when the upstream stays silent)."""
        async with asyncio.timeout(timeout_s):
            chunk = await self.response.content.readany()
        events: list[chat_pb2.StreamEvent] = []
        if not chunk:
            self.done = True
            close = getattr(self.parser, "close", None)   # an unterminated last event
            for event, data in (close() if close else ()):
                events.extend(self._decode(event, data))
            return events + self._checked(self.decoder.finish())
        for event, data in self.parser.feed(chunk):
            events.extend(self._decode(event, data))
        return events

    def _decode(self, event: str | None, data: bytes | str) -> list[chat_pb2.StreamEvent]:
        if isinstance(data, str):
            data = data.encode()
        payload = _stream_error_payload(event, data)
        if payload is not None:
            err = self.adapter.decode_stream_error(payload)
            if not err.provider:
                err.provider = self.entry.name
            if not err.http_status:
                err.http_status = 500
            return [chat_pb2.StreamEvent(error=err)]
        return self._checked(self.decoder.feed(data))

    def _checked(self, events: list[chat_pb2.StreamEvent]) -> list[chat_pb2.StreamEvent]:
        for ev in events:
            kind = ev.WhichOneof("event")
            if kind == "finish":
                self.saw_finish = True
            elif kind == "error" and not ev.error.provider:
                ev.error.provider = self.entry.name
        return events


def _stream_error_payload(event: str | None, data: bytes) -> dict | None:
    """The error object of an SSE error event (Anthropic `event: error`, OpenAI `{"error": ..}`)."""
    if event != "error" and b'"error"' not in data:   # cheap filter: a JSON key or value "error"
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    if event == "error" or obj.get("type") == "error" or ("error" in obj and "choices" not in obj):
        return obj
    return None


class Executor:
    """Runs GenerateRequests against upstreams; one per process, shared by every call."""

    def __init__(self, lookup: EntryLookup, pool: SessionPool, *, default_timeout_s: float = 30.0,
                 breakers: BreakerBoard | None = None, retry: RetryPolicy | None = None,
                 adapters: AdapterLookup = load_adapter,
                 sse_parser: Callable[[], Any] = default_sse_parser,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lookup = lookup
        self.pool = pool
        self.default_timeout_s = default_timeout_s
        self.breakers = breakers or BreakerBoard()
        self.retry = retry or RetryPolicy()
        self.adapters = adapters
        self.sse_parser = sse_parser
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.clock = clock

    async def generate(self, gen: providers_pb2.GenerateRequest) -> AsyncIterator[chat_pb2.EventBatch]:
        """Stream the plan's answer: `start` then content, or a single `error` batch."""
        plan = gen.plan
        budget_s = plan.timeout_s if plan.timeout_s > 0 else self.default_timeout_s
        deadline = self.clock() + budget_s
        if not plan.targets:
            yield error_batch(_error(500, f"route plan for '{plan.name}' has no targets", None))
            return
        order = order_targets(plan, lambda t: self.breakers.admits(target_key(t)), self.rng)
        attempts = 0
        last: chat_pb2.Error | None = None
        for target in order:
            entry = self.lookup(target.provider)
            if entry is None:
                last = _error(500, f"provider entry '{target.provider}' is not configured", None)
                last.provider = target.provider
                continue
            secrets = (entry.access_key, gen.client_api_key)
            try:
                adapter = self.adapters(entry)
                body, dropped = adapter.encode_request(gen.request, entry, target.model)
                url = adapter.endpoint_url(entry, target.model)
                headers = adapter.build_headers(entry, gen.client_api_key, dict(gen.forward_headers))
            except GatewayError as exc:
                err = exc.to_proto()
                err.provider = err.provider or entry.name
                yield error_batch(_scrub(err, secrets))
                return
            except Exception as exc:   # a codec bug must still answer in the event grammar
                log.exception("request %s: provider %s: encoding the request failed",
                              gen.request_id, entry.name)
                yield error_batch(_error(500, f"provider '{entry.name}': the gateway could not "
                                              f"encode the request ({type(exc).__name__})", entry))
                return
            if not isinstance(body, (bytes, bytearray)):
                body = orjson.dumps(body)
            breaker = self.breakers.get(target_key(target))
            committed: _Committed | None = None
            for retry in range(max(plan.max_retries, 0) + 1):
                if self.clock() >= deadline:
                    yield error_batch(last or self._budget_error(budget_s, entry))
                    return
                attempts += 1
                breaker.begin()
                try:
                    committed = await self._attempt(entry, adapter, url, headers, body,
                                                    gen.request.stream, deadline, budget_s)
                except _AttemptFailed as failed:
                    last = _scrub(failed.error, secrets)
                    if failed.retryable or last.http_status >= 500:
                        breaker.record_failure()
                    else:
                        breaker.record_success()   # the upstream is alive; the request is wrong
                    log.warning("request %s: provider %s attempt %d failed: %d %s",
                                gen.request_id, entry.name, attempts, last.http_status,
                                last.type)
                    metrics.UPSTREAM_ATTEMPTS.labels(entry.name, str(last.http_status)).inc()
                    if failed.final or (not failed.retryable and 400 <= last.http_status < 500):
                        yield error_batch(last)
                        return
                    if not failed.retryable or retry >= plan.max_retries:
                        break
                    delay = (failed.retry_after if failed.retry_after is not None
                             else self.retry.backoff(retry, self.rng))
                    if delay >= deadline - self.clock():
                        break   # waiting would outlast the budget: try the next target now
                    await self.sleep(delay)
                    continue
                except BaseException:
                    breaker.release()
                    raise
                breaker.record_success()
                metrics.UPSTREAM_ATTEMPTS.labels(entry.name, "ok").inc()
                metrics.UPSTREAM_FIRST_BYTE.labels(entry.name).observe(
                    committed.upstream_ms / 1000.0)
                break
            if committed is not None:
                async with contextlib.aclosing(self._stream(committed, entry, target, attempts,
                                                            dropped, breaker)) as batches:
                    async for batch in batches:
                        yield batch
                return
        if last is None:
            last = _error(502, f"no upstream could serve '{plan.name}'", None)
        elif len(order) > 1:
            last.message = f"{last.message} (all {len(order)} targets for '{plan.name}' failed)"
        yield error_batch(last)

    def _budget_error(self, budget_s: float, entry: ProviderEntry) -> chat_pb2.Error:
        return _error(504, f"no upstream answered within the {budget_s:g} s timeout "
                           f"(last tried: provider '{entry.name}')", entry, type="timeout")

    async def _attempt(self, entry: ProviderEntry, adapter: Adapter, url: str,
                       headers: dict, body: bytes, stream: bool, deadline: float,
                       budget_s: float) -> _Committed:
        """One POST: returns once the first content is decoded (or the reply is complete)."""
        session = self.pool.session(entry)
        limits = self.pool.timeouts(entry)
        response: aiohttp.ClientResponse | None = None

        def bounded(limit_s: float) -> tuple[float, bool]:
            remaining = deadline - self.clock()
            return (min(limit_s, remaining), remaining <= limit_s)

        def timed_out(budget: bool, what: str) -> _AttemptFailed:
            if budget:
                return _AttemptFailed(self._budget_error(budget_s, entry), True, final=True)
            return _AttemptFailed(_error(504, f"provider '{entry.name}' {what}", entry,
                                         type="timeout"), True)

        sent = self.clock()
        try:
            wait, is_budget = bounded(limits.first_byte_s)
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    response = await session.post(url, data=body, headers=headers,
                                                  allow_redirects=False)
            except TimeoutError:
                raise timed_out(is_budget, f"sent no response within {wait:.3g} s") from None
            except aiohttp.ClientConnectorError as exc:
                reason = exc.os_error.strerror or type(exc.os_error).__name__
                raise _AttemptFailed(_error(
                    502, f"cannot connect to provider '{entry.name}' at {exc.host}:{exc.port}: "
                         f"{reason}", entry, type="upstream_unreachable"), True) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise _AttemptFailed(_error(
                    502, f"connection to provider '{entry.name}' failed: {type(exc).__name__}",
                    entry, type="upstream_unreachable"), True) from None
            upstream_ms = (self.clock() - sent) * 1000.0

            if not 200 <= response.status < 300:
                raise await self._status_failure(response, entry, adapter, bounded, timed_out)
            is_json = response.content_type == "application/json"
            if not stream or is_json:
                wait, is_budget = bounded(limits.idle_s)
                try:
                    async with asyncio.timeout(max(wait, 0.0)):
                        data = await response.read()
                    upstream_ms = (self.clock() - sent) * 1000.0  # the whole reply
                except TimeoutError:
                    raise timed_out(is_budget, "stopped sending its reply") from None
                except aiohttp.ClientError as exc:
                    raise _broken(entry, exc) from None
                try:
                    events = list(adapter.decode_response(orjson.loads(data)))
                except Exception as exc:   # a reply the codec cannot read is an upstream fault
                    raise _AttemptFailed(_error(502, f"provider '{entry.name}' sent a reply the "
                                                     f"gateway could not decode: {type(exc).__name__}",
                                                entry, type="api_error"), True) from None
                response.release()
                at = _first_error(events)
                if at >= 0:   # an error object in a 2xx body
                    err = events[at].error
                    err.provider = err.provider or entry.name
                    raise _AttemptFailed(err, is_retryable(err.http_status, err.type),
                                         err.retry_after or None)
                return _Committed(response, events, None, upstream_ms)

            reader = _StreamReader(response, self.sse_parser(), adapter.StreamDecoder(),
                                   adapter, entry)
            buffered: list[chat_pb2.StreamEvent] = []
            while True:
                wait, is_budget = bounded(limits.idle_s)
                try:
                    events = await reader.read(max(wait, 0.0))
                except TimeoutError:
                    raise timed_out(is_budget, f"stayed silent for {wait:.3g} s") from None
                except aiohttp.ClientError as exc:
                    raise _broken(entry, exc) from None
                except Exception as exc:
                    raise _undecodable(entry, exc) from None
                at = _first_error(events)
                if at >= 0:
                    err = events[at].error
                    raise _AttemptFailed(err, is_retryable(err.http_status, err.type),
                                         err.retry_after or None)
                buffered.extend(events)
                if reader.done or _has_content(events):
                    # Upstream time runs to its first content, not its response headers.
                    upstream_ms = (self.clock() - sent) * 1000.0
                    return _Committed(response, buffered, None if reader.done else reader,
                                      upstream_ms)
        except BaseException:
            if response is not None:
                response.close()
            raise

    async def _status_failure(self, response: aiohttp.ClientResponse, entry: ProviderEntry,
                              adapter: Adapter, bounded: Callable, timed_out: Callable) -> _AttemptFailed:
        """An upstream error status, decoded by the codec so its message reaches the client."""
        status = response.status
        wait, _ = bounded(5.0)
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                data = await response.content.read(ERROR_BODY_LIMIT)
        except (TimeoutError, aiohttp.ClientError):
            data = b""
        retry_after = retry_after_seconds(response.headers)
        if 300 <= status < 400:
            return _AttemptFailed(_error(502, f"provider '{entry.name}' answered with a redirect "
                                              f"({status}); check its base_url", entry,
                                         type="api_error"), False)
        err = adapter.decode_error(status, data, response.headers)
        if not err.http_status:
            err.http_status = status
        if not err.provider:
            err.provider = entry.name
        if retry_after is not None and not err.retry_after:
            err.retry_after = retry_after
        return _AttemptFailed(err, is_retryable(status, ""), retry_after)

    async def _stream(self, committed: _Committed, entry: ProviderEntry, target: router_pb2.Target,
                      attempts: int, dropped: list[str], breaker: Any) -> AsyncIterator[chat_pb2.EventBatch]:
        """Send the committed first batch, then the rest of the stream; no retry from here on."""
        events = committed.events
        _stamp_start(events, entry, target, attempts, dropped, committed.upstream_ms)
        reader = committed.reader
        clean = reader is None
        try:
            yield chat_pb2.EventBatch(events=events)
            if reader is None:
                return
            idle_s = self.pool.timeouts(entry).idle_s
            while not reader.done:
                try:
                    events = await reader.read(idle_s)
                except TimeoutError:
                    events = [chat_pb2.StreamEvent(error=_error(
                        504, f"provider '{entry.name}' went silent for {idle_s:g} s mid-stream",
                        entry, type="timeout"))]
                except aiohttp.ClientError as exc:
                    events = [chat_pb2.StreamEvent(error=_broken(entry, exc).error)]
                except Exception as exc:
                    events = [chat_pb2.StreamEvent(error=_undecodable(entry, exc).error)]
                at = _first_error(events)
                if at >= 0:
                    breaker.record_failure()
                    yield chat_pb2.EventBatch(events=events[:at + 1])
                    return
                if events:
                    yield chat_pb2.EventBatch(events=events)
            if not reader.saw_finish:
                yield error_batch(_error(502, f"the stream from provider '{entry.name}' ended "
                                              f"before the turn finished", entry, type="api_error"))
                return
            clean = True
        finally:
            if clean:
                committed.response.release()
            else:
                committed.response.close()   # drop the upstream connection at once


def _broken(entry: ProviderEntry, exc: BaseException) -> _AttemptFailed:
    return _AttemptFailed(_error(502, f"connection to provider '{entry.name}' broke: "
                                      f"{type(exc).__name__}", entry,
                                 type="upstream_unreachable"), True)


def _undecodable(entry: ProviderEntry, exc: BaseException) -> _AttemptFailed:
    return _AttemptFailed(_error(502, f"provider '{entry.name}' sent a stream the gateway could "
                                      f"not decode: {type(exc).__name__}", entry,
                                 type="api_error"), True)


def _stamp_start(events: list[chat_pb2.StreamEvent], entry: ProviderEntry,
                 target: router_pb2.Target, attempts: int, dropped: list[str],
                 upstream_ms: float) -> None:
    """Make `start` the first event and fill in what only the executor knows."""
    at = next((i for i, ev in enumerate(events) if ev.HasField("start")), -1)
    if at < 0:
        ev = chat_pb2.StreamEvent(start=chat_pb2.StreamStart(model=target.model))
    else:
        ev = events.pop(at)
    events.insert(0, ev)
    start = ev.start
    start.provider = entry.name
    start.attempts = attempts
    start.dropped_params.extend(d for d in dropped if d not in start.dropped_params)
    start.upstream_ms = upstream_ms
