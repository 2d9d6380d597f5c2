"""Reading one upstream SSE body: network reads in, canonical events out (one list per read)."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

import orjson

from switchyard.common.config.model import ProviderEntry
from switchyard.common.json_object import JsonObject
from switchyard.common.proto import chat_pb2
from switchyard.providers.adapters.base import StreamDecoder, UpstreamCodec
from switchyard.providers.http_client import Response

# Events that show the upstream is producing output: once one reached the client, no retry.
CONTENT_KINDS = frozenset({"block_start", "delta", "block_stop", "finish"})


class EventParser(Protocol):
    """Splits an SSE byte stream into (event name, data) pairs; see common/sse_parser.py.

    A `close()` returning the same pairs, for an unterminated last event, is optional.
    """

    def feed(self, chunk: bytes) -> Iterable[tuple[str | None, bytes | str]]: ...


def first_error(events: list[chat_pb2.StreamEvent]) -> int:
    """The index of the first `error` event, or -1."""
    for i, ev in enumerate(events):
        if ev.HasField("error"):
            return i
    return -1


def has_content(events: list[chat_pb2.StreamEvent]) -> bool:
    """Whether the events pass the commit point."""
    return any(ev.WhichOneof("event") in CONTENT_KINDS for ev in events)


class StreamReader:
    """Turns one SSE response body into lists of canonical events, one list per network read.

    A read waits at most `timeout_s`. The limit is kept by one lazily re-armed timer per
    stream, not an `asyncio.timeout` per read (which schedules and cancels a timer for
    every chunk): each read only moves the limit, and the timer, when it fires before the
    limit, re-arms itself for it; at the limit it fails the waiting read with TimeoutError.
    """

    def __init__(self, response: Response, parser: EventParser,
                 decoder: StreamDecoder, codec: UpstreamCodec, entry: ProviderEntry) -> None:
        self.response = response
        self.parser = parser
        self.decoder = decoder
        self.codec = codec
        self.entry = entry
        self.done = False
        self.saw_finish = False
        self._limit = 0.0                         # loop time the waiting read may last to
        self._timer: asyncio.TimerHandle | None = None
        self._reading = False                     # a read is waiting on the response

    async def read(self, timeout_s: float) -> list[chat_pb2.StreamEvent]:
        """Events from the next network read (TimeoutError when the upstream stays silent)."""
        loop = asyncio.get_running_loop()
        self._limit = loop.time() + timeout_s
        if self._timer is None or self._limit < self._timer.when():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(self._limit, self._check)
        self._reading = True
        try:
            chunk = await self.response.read_chunk()
        except BaseException:
            self.close()
            raise
        finally:
            self._reading = False
        events: list[chat_pb2.StreamEvent] = []
        if not chunk:
            self.done = True
            self.close()
            close = getattr(self.parser, "close", None)   # an unterminated last event
            for event, data in (close() if close else ()):
                events.extend(self._decode(event, data))
            return events + self._checked(self.decoder.finish())
        for event, data in self.parser.feed(chunk):
            events.extend(self._decode(event, data))
        return events

    def close(self) -> None:
        """Stop the read timer (the stream ended, failed, or is abandoned)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        """The timer fired: time out the waiting read if its limit passed, else re-arm."""
        self._timer = None
        if not self._reading:
            return   # between reads: the next read arms the timer again
        loop = asyncio.get_running_loop()
        if loop.time() < self._limit:
            self._timer = loop.call_at(self._limit, self._check)
            return
        self.response.interrupt(TimeoutError())

    def _decode(self, event: str | None, data: bytes | str) -> list[chat_pb2.StreamEvent]:
        if isinstance(data, str):
            data = data.encode()
        payload = stream_error_payload(event, data)
        if payload is not None:
            err = self.codec.decode_stream_error(payload)
            if not err.provider:
                err.provider = self.entry.name
            if not err.http_status:
                err.http_status = 500
            return [chat_pb2.StreamEvent(error=err)]
        return self._checked(self.decoder.feed(data))

    def _checked(self, events: list[chat_pb2.StreamEvent]) -> list[chat_pb2.StreamEvent]:
        """Note the finish, and name the entry in errors the codec left anonymous."""
        for ev in events:
            kind = ev.WhichOneof("event")
            if kind == "finish":
                self.saw_finish = True
            elif kind == "error" and not ev.error.provider:
                ev.error.provider = self.entry.name
        return events


def stream_error_payload(event: str | None, data: bytes) -> JsonObject | None:
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
