"""One upstream attempt: POST the request, turn a failure status into an error, and read the
reply up to the commit point (its first content, or the whole of a non-streamed reply)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from switchyard.common import timeouts
from switchyard.common.config.model import ProviderEntry
from switchyard.common.http_headers import retry_after_seconds
from switchyard.common.proto import chat_pb2
from switchyard.common.telemetry import tracer
from switchyard.providers import failures
from switchyard.providers.adapters.base import UpstreamCodec
from switchyard.providers.failures import AttemptFailed
from switchyard.providers.http import ClientPool
from switchyard.providers.http_client import ConnectFailed, HttpError, InvalidRequest, Response
from switchyard.providers.retry import is_retryable
from switchyard.providers.stream_reader import EventParser, StreamReader, first_error, has_content

if TYPE_CHECKING:   # the API is imported where a span is made: tracing off never loads it
    from opentelemetry.context import Context

ERROR_BODY_LIMIT = 64 * 1024
ERROR_BODY_WAIT_S = 5.0   # an error body that is slower than this is not worth waiting for


class Deadline:
    """The plan's time budget; every wait before the commit point is bounded by what is left."""

    def __init__(self, budget_s: float, clock: Callable[[], float]) -> None:
        self.budget_s = budget_s
        self.clock = clock
        self.at = clock() + budget_s

    def remaining(self) -> float:
        return self.at - self.clock()

    def expired(self) -> bool:
        return self.clock() >= self.at

    def bound(self, limit_s: float) -> tuple[float, bool]:
        """How long to wait for something limited to `limit_s` (never negative), and whether
        it is the budget rather than the limit that bounds the wait."""
        remaining = self.remaining()
        return max(min(limit_s, remaining), 0.0), remaining <= limit_s

    def spent(self, entry: ProviderEntry) -> chat_pb2.Error:
        return failures.budget_spent(self.budget_s, entry)


@dataclass(frozen=True)
class Call:
    """One encoded request for one target, the same for each of its attempts."""
    entry: ProviderEntry
    codec: UpstreamCodec
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool
    dropped: list[str]                  # top-level client fields the codec could not carry
    secrets: tuple[str | None, ...]     # this call's keys, blanked in its errors (secrets.py)


@dataclass
class Committed:
    """A successful attempt: the first batch to send, and the rest of the stream if any."""
    entry: ProviderEntry
    response: Response
    events: list[chat_pb2.StreamEvent]
    reader: StreamReader | None
    upstream_ms: float


@functools.lru_cache(maxsize=256)
def _http_attributes(url: str) -> dict[str, str | int]:
    """The HTTP span's attributes, made once per upstream URL (the span copies them)."""
    parts = urlsplit(url)
    return {"http.request.method": "POST", "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
            "url.full": f"{parts.scheme}://{parts.netloc}{parts.path}"}


class Attempt:
    """One POST of a Call; `run` returns at the commit point or raises AttemptFailed."""

    def __init__(self, call: Call, pool: ClientPool, deadline: Deadline,
                 sse_parser: Callable[[], EventParser],
                 trace_ctx: Context | None = None) -> None:
        self.call = call
        self.trace_ctx = trace_ctx   # the attempt's span: the HTTP call's parent (tracing on)
        self.entry = call.entry
        self.pool = pool
        self.deadline = deadline
        self.sse_parser = sse_parser
        self.limits = pool.timeouts(call.entry)
        self.sent = 0.0

    async def run(self) -> Committed:
        """POST the call, then read the reply up to the commit point."""
        self.sent = self.deadline.clock()
        response = await (self._post() if self.trace_ctx is None else self._traced_post())
        try:
            if not 200 <= response.status < 300:
                raise await self._status_failure(response)
            if not self.call.stream or response.content_type == "application/json":
                return await self._read_whole(response)
            return await self._read_to_commit(response)
        except BaseException:
            response.close()   # a failed or cancelled attempt does not keep its connection
            raise

    def _upstream_ms(self) -> float:
        return (self.deadline.clock() - self.sent) * 1000.0

    def _timed_out(self, by_budget: bool, what: str) -> AttemptFailed:
        """A wait ran out: the plan's budget (stop trying) or one of the entry's own limits."""
        if by_budget:
            return AttemptFailed(self.deadline.spent(self.entry), True, final=True)
        return AttemptFailed(failures.timeout(self.entry, what), True)

    async def _traced_post(self) -> Response:
        """`_post` inside an HTTP client span, from sending to the response headers. The URL
        is recorded without its query (some upstreams take a key there)."""
        from opentelemetry.trace import SpanKind, Status, StatusCode
        span = tracer.TRACER.start_span("POST", context=self.trace_ctx, kind=SpanKind.CLIENT,
                                        attributes=_http_attributes(self.call.url))
        try:
            response = await self._post()
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", type(exc).__name__)
            span.end()
            raise
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 400:
            span.set_status(Status(StatusCode.ERROR, str(response.status)))
        span.end()
        return response

    async def _post(self) -> Response:
        entry, call = self.entry, self.call
        client = self.pool.client(entry)
        wait, by_budget = self.deadline.bound(self.limits.first_byte_s)
        try:
            with timeouts.within(wait):
                return await client.post(call.url, call.body, call.headers)
        except TimeoutError:
            raise self._timed_out(by_budget, f"sent no response within {wait:.3g} s") from None
        except InvalidRequest as exc:
            # The entry's own configuration (its key or headers): the next target may do.
            raise AttemptFailed(failures.error(
                500, f"provider '{entry.name}' is misconfigured: {exc}", entry,
                type="api_error"), False) from None
        except ConnectFailed as exc:
            # Name only the entry and host:port: the URL may carry a key.
            raise failures.unreachable(entry, f"cannot connect to provider '{entry.name}' at "
                                              f"{exc.host}:{exc.port}: {exc.reason}") from None
        except (HttpError, OSError) as exc:
            raise failures.unreachable(entry, f"connection to provider '{entry.name}' failed: "
                                              f"{type(exc).__name__}") from None

    async def _status_failure(self, response: Response) -> AttemptFailed:
        """An upstream error status, decoded by the codec so its message reaches the client."""
        status = response.status
        wait, _ = self.deadline.bound(ERROR_BODY_WAIT_S)
        try:
            with timeouts.within(wait):
                data = await response.read(ERROR_BODY_LIMIT)
        except (TimeoutError, HttpError):
            data = b""
        if 300 <= status < 400:
            return failures.redirected(self.entry, status)
        retry_after = retry_after_seconds(response.headers)
        err = self.call.codec.decode_error(status, data, response.headers)
        err.http_status = err.http_status or status
        err.provider = err.provider or self.entry.name
        if retry_after is not None and not err.retry_after:
            err.retry_after = retry_after
        return AttemptFailed(err, is_retryable(status, ""), retry_after)

    async def _read_whole(self, response: Response) -> Committed:
        """A non-streamed reply (or a JSON answer to a stream request), read and decoded.
        The plan's budget (listener `timeout`) ended with the response headers, the first
        byte; the body gets the idle bound, so a long answer already under way is not cut."""
        wait = self.limits.idle_s
        try:
            with timeouts.within(wait):
                data = await response.read()
        except TimeoutError:
            raise self._timed_out(False, f"stopped sending its reply ({wait:.3g} s)") from None
        except HttpError as exc:
            raise failures.broken(self.entry, exc) from None
        upstream_ms = self._upstream_ms()   # the whole reply
        try:
            events = list(self.call.codec.decode_response(orjson.loads(data)))
        except Exception as exc:  # noqa: BLE001 - any codec failure here is an upstream fault
            raise failures.undecodable(self.entry, exc, "reply") from None
        response.release()
        at = first_error(events)
        if at >= 0:   # an error object in a 2xx body
            err = events[at].error
            err.provider = err.provider or self.entry.name
            raise failures.from_upstream(err, is_retryable(err.http_status, err.type))
        return Committed(self.entry, response, events, None, upstream_ms)

    async def _read_to_commit(self, response: Response) -> Committed:
        """Stream reads, held back until the first content event (or the end of the stream)."""
        # A codec whose stream is not SSE (Bedrock's binary event stream) names its framing.
        parser = getattr(self.call.codec, "EventParser", None) or self.sse_parser
        reader = StreamReader(response, parser(), self.call.codec.StreamDecoder(),
                              self.call.codec, self.entry)
        buffered: list[chat_pb2.StreamEvent] = []
        while True:
            wait, by_budget = self.deadline.bound(self.limits.idle_s)
            try:
                events = await reader.read(wait)
            except TimeoutError:
                raise self._timed_out(by_budget, f"stayed silent for {wait:.3g} s") from None
            except HttpError as exc:
                raise failures.broken(self.entry, exc) from None
            except Exception as exc:  # noqa: BLE001 - a decoder failure is an upstream fault
                raise failures.undecodable(self.entry, exc) from None
            at = first_error(events)
            if at >= 0:
                err = events[at].error
                raise failures.from_upstream(err, is_retryable(err.http_status, err.type))
            buffered.extend(events)
            if reader.done or has_content(events):
                # Upstream time runs to its first content, not its response headers.
                return Committed(self.entry, response, buffered,
                                 None if reader.done else reader, self._upstream_ms())
