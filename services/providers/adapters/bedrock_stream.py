"""Amazon's binary event stream (`application/vnd.amazon.eventstream`), the framing of
ConverseStream, split into (event, data) pairs by botocore's parser.

Each message is a prelude (lengths and a CRC), typed headers, a JSON payload and a message
CRC; botocore checks both CRCs and raises on a bad frame, which the stream reader turns into
an upstream error. An event's payload is the event's fields only (its name is the
`:event-type` header), so it is handed on wrapped as `{"<event>": payload}` (botocore's own
shape for a parsed event). Exceptions (`:message-type` exception or error) become an `error`
pair whose data carries the exception name in `__type`, which the stream reader passes to
the codec's `decode_stream_error`.
"""
from __future__ import annotations

import re
from typing import Any

import orjson

_EVENT_NAME = re.compile(rb"^[A-Za-z][A-Za-z0-9]*$")


class EventParser:
    """Splits an event-stream body into (event name, JSON data) pairs (see module doc)."""

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer  # only Bedrock streams load it
        self._buffer: Any = EventStreamBuffer()

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        """Every message `chunk` completes (botocore raises on a CRC or length error)."""
        if not chunk:
            return []
        self._buffer.add_data(chunk)
        out: list[tuple[str, bytes]] = []
        for message in self._buffer:
            pair = _pair(message.headers, message.payload or b"")
            if pair is not None:
                out.append(pair)
        return out


def _pair(headers: dict[str, Any], payload: bytes) -> tuple[str, bytes] | None:
    kind = headers.get(":message-type")
    if kind == "event":
        name = str(headers.get(":event-type") or "").encode()
        if not _EVENT_NAME.match(name):
            return None
        return name.decode(), b'{"' + name + b'":' + (payload.strip() or b"{}") + b"}"
    if kind == "exception":
        body = _object(payload)
        body["__type"] = str(headers.get(":exception-type") or "InternalServerException")
        return "error", orjson.dumps(body)
    if kind == "error":
        return "error", orjson.dumps({"__type": str(headers.get(":error-code") or ""),
                                      "message": str(headers.get(":error-message") or "")})
    return None


def _object(payload: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        return {"message": payload.decode("utf-8", "replace")[:2000]}
    return value if isinstance(value, dict) else {}
