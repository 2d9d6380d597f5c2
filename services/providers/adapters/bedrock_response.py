"""Amazon Bedrock Converse replies (whole, or the events of a ConverseStream) -> canonical
events, and Bedrock's errors.

Stream events arrive as `{"<eventType>": payload}` objects (`bedrock_stream` wraps each
event-stream message so). Text and reasoning blocks have no `contentBlockStart` (their first
delta opens them); `messageStop` names the stop reason and the `metadata` event after it
carries the usage, so the turn finishes at `metadata` (or at the end of the stream).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from switchyard.common.canonical.mappings import (
    BEDROCK_ERRORS,
    BEDROCK_STOP_TO_STOP,
    usage_from_bedrock,
)
from switchyard.common.http_headers import header
from switchyard.common.json_object import JsonObject
from switchyard.common.proto import chat_pb2

from . import events as E
from .common import http_error, load_chunk, parse_error_body, stream_cut_error

_ERROR_TYPE_HEADER = "x-amzn-errortype"


def error_name(raw: str) -> str:
    """`ThrottlingException:http://internal...`, `com.amazon.coral#ValidationException` or
    an event stream's `throttlingException` -> `ThrottlingException`."""
    name = raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    return name[:1].upper() + name[1:]


def _error(name: str, message: str, status: int, headers: Mapping[str, str] | None = None
           ) -> chat_pb2.Error:
    known = BEDROCK_ERRORS.get(name)
    if known is None:
        return http_error(status, message, headers, code=name)
    mapped, etype = known
    return http_error(mapped, message or f"Bedrock returned {name}", headers, code=name,
                      type=etype)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        msg = body.get("message") or body.get("Message") or ""
        original = body.get("originalMessage")
        if original and original not in str(msg):
            msg = f"{msg} ({original})" if msg else original
        return str(msg)
    return body if isinstance(body, str) else ""


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> chat_pb2.Error:
    """A non-2xx reply: the exception name from `x-amzn-ErrorType` (or the body's
    `__type`), the message kept."""
    parsed = parse_error_body(body)
    raw = header(headers, _ERROR_TYPE_HEADER) or ""
    if not raw and isinstance(parsed, dict):
        raw = str(parsed.get("__type") or parsed.get("code") or "")
    return _error(error_name(raw), _message(parsed), status, headers)


def decode_stream_error(payload: JsonObject) -> chat_pb2.Error:
    """An exception message of the event stream (`{"__type": ..., "message": ...}`)."""
    name = error_name(str(payload.get("__type") or "InternalServerException"))
    known = BEDROCK_ERRORS.get(name)
    return _error(name, _message(payload) or "Bedrock stream error",
                  known[0] if known else 500)


def decode_response(body: JsonObject) -> list[chat_pb2.StreamEvent]:
    """A whole Converse reply as the events its stream would have given."""
    usage = usage_from_bedrock(body.get("usage"))
    out = [E.start("", "", _input_usage(usage))]
    output = body.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    index = 0
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict):
            events = _whole_block(index, block)
            if events:
                out += events
                index += 1
    extra = body.get("additionalModelResponseFields")
    out.append(E.finish(_stop(body.get("stopReason"), False), usage,
                        stop_sequence=_stop_sequence(extra)))
    return out


def _whole_block(index: int, block: JsonObject) -> list[chat_pb2.StreamEvent]:
    if isinstance(block.get("text"), str):
        return [E.block_start(index, E.text_part()), E.text(index, block["text"]),
                E.block_stop(index)]
    use = block.get("toolUse")
    if isinstance(use, dict):
        return [E.block_start(index, E.tool_part(str(use.get("toolUseId") or ""),
                                                 str(use.get("name") or ""))),
                E.arguments(index, orjson.dumps(use.get("input") or {}).decode()),
                E.block_stop(index)]
    reasoning = block.get("reasoningContent")
    if isinstance(reasoning, dict):
        if reasoning.get("redactedContent"):
            return [E.block_start(index, E.reasoning_part(
                redacted_data=str(reasoning["redactedContent"]))), E.block_stop(index)]
        text = reasoning.get("reasoningText")
        if isinstance(text, dict):
            out = [E.block_start(index, E.reasoning_part())]
            if text.get("text"):
                out.append(E.reasoning(index, str(text["text"])))
            if text.get("signature"):
                out.append(E.signature(index, str(text["signature"])))
            return out + [E.block_stop(index)]
    cited = block.get("citationsContent")
    if isinstance(cited, dict):   # generated text with citations: the text is kept
        text = "".join(str(c.get("text") or "") for c in cited.get("content") or ()
                       if isinstance(c, dict))
        if text:
            return [E.block_start(index, E.text_part()), E.text(index, text),
                    E.block_stop(index)]
    return []   # images, guard content and later block kinds have no counterpart


class StreamDecoder:
    """Turns the events of one ConverseStream into canonical events."""

    def __init__(self) -> None:
        self._started = False
        self._closed = False
        self._open: dict[int, str] = {}    # contentBlockIndex -> text | tool | reasoning
        self._tools = False
        self._stop: tuple[chat_pb2.StopReason, str] | None = None
        self._usage: chat_pb2.Usage | None = None

    def feed(self, data: bytes) -> list[chat_pb2.StreamEvent]:
        """Events for one wrapped stream event (`{"contentBlockDelta": {...}}`)."""
        if self._closed:
            return []
        chunk = load_chunk(data)
        if isinstance(chunk, chat_pb2.Error):
            self._closed = True
            return [E.error(chunk)]
        out: list[chat_pb2.StreamEvent] = []
        for name, payload in chunk.items():
            if isinstance(payload, dict):
                out += self._event(name, payload)
        return out

    def finish(self) -> list[chat_pb2.StreamEvent]:
        """End of the HTTP stream: the turn ends if messageStop came, else it was cut."""
        if self._closed:
            return []
        self._closed = True
        if self._stop is None:
            return [E.error(stream_cut_error())]
        return [E.finish(self._stop[0], self._usage, stop_sequence=self._stop[1])]

    # ---- internals -------------------------------------------------------------------
    def _event(self, name: str, ev: JsonObject) -> list[chat_pb2.StreamEvent]:
        if name == "messageStart":
            if self._started:
                return []
            self._started = True
            return [E.start("", "")]
        out = [] if self._started else self._implicit_start()
        if name == "contentBlockDelta":
            out += self._delta(ev)
        elif name == "contentBlockStart":
            out += self._block_start(ev)
        elif name == "contentBlockStop":
            index = ev.get("contentBlockIndex")
            if isinstance(index, int) and self._open.pop(index, None) is not None:
                out.append(E.block_stop(index))
        elif name == "messageStop":
            out += self._close_all()
            self._stop = (_stop(ev.get("stopReason"), self._tools),
                          _stop_sequence(ev.get("additionalModelResponseFields")))
        elif name == "metadata":
            self._usage = usage_from_bedrock(ev.get("usage"))
            if self._stop is not None:
                self._closed = True
                out.append(E.finish(self._stop[0], self._usage, stop_sequence=self._stop[1]))
        return out   # later event kinds are ignored

    def _implicit_start(self) -> list[chat_pb2.StreamEvent]:
        self._started = True
        return [E.start("", "")]

    def _block_start(self, ev: JsonObject) -> list[chat_pb2.StreamEvent]:
        index, start = ev.get("contentBlockIndex"), ev.get("start")
        if not isinstance(index, int) or index in self._open or not isinstance(start, dict):
            return []
        use = start.get("toolUse")
        if not isinstance(use, dict):
            return []   # server tool results and images have no counterpart
        self._open[index] = "tool"
        self._tools = True
        return [E.block_start(index, E.tool_part(str(use.get("toolUseId") or ""),
                                                 str(use.get("name") or "")))]

    def _delta(self, ev: JsonObject) -> list[chat_pb2.StreamEvent]:
        index, delta = ev.get("contentBlockIndex"), ev.get("delta")
        if not isinstance(index, int) or not isinstance(delta, dict):
            return []
        kind = self._open.get(index)
        out: list[chat_pb2.StreamEvent] = []
        if isinstance(delta.get("text"), str):
            if kind is None:
                kind = self._begin(index, "text", E.text_part(), out)
            if kind == "text" and delta["text"]:
                out.append(E.text(index, delta["text"]))
        elif isinstance(delta.get("toolUse"), dict):
            if kind == "tool":
                fragment = str(delta["toolUse"].get("input") or "")
                if fragment:
                    out.append(E.arguments(index, fragment))
        elif isinstance(delta.get("reasoningContent"), dict):
            out += self._reasoning(index, kind, delta["reasoningContent"])
        return out

    def _reasoning(self, index: int, kind: str | None,
                   r: JsonObject) -> list[chat_pb2.StreamEvent]:
        out: list[chat_pb2.StreamEvent] = []
        if r.get("redactedContent"):
            if kind is None:
                self._begin(index, "redacted", E.reasoning_part(
                    redacted_data=str(r["redactedContent"])), out)
            return out
        if kind is None:
            kind = self._begin(index, "reasoning", E.reasoning_part(), out)
        if kind != "reasoning":
            return out
        if r.get("text"):
            out.append(E.reasoning(index, str(r["text"])))
        if r.get("signature"):
            out.append(E.signature(index, str(r["signature"])))
        return out

    def _begin(self, index: int, kind: str, part: chat_pb2.ContentPart,
               out: list[chat_pb2.StreamEvent]) -> str:
        self._open[index] = kind
        out.append(E.block_start(index, part))
        return kind

    def _close_all(self) -> list[chat_pb2.StreamEvent]:
        out = [E.block_stop(i) for i in self._open]
        self._open.clear()
        return out


def _stop(reason: Any, tools: bool) -> chat_pb2.StopReason:
    stop = BEDROCK_STOP_TO_STOP.get(str(reason or ""), chat_pb2.STOP_REASON_END_TURN)
    return chat_pb2.STOP_REASON_TOOL_USE if tools and stop == chat_pb2.STOP_REASON_END_TURN \
        else stop


def _stop_sequence(fields: Any) -> str:
    """Claude on Bedrock names the matched stop sequence in additionalModelResponseFields."""
    value = fields.get("stop_sequence") if isinstance(fields, dict) else None
    return value if isinstance(value, str) else ""


def _input_usage(u: chat_pb2.Usage) -> chat_pb2.Usage:
    return chat_pb2.Usage(input_tokens=u.input_tokens, cache_read_tokens=u.cache_read_tokens,
                          cache_creation_tokens=u.cache_creation_tokens)
