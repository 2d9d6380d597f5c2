"""Gemini streamGenerateContent: canonical events -> GenerateContentResponse chunks, as SSE
`data:` frames (`alt=sse`) or as the elements of one JSON array streamed (no `alt`)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.canonical.aggregate import Turn, merge_usage
from switchyard.common.json_object import parse_json_object
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import sse
from switchyard.edge.formats.gemini.response import (
    candidate,
    encode_response,
    error_json,
    finish_reason,
    function_call,
    signature_of,
    thought,
)
from switchyard.edge.formats.gemini.signatures import to_client

_TEXT_ONLY = {"text"}


class _Call:
    """A tool call on its way: Gemini sends a functionCall whole, so arguments are held."""
    __slots__ = ("call", "args", "signature")

    def __init__(self, part: chat_pb2.ContentPart) -> None:
        self.call = part.tool_call
        self.args = [part.tool_call.arguments_json]
        self.signature = signature_of(part)

    def part(self) -> dict[str, Any]:
        return function_call(self.call, parse_json_object("".join(self.args)), self.signature)


class StreamEncoder:
    """One chunk per event batch (adjacent text merged), the finishReason and usage on the
    last; Gemini has no start or end event, so `done()` only closes the JSON array."""

    def __init__(self, model: str, response_id: str, *, sse_frames: bool) -> None:
        self.media_type = "text/event-stream" if sse_frames else "application/json"
        self._reply = (model, response_id)
        self._sse = sse_frames
        self._base = {"modelVersion": model, "responseId": response_id}
        self._usage = chat_pb2.Usage()
        self._calls: dict[int, _Call] = {}
        self._opened = False      # JSON array: "[" sent
        self._finished = False
        self._stopped = False
        self._text: sse.Template | None = None   # the template of a one-text-part chunk
        self._text_made = False

    def _frame(self, obj: dict[str, Any]) -> bytes:
        return self._framed(orjson.dumps(obj))

    def _framed(self, json: bytes) -> bytes:
        if self._sse:
            return b"data: " + json + b"\n\n"
        head = b",\r\n" if self._opened else b"["
        self._opened = True
        return head + json

    def _object(self, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        obj: dict[str, Any] = {"candidates": [candidate(parts, finish)]}
        if finish is not None:
            obj["usageMetadata"] = mappings.usage_to_gemini(self._usage)
        obj.update(self._base)
        return obj

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None) -> bytes:
        if finish is None and len(parts) == 1 and parts[0].keys() == _TEXT_ONLY:
            # The usual token chunk: one plain text part, from a template (same bytes).
            if not self._text_made:
                self._text_made = True
                self._text = sse.template(
                    lambda: orjson.dumps(self._object([{"text": sse.SLOT}], None)))
            if self._text is not None:
                return self._framed(self._text.fill(orjson.dumps(parts[0]["text"])))
        return self._frame(self._object(parts, finish))

    def encode(self, events: Sequence[chat_pb2.StreamEvent]) -> bytes:
        """The batch's parts as one chunk (none when it carried no content)."""
        if self._stopped or self._finished:
            return b""
        parts: list[dict[str, Any]] = []
        finish: str | None = None
        for ev in events:
            kind = ev.WhichOneof("event")
            if kind == "delta":
                self._delta(ev.delta, parts)
            elif kind == "block_start":
                self._block_start(ev.block_start, parts)
            elif kind == "block_stop":
                call = self._calls.pop(ev.block_stop.index, None)
                if call is not None:
                    parts.append(call.part())
            elif kind == "start":
                self._usage.MergeFrom(ev.start.usage)
            elif kind == "finish" and ev.finish.choice == 0:
                finish = self._finish(ev.finish, parts)
                break
        if not parts and finish is None:
            return b""
        return self._chunk(parts or [{"text": ""}], finish)

    def _finish(self, f: chat_pb2.StreamFinish, parts: list[dict[str, Any]]) -> str:
        self._finished = True
        parts.extend(c.part() for c in self._calls.values())
        self._calls.clear()
        if f.HasField("usage"):
            merge_usage(self._usage, f.usage)
        return finish_reason(f.stop_reason)

    def _block_start(self, bs: chat_pb2.BlockStart, parts: list[dict[str, Any]]) -> None:
        if bs.choice != 0:
            return
        p = bs.part
        kind = p.WhichOneof("kind")
        if kind == "tool_call":
            self._calls[bs.index] = _Call(p)
        elif kind == "text":
            sig = signature_of(p)
            if p.text.text or sig:
                _add_text(parts, {"text": p.text.text, **({"thoughtSignature": to_client(sig)}
                                                          if sig else {})})
        elif kind == "reasoning" and not p.reasoning.redacted and (
                p.reasoning.text or p.reasoning.signature):
            parts.append(thought(p.reasoning.text, p.reasoning.signature))

    def _delta(self, d: chat_pb2.BlockDelta, parts: list[dict[str, Any]]) -> None:
        which = d.WhichOneof("delta")
        if which == "text":
            if d.text:
                _add_text(parts, {"text": d.text})
        elif which == "reasoning":
            if d.reasoning:
                _add_text(parts, {"text": d.reasoning, "thought": True})
        elif which == "signature":
            parts.append(thought("", d.signature))
        elif which == "arguments_json":
            call = self._calls.get(d.index)
            if call is not None:
                call.args.append(d.arguments_json)

    def error(self, err: chat_pb2.Error) -> bytes:
        """An `{"error": ...}` element (the SDK raises APIError on it); the array closes."""
        self._stopped = True
        status = mappings.GEMINI_STATUS.get(err.http_status, err.http_status) or 500
        body = error_json(status, err.message or "upstream error")
        return self._frame(body) + (b"" if self._sse else b"]")

    def reply_body(self, turn: Turn) -> dict[str, Any]:
        model, response_id = self._reply
        return encode_response(turn, model=model, response_id=response_id)

    def done(self) -> bytes:
        """A finish chunk when the turn ended without one; `]` for the JSON array."""
        if self._stopped:
            return b""
        self._stopped = True
        out = b"" if self._finished else self._chunk([{"text": ""}], "STOP")
        if self._sse:
            return out
        return out + (b"]" if self._opened else b"[]")


def _add_text(parts: list[dict[str, Any]], part: dict[str, Any]) -> None:
    """Append a text part, merged into the previous one when both are plain (or thought)."""
    if parts and "thoughtSignature" not in part:
        last = parts[-1]
        if ("text" in last and "thoughtSignature" not in last
                and last.get("thought", False) == part.get("thought", False)):
            last["text"] += part["text"]
            return
    parts.append(part)
