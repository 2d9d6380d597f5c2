"""Span records (`spans.Record`) as OTLP/protobuf bytes, written by hand in the exporter
process: the same message the SDK's encoder builds from its ReadableSpans
(tests/unit/test_telemetry.py compares the two), at a fraction of the CPU — most attributes
repeat from request to request, so each (key, value) pair is encoded once and reused.

Field numbers: opentelemetry/proto/{collector/trace,trace,common,resource}/v1/*.proto.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from switchyard.common.telemetry.spans import Record

_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_FIXED32 = struct.Struct("<I")
_VARINTS = [bytes([n]) for n in range(128)]   # every length below 128: one byte
_CACHE_LIMIT = 8192   # encoded (key, value) pairs kept; request ids and such churn through

# Span.flags (fixed32): whether the parent is remote is known (0x100), and if it is (0x200).
_FLAGS_LOCAL = b"\x85\x01" + _FIXED32.pack(0x100)
_FLAGS_REMOTE = b"\x85\x01" + _FIXED32.pack(0x300)


def varint(n: int) -> bytes:
    if n < 128:
        return _VARINTS[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the length, the payload."""
    return tag + varint(len(payload)) + payload


def _text(value: str, limit: int | None) -> bytes:
    return (value if limit is None else value[:limit]).encode("utf-8", "surrogatepass")


def any_value(value: Any, limit: int | None = None) -> bytes:
    """An AnyValue message (the SDK's _encode_value after its _clean_attribute_value)."""
    if value is None:
        return b""
    if value is True or value is False:
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", _text(value, limit))
    if isinstance(value, int) and not isinstance(value, bool):
        return b"\x18" + varint(value & 0xFFFFFFFFFFFFFFFF)   # int64: two's complement
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, (list, tuple)):
        return _field(b"\x2a", b"".join(_field(b"\x0a", any_value(v, limit)) for v in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(
            _field(b"\x0a", key_value(str(k), v, limit)) for k, v in value.items() if k))
    return _field(b"\x0a", _text(str(value), limit))   # the SDK's fallback: its str()


def key_value(key: str, value: Any, limit: int | None = None) -> bytes:
    return _field(b"\x0a", key.encode("utf-8", "surrogatepass")) + _field(
        b"\x12", any_value(value, limit))


class Encoder:
    """Records of one service → span messages → one ExportTraceServiceRequest."""

    def __init__(self, resource: Mapping[str, Any], scope: str, max_attributes: int | None = 128,
                 max_length: int | None = None, max_events: int | None = 128,
                 max_event_attributes: int | None = 128, max_event_length: int | None = None
                 ) -> None:
        # The SDK's SpanLimits: counts (None: unlimited) and string value lengths.
        self.max_attributes, self.max_length = max_attributes, max_length
        self.max_events = max_events
        self.max_event_attributes, self.max_event_length = max_event_attributes, max_event_length
        self._pairs: dict[tuple[bytes, str, type, Any], bytes] = {}
        resource_msg = b"".join(_field(b"\x0a", key_value(k, v)) for k, v in resource.items())
        self._head = _field(b"\x0a", resource_msg)              # ResourceSpans.resource
        self._scope = _field(b"\x0a", _field(b"\x0a", scope.encode()))   # ScopeSpans.scope

    def _attributes(self, tag: bytes, attributes: Mapping[str, Any], limit: int | None,
                    length: int | None) -> tuple[list[bytes], int]:
        """The KeyValue fields (tagged `tag`), at most `limit` of them (the newest, as
        BoundedAttributes keeps), and how many were dropped."""
        pairs = self._pairs
        out: list[bytes] = []
        dropped = 0
        for key, value in attributes.items():
            if not key or not isinstance(key, str):
                dropped += 1
                continue
            if isinstance(value, (str, int, float)):   # bool is an int: its type is the key
                ck = (tag, key, type(value), value)
                kv = pairs.get(ck)
                if kv is None:
                    if len(pairs) >= _CACHE_LIMIT:
                        pairs.clear()
                    kv = pairs[ck] = _field(tag, key_value(key, value, length))
            else:
                kv = _field(tag, key_value(key, value, length))
            out.append(kv)
        if limit is not None and len(out) > limit:
            dropped += len(out) - limit
            out = out[len(out) - limit:] if limit else []
        return out, dropped

    def span(self, record: Record) -> bytes:
        """One Span message."""
        (name, trace_id, span_id, _flags, parent_id, parent_remote, kind, start, end,
         attributes, status, description, events) = record
        parts = [b"\x0a\x10", trace_id.to_bytes(16, "big"), b"\x12\x08", span_id.to_bytes(8, "big")]
        if parent_id:
            parts += (b"\x22\x08", parent_id.to_bytes(8, "big"))
        parts += (_field(b"\x2a", name.encode("utf-8", "surrogatepass")),
                  b"\x30", varint(kind + 1),   # OTLP kinds count from UNSPECIFIED = 0
                  b"\x39", _FIXED64.pack(start), b"\x41", _FIXED64.pack(end))
        # Span.attributes is field 9 (tag 0x4a); the pairs cache holds it tagged.
        kvs, dropped = self._attributes(b"\x4a", attributes, self.max_attributes,
                                        self.max_length)
        parts += kvs
        if dropped:
            parts += (b"\x50", varint(dropped))
        if events:
            kept = events
            if self.max_events is not None and len(events) > self.max_events:
                kept = events[len(events) - self.max_events:]   # the newest, as BoundedList
            for event_name, at, event_attributes in kept:
                ekvs, edropped = self._attributes(b"\x1a", event_attributes,
                                                  self.max_event_attributes, self.max_event_length)
                body = b"\x09" + _FIXED64.pack(at) + _field(
                    b"\x12", event_name.encode("utf-8", "surrogatepass")) + b"".join(ekvs)
                if edropped:
                    body += b"\x20" + varint(edropped)
                parts.append(_field(b"\x5a", body))
            if len(kept) < len(events):
                parts += (b"\x60", varint(len(events) - len(kept)))
        # Status (field 15) is always present, as the SDK writes it: code, and on an error
        # its description.
        body = b""
        if description and status == 2:
            body = _field(b"\x12", description.encode("utf-8", "surrogatepass"))
        if status:
            body += b"\x18" + varint(status)
        parts.append(_field(b"\x7a", body))
        parts.append(_FLAGS_REMOTE if parent_id and parent_remote else _FLAGS_LOCAL)
        return b"".join(parts)

    def request(self, spans: Iterable[bytes]) -> bytes:
        """An ExportTraceServiceRequest of one resource and scope holding `spans`."""
        scope_spans = self._scope + b"".join(_field(b"\x12", s) for s in spans)
        return _field(b"\x0a", self._head + _field(b"\x12", scope_spans))
