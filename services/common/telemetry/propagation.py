"""W3C `traceparent` in and out: HTTP headers, gRPC metadata, the GenerateRequest field.

Called only with tracing on; the OpenTelemetry API is imported in the functions, so a
gateway with tracing off never loads it.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import SpanContext

HEADER = "traceparent"


def format_traceparent(ctx: SpanContext) -> str:
    """`00-<trace id>-<span id>-<flags>`, or "" for an invalid context."""
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_traceparent() -> str:
    """The traceparent of the span current in this context ("" without one)."""
    from opentelemetry import trace

    from switchyard.common.telemetry.spans import RecordingSpan
    span = trace.get_current_span()
    if type(span) is RecordingSpan:   # ours: no SpanContext to build
        return span.traceparent()
    return format_traceparent(span.get_span_context())


def parse_traceparent(value: str) -> SpanContext | None:
    """A remote parent from a traceparent value; None when it is malformed (then ignored)."""
    from opentelemetry.trace import SpanContext, TraceFlags
    value = value.strip()
    if len(value) == 55 and value.startswith("00-") and value.count("-") == 3 \
            and value[35] == "-" and value[52] == "-":   # the one shape seen in practice
        try:
            trace_id, span_id = int(value[3:35], 16), int(value[36:52], 16)
            flags = int(value[53:], 16)
        except ValueError:
            return None
        if not trace_id or not span_id:
            return None
        return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))
    parts = value.split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or len(parts[1]) != 32 \
            or len(parts[2]) != 16 or len(parts[3]) != 2 or (parts[0] == "00" and len(parts) != 4):
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))


def context_from(value: str | None) -> Context | None:
    """A context whose parent is the remote span `value` names (None: start a new trace)."""
    if not value:
        return None
    parent = parse_traceparent(value)
    if parent is None:
        return None
    from opentelemetry.trace import NonRecordingSpan, set_span_in_context
    return set_span_in_context(NonRecordingSpan(parent))


def is_sampled(value: str | None) -> bool:
    """`value` names a parent whose trace is recorded. Only the edge starts a trace; every
    other service records a span only under such a parent, so an unsampled request costs
    them nothing (the edge sends it on with no traceparent)."""
    parent = parse_traceparent(value) if value else None
    return parent is not None and parent.trace_flags.sampled


def in_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The traceparent carried in gRPC call metadata ("" without one)."""
    for key, value in metadata or ():
        if key == HEADER:
            return value.decode() if isinstance(value, bytes) else value
    return ""
