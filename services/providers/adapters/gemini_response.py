"""Gemini GenerateContentResponse (whole, or the chunks of an SSE stream) -> canonical events.

Each stream chunk is a whole response holding the next parts of candidate 0; consecutive
text (or thought) parts continue one block. Thought parts are reasoning blocks whose
`thoughtSignature` is the reasoning signature; a signature on a functionCall part rides in
the tool-call id (`gemini_ids`). Other candidates (candidateCount > 1) are not decoded.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from switchyard.common.canonical.mappings import (
    GEMINI_FINISH_TO_STOP,
    GEMINI_NAME_STATUS,
    error_type_for_status,
    usage_from_gemini,
)
from switchyard.common.json_object import JsonObject
from switchyard.common.proto import chat_pb2

from . import events as E
from .common import http_error, load_chunk, parse_error_body, stream_cut_error
from .gemini_ids import new_call_id, pack_call_id

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
_RESPONSE_KEYS = frozenset({"candidates", "usageMetadata", "modelVersion", "responseId",
                            "promptFeedback"})


def _retry_delay(details: Any) -> float:
    """Seconds of a RetryInfo `retryDelay` ("37s", "1.5s") among an error's details."""
    for d in details if isinstance(details, list) else ():
        if isinstance(d, dict) and d.get("@type") == _RETRY_INFO:
            m = _DURATION.match(str(d.get("retryDelay") or ""))
            if m:
                return float(m.group(1))
    return 0.0


def _reason(details: Any) -> str:
    for d in details if isinstance(details, list) else ():
        if isinstance(d, dict) and d.get("@type") == _ERROR_INFO:
            return str(d.get("reason") or "")
    return ""


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> chat_pb2.Error:
    """Google's `{"error": {code, message, status, details}}` -> Error; a 429's RetryInfo
    becomes retry_after; a rejected key (400 API_KEY_INVALID) is an authentication error."""
    parsed = parse_error_body(body)
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(err, dict):
        return http_error(status, parsed if isinstance(parsed, str) else "", headers)
    message = str(err.get("message") or "")
    details = err.get("details")
    out = http_error(status, message, headers, code=str(err.get("status") or ""))
    if _reason(details) == "API_KEY_INVALID":
        out.http_status, out.type = 401, "authentication"
    delay = _retry_delay(details)
    if delay and not out.retry_after:
        out.retry_after = delay
    return out


def decode_stream_error(payload: JsonObject) -> chat_pb2.Error:
    """An error object sent inside a 200 stream (`{"error": {...}}`) -> Error."""
    err = payload.get("error")
    if not isinstance(err, dict):
        err = {}
    name = str(err.get("status") or "")
    code = err.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else \
        GEMINI_NAME_STATUS.get(name, 500)
    return chat_pb2.Error(http_status=status, type=error_type_for_status(status),
                          message=str(err.get("message") or "upstream stream error"), code=name,
                          retry_after=_retry_delay(err.get("details")))


def decode_response(body: JsonObject) -> list[chat_pb2.StreamEvent]:
    """A whole reply as the event sequence its stream would have given."""
    if isinstance(body.get("error"), dict):
        return [E.error(decode_stream_error(body))]
    decoder = StreamDecoder()
    out = decoder.chunk(body)
    if not decoder.closed:
        out += decoder.finish()
    return out


class StreamDecoder:
    """Turns the `data:` payloads of one Gemini SSE stream into canonical events."""

    def __init__(self) -> None:
        self._started = False
        self.closed = False
        self._open: tuple[str, int] | None = None   # ("text" | "thought", block index)
        self._next = 0
        self._tools = False
        self._usage = chat_pb2.Usage()

    def feed(self, data: bytes) -> list[chat_pb2.StreamEvent]:
        """Events for one SSE payload (one GenerateContentResponse)."""
        if self.closed:
            return []
        chunk = load_chunk(data)
        if isinstance(chunk, chat_pb2.Error):
            self.closed = True
            return [E.error(chunk)]
        if isinstance(chunk.get("error"), dict):
            self.closed = True
            return [E.error(decode_stream_error(chunk))]
        return self.chunk(chunk)

    def chunk(self, body: JsonObject) -> list[chat_pb2.StreamEvent]:
        """Events for one parsed response chunk."""
        out: list[chat_pb2.StreamEvent] = []
        if isinstance(body.get("usageMetadata"), dict):
            self._usage = usage_from_gemini(body["usageMetadata"])
        if not self._started:
            self._started = True
            extra = {k: v for k, v in body.items() if k not in _RESPONSE_KEYS}
            out.append(E.start(str(body.get("responseId") or ""),
                               str(body.get("modelVersion") or ""),
                               chat_pb2.Usage(input_tokens=self._usage.input_tokens,
                                              cache_read_tokens=self._usage.cache_read_tokens),
                               orjson.dumps(extra) if extra else b""))
        candidates = body.get("candidates")
        cand = candidates[0] if isinstance(candidates, list) and candidates \
            and isinstance(candidates[0], dict) else None
        if cand is None:
            feedback = body.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                out += self._finish(chat_pb2.STOP_REASON_REFUSAL)   # the prompt was blocked
            return out
        content = cand.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if isinstance(part, dict):
                out += self._part(part)
        reason = cand.get("finishReason")
        if isinstance(reason, str) and reason:
            stop = chat_pb2.STOP_REASON_TOOL_USE if self._tools else \
                GEMINI_FINISH_TO_STOP.get(reason, chat_pb2.STOP_REASON_END_TURN)
            out += self._finish(stop)
        return out

    def finish(self) -> list[chat_pb2.StreamEvent]:
        """End of the HTTP stream without a finishReason: the stream was cut."""
        if self.closed:
            return []
        self.closed = True
        return [E.error(stream_cut_error())]

    # ---- internals -------------------------------------------------------------------
    def _close(self) -> list[chat_pb2.StreamEvent]:
        if self._open is None:
            return []
        index = self._open[1]
        self._open = None
        return [E.block_stop(index)]

    def _begin(self, kind: str,
               part: chat_pb2.ContentPart) -> tuple[list[chat_pb2.StreamEvent], int]:
        out = self._close()
        index = self._next
        self._next += 1
        out.append(E.block_start(index, part))
        if kind != "tool":
            self._open = (kind, index)
        return out, index

    def _part(self, part: JsonObject) -> list[chat_pb2.StreamEvent]:
        signature = str(part.get("thoughtSignature") or "")
        call = part.get("functionCall")
        if isinstance(call, dict):
            self._tools = True
            call_id = pack_call_id(str(call.get("id") or "") or new_call_id(), signature)
            out, index = self._begin("tool", E.tool_part(call_id, str(call.get("name") or "")))
            out.append(E.arguments(index, orjson.dumps(call.get("args") or {}).decode()))
            out.append(E.block_stop(index))
            return out
        text = part.get("text")
        if not isinstance(text, str):
            return []   # executableCode, inlineData output and later part kinds
        kind = "thought" if part.get("thought") else "text"
        out = []
        if self._open is None or self._open[0] != kind:
            begun, _ = self._begin(kind, E.reasoning_part() if kind == "thought"
                                   else E.text_part())
            out += begun
        assert self._open is not None
        index = self._open[1]
        if text:
            out.append(E.reasoning(index, text) if kind == "thought" else E.text(index, text))
        if signature and kind == "thought":
            out.append(E.signature(index, signature))
            out += self._close()   # a signature ends its thought: the next one is a new block
        return out

    def _finish(self, stop: chat_pb2.StopReason) -> list[chat_pb2.StreamEvent]:
        out = self._close()
        out.append(E.finish(stop, self._usage))
        self.closed = True
        return out
