"""The spans a traced process records: small objects whose `end` hands one plain tuple to a
sink (`shipper.Shipper.add`), instead of the SDK's Span with its lock, attribute validation
and span processors on every call. They meet the OpenTelemetry API (`trace.Span`,
`trace.Tracer`), so contexts, `use_span` and `get_current_span` work unchanged; the exporter
process encodes the tuples as OTLP spans (`otlp.Encoder`).

Sampling is the SDK's ParentBased(TraceIdRatioBased): a parent's decision is kept, a root
is sampled when the low 64 bits of its trace id fall under the ratio's bound.
"""
from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, get_current
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation import _SPAN_KEY  # the current span's context key
from opentelemetry.util.types import Attributes

SAMPLED = 0x01
RANDOM_TRACE_ID = 0x02   # W3C level 2: our trace ids are random (the SDK sets it too)
TRACE_ID_LIMIT = (1 << 64) - 1

# One finished span, as the exporter process reads it (marshal-able: ints, strs, dicts):
# (name, trace_id, span_id, flags, parent_id (0: root), parent_remote, kind (SpanKind value),
#  start_ns, end_ns, attributes, status_code (StatusCode value), status_description,
#  events: [(name, time_ns, attributes)] or None)
Record = tuple[Any, ...]
Sink = Callable[[Record], None]

_bits = random.getrandbits
_now = time.time_ns
_UNSET, _OK, _ERROR = StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR


def _new_id(bits: int) -> int:
    while True:   # 0 is the invalid id
        value = _bits(bits)
        if value:
            return value


class RecordingSpan(trace.Span):
    """A sampled span being recorded; `end` queues its record and later calls are ignored."""

    __slots__ = ("name", "trace_id", "span_id", "flags", "parent_id", "parent_remote", "kind",
                 "start", "attributes", "status", "description", "events", "ended",
                 "_context", "_sink")

    def __init__(self, sink: Sink, name: str, trace_id: int, span_id: int, flags: int,
                 parent_id: int, parent_remote: bool, kind: int, start: int,
                 attributes: dict[str, Any]) -> None:
        self._sink = sink
        self.name = name
        self.trace_id = trace_id
        self.span_id = span_id
        self.flags = flags
        self.parent_id = parent_id
        self.parent_remote = parent_remote
        self.kind = kind
        self.start = start
        self.attributes = attributes
        self.status = 0
        self.description: str | None = None
        self.events: list[tuple[str, int, dict[str, Any]]] | None = None
        self.ended = False
        self._context: SpanContext | None = None

    def get_span_context(self) -> SpanContext:
        ctx = self._context
        if ctx is None:   # made on demand: most spans are never asked
            ctx = self._context = SpanContext(self.trace_id, self.span_id, False,
                                              TraceFlags(self.flags))
        return ctx

    def traceparent(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"

    def set_attribute(self, key: str, value: Any) -> None:
        if not self.ended:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if not self.ended:
            self.attributes.update(attributes)

    def add_event(self, name: str, attributes: Attributes = None,
                  timestamp: int | None = None) -> None:
        if self.ended:
            return
        if self.events is None:
            self.events = []
        self.events.append((name, timestamp or _now(), dict(attributes or {})))

    def update_name(self, name: str) -> None:
        if not self.ended:
            self.name = name

    def is_recording(self) -> bool:
        return not self.ended

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # The SDK's rules: OK is final, UNSET never overwrites, a description only on ERROR.
        if self.ended or self.status == _OK.value:
            return
        if isinstance(status, Status):
            code, description = status.status_code, status.description
        else:
            code = status
        if code is _UNSET:
            return
        self.status = code.value
        self.description = description if code is _ERROR else None

    def record_exception(self, exception: BaseException, attributes: Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        """The SDK's `exception` event (only on a failure path, so its cost does not matter)."""
        module, qualname = type(exception).__module__, type(exception).__qualname__
        event: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins"
            else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped)}
        event.update(attributes or {})
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        self._sink((self.name, self.trace_id, self.span_id, self.flags, self.parent_id,
                    self.parent_remote, self.kind, self.start, end_time or _now(),
                    self.attributes, self.status, self.description, self.events))


class SpanTracer(trace.Tracer):
    """Starts RecordingSpans (sampled) or NonRecordingSpans that still carry the context."""

    def __init__(self, sink: Sink, ratio: float) -> None:
        self._sink = sink
        self._bound = round(ratio * (TRACE_ID_LIMIT + 1))   # TraceIdRatioBased's bound

    def start_span(self, name: str, context: Context | None = None,
                   kind: SpanKind = SpanKind.INTERNAL, attributes: Attributes = None,
                   links: Sequence[Link] | None = None, start_time: int | None = None,
                   record_exception: bool = True, set_status_on_exception: bool = True
                   ) -> trace.Span:
        # What trace.get_current_span does, without its isinstance check against an ABC.
        parent = (get_current() if context is None else context).get(_SPAN_KEY)
        if type(parent) is RecordingSpan:   # the common case: a span of this process
            trace_id, parent_id, remote = parent.trace_id, parent.span_id, False
            flags = parent.flags
        else:
            pctx = (parent if isinstance(parent, trace.Span)
                    else trace.INVALID_SPAN).get_span_context()
            if pctx.is_valid:
                trace_id, parent_id, remote = pctx.trace_id, pctx.span_id, pctx.is_remote
                flags = int(pctx.trace_flags) & (SAMPLED | RANDOM_TRACE_ID)
            else:   # a root: sampled by its trace id
                trace_id, parent_id, remote = _new_id(128), 0, False
                flags = RANDOM_TRACE_ID | (SAMPLED if trace_id & TRACE_ID_LIMIT < self._bound
                                           else 0)
        span_id = _new_id(64)
        if not flags & SAMPLED:
            return NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(flags)))
        return RecordingSpan(self._sink, name, trace_id, span_id, flags, parent_id, remote,
                             kind.value, start_time or _now(),
                             dict(attributes) if attributes else {})

    @contextmanager   # the API's own decorator for this is private; `with` works the same
    def start_as_current_span(  # type: ignore[override]
            self, name: str, context: Context | None = None,
                              kind: SpanKind = SpanKind.INTERNAL, attributes: Attributes = None,
                              links: Sequence[Link] | None = None,
                              start_time: int | None = None, record_exception: bool = True,
                              set_status_on_exception: bool = True, end_on_exit: bool = True
                              ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                            set_status_on_exception=set_status_on_exception) as current:
            yield current
