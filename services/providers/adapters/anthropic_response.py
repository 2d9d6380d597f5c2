"""Anthropic Messages responses (whole or streamed events) -> canonical stream events."""
from __future__ import annotations

import orjson

from switchyard.common.canonical.mappings import (
    ANTHROPIC_ERROR_STATUS,
    ANTHROPIC_STOP_TO_STOP,
    STRUCTURED_OUTPUT_TOOL,
    error_type_for_status,
    usage_from_anthropic,
)
from switchyard.common.json_object import JsonObject
from switchyard.common.proto import chat_pb2

from . import events as E
from .common import load_chunk, stream_cut_error

_MESSAGE_KEYS = frozenset({"id", "type", "role", "content", "model", "stop_reason",
                           "stop_sequence", "usage"})
_BLOCK_KEYS = {"text": {"type", "text"}, "tool_use": {"type", "id", "name", "input"},
               "thinking": {"type", "thinking", "signature"},
               "redacted_thinking": {"type", "data"}}
# content_block_delta type -> (field holding the value, event constructor).
_DELTAS = {"text_delta": ("text", E.text), "input_json_delta": ("partial_json", E.arguments),
           "thinking_delta": ("thinking", E.reasoning),
           "signature_delta": ("signature", E.signature)}


def decode_stream_error(payload: JsonObject) -> chat_pb2.Error:
    """An `error` event (`{"type": "error", "error": {type, message}}`) -> Error."""
    err = payload.get("error")
    if not isinstance(err, dict):
        err = {}
    etype = str(err.get("type") or "api_error")
    status = ANTHROPIC_ERROR_STATUS.get(etype, 500)
    return chat_pb2.Error(http_status=status, type=error_type_for_status(status),
                          message=str(err.get("message") or "upstream stream error"))


def decode_response(body: JsonObject) -> list[chat_pb2.StreamEvent]:
    """A whole non-streaming reply as the event sequence its stream would have given."""
    if body.get("type") == "error":
        return [E.error(decode_stream_error(body))]
    usage = usage_from_anthropic(body.get("usage"))
    out = [_start(body, _input_usage(usage))]
    answered = called = False
    for index, block in enumerate(body.get("content") or []):
        if not isinstance(block, dict):
            continue
        btype = block.get("type")
        part = _block_part(block)
        if part is None:
            continue
        out.append(E.block_start(index, part))
        if is_answer(block):
            answered = True
            out.append(E.text(index, orjson.dumps(block.get("input") or {}).decode()))
        elif btype == "text" and block.get("text"):
            out.append(E.text(index, block["text"]))
        elif btype == "tool_use":
            called = True
            out.append(E.arguments(index, orjson.dumps(block.get("input") or {}).decode()))
        elif btype == "thinking":
            if block.get("thinking"):
                out.append(E.reasoning(index, block["thinking"]))
            if block.get("signature"):
                out.append(E.signature(index, block["signature"]))
        out.append(E.block_stop(index))
    out.append(E.finish(_stop(body.get("stop_reason"), answered and not called), usage,
                        stop_sequence=body.get("stop_sequence") or ""))
    return out


def is_answer(block: JsonObject) -> bool:
    """The forced structured-output tool's call (see adapters/anthropic_output.py): its
    input is the reply's text, not a call for the client to run."""
    return block.get("type") == "tool_use" and block.get("name") == STRUCTURED_OUTPUT_TOOL


class StreamDecoder:
    """Turns the data payloads of one Anthropic SSE stream into canonical events."""

    def __init__(self) -> None:
        self._started = False
        self._closed = False        # finish or error emitted
        self._stopped = False       # message_stop seen
        self._open: list[int] = []  # block indices started and not yet stopped
        self._known: set[int] = set()  # blocks we emitted a start for (others are ignored)
        self._answers: set[int] = set()  # structured-output tool blocks, relayed as text
        self._called = False             # a real tool_use block was seen
        self._usage = chat_pb2.Usage()

    def feed(self, data: bytes) -> list[chat_pb2.StreamEvent]:
        """Events for one SSE `data:` payload (JSON whose `type` names the event)."""
        if self._closed:
            return []
        ev = load_chunk(data)
        if isinstance(ev, chat_pb2.Error):
            self._closed = True
            return [E.error(ev)]
        return self.event(ev)

    def event(self, ev: JsonObject) -> list[chat_pb2.StreamEvent]:
        """Events for one parsed stream event."""
        if self._closed:
            return []
        etype = ev.get("type")
        if etype == "content_block_delta":
            return self._delta(ev)
        if etype == "content_block_start":
            return self._block_start(ev)
        if etype == "content_block_stop":
            idx = ev.get("index", -1)
            if idx in self._open:
                self._open.remove(idx)
                return [E.block_stop(idx)]
            return []
        if etype == "message_start":
            msg = ev.get("message") or {}
            self._usage = usage_from_anthropic(msg.get("usage"))
            if self._started:
                return []
            self._started = True
            return [_start(msg, _input_usage(self._usage))]
        if etype == "message_delta":
            return self._message_delta(ev)
        if etype == "message_stop":
            self._stopped = True
            return []
        if etype == "error":
            self._closed = True
            return [E.error(decode_stream_error(ev))]
        return []  # ping and event types added after this codec was written

    def finish(self) -> list[chat_pb2.StreamEvent]:
        """End of the HTTP stream: close what message_stop left open, or report a cut stream."""
        if self._closed:
            return []
        self._closed = True
        if not (self._started and self._stopped):
            return [E.error(stream_cut_error())]
        out = self._close_all()
        out.append(E.finish(chat_pb2.STOP_REASON_END_TURN, self._usage))
        return out

    # ---- internals -------------------------------------------------------------------
    def _close_all(self) -> list[chat_pb2.StreamEvent]:
        out = [E.block_stop(i) for i in self._open]
        self._open.clear()
        return out

    def _block_start(self, ev: JsonObject) -> list[chat_pb2.StreamEvent]:
        idx = ev.get("index", -1)
        block = ev.get("content_block") or {}
        part = _block_part(block)
        if part is None or idx in self._known:
            return []
        self._known.add(idx)
        self._open.append(idx)
        out = [E.block_start(idx, part)]
        btype = block.get("type")
        if is_answer(block):
            self._answers.add(idx)
            if block.get("input"):
                out.append(E.text(idx, orjson.dumps(block["input"]).decode()))
            return out
        if btype == "tool_use":
            self._called = True
        if btype == "text" and block.get("text"):
            out.append(E.text(idx, block["text"]))
        elif btype == "tool_use" and block.get("input"):
            out.append(E.arguments(idx, orjson.dumps(block["input"]).decode()))
        elif btype == "thinking":
            if block.get("thinking"):
                out.append(E.reasoning(idx, block["thinking"]))
            if block.get("signature"):
                out.append(E.signature(idx, block["signature"]))
        return out

    def _delta(self, ev: JsonObject) -> list[chat_pb2.StreamEvent]:
        idx = ev.get("index", -1)
        if idx not in self._known:
            return []
        d = ev.get("delta") or {}
        dtype = d.get("type")
        kind = _DELTAS.get(dtype) if isinstance(dtype, str) else None
        if kind is None:
            return []  # citations_delta and future delta types have no canonical counterpart
        key, make = kind
        if idx in self._answers:
            make = E.text   # the answer tool's input JSON is the reply's text
        value = d.get(key) or ""
        return [make(idx, value)] if value else []

    def _message_delta(self, ev: JsonObject) -> list[chat_pb2.StreamEvent]:
        d = ev.get("delta") or {}
        u = ev.get("usage") or {}
        # message_delta usage is cumulative; fields it omits keep message_start's values.
        for key, attr in (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
                          ("cache_read_input_tokens", "cache_read_tokens"),
                          ("cache_creation_input_tokens", "cache_creation_tokens")):
            if u.get(key) is not None:
                setattr(self._usage, attr, int(u[key]))
        if not self._started:
            self._closed = True
            return [E.error(stream_cut_error())]
        out = self._close_all()
        answered = bool(self._answers) and not self._called
        out.append(E.finish(_stop(d.get("stop_reason"), answered), self._usage,
                            stop_sequence=d.get("stop_sequence") or ""))
        self._closed = True
        return out


def _stop(reason: str | None, answered: bool = False) -> chat_pb2.StopReason:
    """The canonical stop reason; a turn that only called the answer tool ended its turn."""
    if answered and reason == "tool_use":
        return chat_pb2.STOP_REASON_END_TURN
    return ANTHROPIC_STOP_TO_STOP.get(reason or "", chat_pb2.STOP_REASON_END_TURN)


def _input_usage(u: chat_pb2.Usage) -> chat_pb2.Usage:
    """What is known when the message starts: the input side."""
    return chat_pb2.Usage(input_tokens=u.input_tokens, cache_read_tokens=u.cache_read_tokens,
                          cache_creation_tokens=u.cache_creation_tokens)


def _start(msg: JsonObject, usage: chat_pb2.Usage) -> chat_pb2.StreamEvent:
    extra = {k: v for k, v in msg.items() if k not in _MESSAGE_KEYS and v is not None}
    return E.start(str(msg.get("id") or ""), str(msg.get("model") or ""), usage,
                   orjson.dumps(extra) if extra else b"")


def _block_part(block: JsonObject) -> chat_pb2.ContentPart | None:
    """The BlockStart part for an Anthropic content block; None for types we do not model."""
    btype = block.get("type", "")   # absent: no known type
    known = _BLOCK_KEYS.get(btype)
    if known is None:
        return None
    extra = {k: v for k, v in block.items() if k not in known and v is not None}
    raw = orjson.dumps(extra) if extra else b""
    if btype == "text":
        return E.text_part(raw)
    if btype == "tool_use":
        if is_answer(block):
            return E.text_part()
        return E.tool_part(str(block.get("id") or ""), str(block.get("name") or ""), raw)
    if btype == "thinking":
        return E.reasoning_part(extra_json=raw)
    return E.reasoning_part(redacted_data=str(block.get("data") or ""), extra_json=raw)
