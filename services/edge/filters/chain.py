"""The listener's filter chains: every input filter, in order, is shown the client's request
body (each the one the filter before returned) before it is decoded; every output filter the
reply as the client would get it — the whole JSON, or each chunk of a stream as it goes out.

A filter's verdict: 2xx — go on with its body (empty: unchanged); 4xx — refused, the client
gets that status and the filter's message in its own format (input: the upstream is never
called); anything else, no answer within `timeout`, or a body that is no verdict — failed:
502 in the client's format, or, with `fail_open: true`, go on as if the filter were not there.
After a stream has begun, a refusal or failure is the client's error event, then the end.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request

from switchyard.common.config.model import Filter, FilterChains
from switchyard.common.errors import GatewayError
from switchyard.common.telemetry import propagation, tracer
from switchyard.edge import observe
from switchyard.edge.filters.base import (
    CHUNK,
    REPLY,
    REQUEST,
    Answer,
    FilterFailure,
    Sessions,
    Transport,
)
from switchyard.edge.filters.headers import filter_headers
from switchyard.edge.filters.http import HttpTransport
from switchyard.edge.filters.mcp import McpTransport
from switchyard.edge.filters.refusal import refusal
from switchyard.edge.formats.base import StreamEncoder

log = logging.getLogger("switchyard.edge")

INPUT, OUTPUT = "input", "output"
JSON = "application/json"


class Filters:
    """The chains of one edge process and the means to call them (one aiohttp session)."""

    def __init__(self, chains: FilterChains) -> None:
        self.input = chains.input
        self.output = chains.output
        self._sessions = Sessions()
        self._transports: dict[str, Transport] = {"http": HttpTransport(self._sessions),
                                                  "mcp": McpTransport(self._sessions)}

    def transport(self, f: Filter) -> Transport:
        return self._transports[f.type]

    def bind(self, request: Request, request_id: str, tenant: str) -> FilterRun:
        """One request's pass through the chains."""
        return FilterRun(self, request, request_id, tenant)

    async def close(self) -> None:
        for t in self._transports.values():
            await t.close()
        await self._sessions.close()


def from_config(chains: FilterChains) -> Filters | None:
    """The process's filters; None when the listener names none (the flow then skips them)."""
    return Filters(chains) if chains else None


class FilterRun:
    """The filter calls of one request: its path and headers (the same for every call) and
    the time they took (`ms`: calls before the answer; stream chunks counted apart)."""

    __slots__ = ("filters", "request", "request_id", "path", "headers", "ms", "stream_ms",
                 "stream_calls")

    def __init__(self, filters: Filters, request: Request, request_id: str,
                 tenant: str) -> None:
        self.filters = filters
        self.request = request
        self.request_id = request_id
        # Plano appends the client's path to a filter's URL: it says which format it sees.
        self.path: str = request.scope["path"]
        self.headers = filter_headers(request.headers, request_id, tenant)
        self.ms = 0.0
        self.stream_ms = 0.0
        self.stream_calls = 0

    @property
    def has_output(self) -> bool:
        return bool(self.filters.output)

    async def request_body(self, raw: bytes) -> bytes:
        """The client's body (bytes as sent) through the input chain."""
        for f in self.filters.input:
            raw = await self._apply(f, INPUT, raw, REQUEST, JSON)
        return raw

    async def reply_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """A whole reply (or the record of a streamed one) through the output chain."""
        raw = out = orjson.dumps(body)
        for f in self.filters.output:
            out = await self._apply(f, OUTPUT, out, REPLY, JSON)
        if out is raw:
            return body
        changed: dict[str, Any] = orjson.loads(out)   # an object: checked per filter
        return changed

    async def stream(self, chunks: AsyncIterator[bytes], encoder: StreamEncoder,
                     media_type: str) -> AsyncIterator[bytes]:
        """A streamed reply's bytes, each chunk through the output chain as it goes out (the
        client's terminal and error events too: they can carry the reply's text)."""
        try:
            async for chunk in chunks:
                out = chunk
                try:
                    for f in self.filters.output:
                        out = await self._apply(f, OUTPUT, out, CHUNK, media_type)
                except GatewayError as exc:
                    observe.failed(self.request, exc.type)
                    yield encoder.error(exc.to_proto())
                    return
                yield out
        finally:
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                await closer()   # ends the generation (and its upstream request) too
            observe.filter_stream_done(self.request, self.stream_ms, self.stream_calls)

    async def _apply(self, f: Filter, phase: str, payload: bytes, kind: str,
                     content_type: str) -> bytes:
        """One filter call: its verdict applied, its time, span and histogram recorded."""
        started = time.perf_counter()
        outcome, status = "failed", 0
        # Stream chunks get no span each: their totals go on the request's span.
        with (observe.filter_span(f.id, f.type, phase) if kind != CHUNK
              else contextlib.nullcontext()) as span:
            try:
                headers = self.headers
                if tracer.ENABLED and (parent := propagation.current_traceparent()):
                    headers = {**headers, propagation.HEADER: parent}
                async with asyncio.timeout(f.timeout_s):
                    answer = await self.filters.transport(f).call(
                        f, self.path, payload, kind, headers, content_type)
                status = answer.status
                out = self._verdict(f, phase, kind, payload, answer)
                outcome = "ok"
                return out
            except asyncio.CancelledError:
                outcome = "cancelled"   # the client went away mid-call
                raise
            except GatewayError:
                outcome = "rejected"
                log.info("request %s: the %s filter '%s' refused it (%d)", self.request_id,
                         phase, f.id, status)
                raise
            except (FilterFailure, TimeoutError) as exc:
                reason = (str(exc) if isinstance(exc, FilterFailure) else
                          f"did not answer within {f.timeout_s:g} s")
                if not f.fail_open:
                    log.warning("request %s: the %s filter '%s' %s", self.request_id, phase,
                                f.id, reason)
                    raise GatewayError(502, f"the {phase} filter '{f.id}' {reason}",
                                       type="upstream_unreachable") from None
                outcome = "failed_open"
                log.warning("request %s: the %s filter '%s' %s; going on without it "
                            "(fail_open)", self.request_id, phase, f.id, reason)
                return payload
            finally:
                seconds = time.perf_counter() - started
                if kind == CHUNK:
                    self.stream_ms += seconds * 1000.0
                    self.stream_calls += 1
                else:
                    self.ms += seconds * 1000.0
                observe.filter_done(span, f.id, phase, outcome, seconds, status)

    @staticmethod
    def _verdict(f: Filter, phase: str, kind: str, payload: bytes, answer: Answer) -> bytes:
        status = answer.status
        if 200 <= status < 300:
            out = answer.body
            if not out:
                return payload
            if kind != CHUNK and not _is_object(out):
                raise FilterFailure("returned a body that is not a JSON object")
            return out
        if 400 <= status < 500:
            raise refusal(answer, phase, f.id)
        raise FilterFailure(f"answered HTTP {status}")


def _is_object(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False
