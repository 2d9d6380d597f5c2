"""OpenAI Responses replies (the Response object, or the typed events of its SSE stream) ->
canonical events.

Each output item is one block, numbered by its `output_index`: a message is a text block
(its refusal parts too, ending the turn as a refusal), a function call a tool block, a
custom tool call a tool block whose arguments are `{"input": <text>}`, a reasoning item a
reasoning block (summary text; its `encrypted_content` becomes the signature, marked as
OpenAI's). Items of tools OpenAI runs itself (web search, file search, ...) have no
canonical counterpart and are skipped; the text the model writes from them is kept.
"""
from __future__ import annotations

from typing import Any

import orjson

from switchyard.common.canonical.mappings import (
    RESPONSES_ERROR_STATUS,
    RESPONSES_INCOMPLETE_TO_STOP,
    error_type_for_status,
    usage_from_responses,
)
from switchyard.common.json_object import JsonObject
from switchyard.common.proto import chat_pb2

from . import events as E
from .common import load_chunk, stream_cut_error
from .openai_responses_signatures import pack

_TOOL_ITEMS = frozenset({"function_call", "custom_tool_call"})
_START_EXTRA = ("service_tier",)


def _error_from(err: Any, default_status: int = 500) -> chat_pb2.Error:
    """A Responses error object (`{code, message[, type, param]}`) -> Error."""
    if not isinstance(err, dict):
        err = {"message": str(err or "")}
    code = str(err.get("code") or "")
    status = err.get("status")
    if not isinstance(status, int) or not 400 <= status <= 599:
        status = RESPONSES_ERROR_STATUS.get(code, default_status)
    return chat_pb2.Error(http_status=status, type=error_type_for_status(status),
                          message=str(err.get("message") or "upstream response failed"),
                          code=code, param=str(err.get("param") or ""))


def decode_stream_error(payload: JsonObject) -> chat_pb2.Error:
    """An `error` event (`{"type": "error", code, message, param}`, or an `{"error": {...}}`
    object) -> Error."""
    inner = payload.get("error")
    return _error_from(inner if isinstance(inner, dict) else payload)


def decode_response(body: JsonObject) -> list[chat_pb2.StreamEvent]:
    """A whole Response object as the events its stream would have given."""
    if body.get("status") == "failed" or (isinstance(body.get("error"), dict)
                                          and "output" not in body):
        return [E.error(_error_from(body.get("error")))]
    dec = StreamDecoder()
    out = dec.started(body)
    for index, item in enumerate(body.get("output") or ()):
        if isinstance(item, dict):
            out += dec.item_added(index, item, whole=True)
            out += dec.item_done(index, item)
    return out + dec.finished(body)


class _Block:
    __slots__ = ("kind", "streamed", "summaries")

    def __init__(self, kind: str) -> None:
        self.kind = kind          # text | tool | custom | reasoning
        self.streamed = False     # deltas came (else the done item's content is used)
        self.summaries = 0        # reasoning summary parts seen


class StreamDecoder:
    """Turns the `data:` payloads of one Responses SSE stream into canonical events."""

    def __init__(self) -> None:
        self._started = False
        self._closed = False
        self._blocks: dict[int, _Block] = {}
        self._done: set[int] = set()
        self._tools = False
        self._refusal = False

    def feed(self, data: bytes) -> list[chat_pb2.StreamEvent]:
        """Events for one SSE payload (a typed event, `type` names it)."""
        if self._closed:
            return []
        ev = load_chunk(data)
        if isinstance(ev, chat_pb2.Error):
            self._closed = True
            return [E.error(ev)]
        return self.event(ev)

    def event(self, ev: JsonObject) -> list[chat_pb2.StreamEvent]:
        kind = str(ev.get("type") or "")
        index = ev.get("output_index")
        if kind in ("response.created", "response.in_progress", "response.queued"):
            response = ev.get("response")
            return self.started(response if isinstance(response, dict) else {})
        out = [] if self._started else self.started({})
        if kind in ("response.completed", "response.incomplete"):
            response = ev.get("response")
            return out + self.finished(response if isinstance(response, dict) else {})
        if kind == "response.failed":
            response = ev.get("response")
            self._closed = True
            err = response.get("error") if isinstance(response, dict) else None
            return out + [E.error(_error_from(err))]
        if not isinstance(index, int):
            return out
        if kind == "response.output_item.added" and isinstance(ev.get("item"), dict):
            return out + self.item_added(index, ev["item"])
        if kind == "response.output_item.done" and isinstance(ev.get("item"), dict):
            return out + self.item_done(index, ev["item"])
        block = self._blocks.get(index)
        if block is None or index in self._done:
            return out
        delta = ev.get("delta")
        if kind in ("response.output_text.delta", "response.refusal.delta"):
            if kind == "response.refusal.delta":
                self._refusal = True
            out += self._text(index, block, delta)
        elif kind == "response.function_call_arguments.delta" and block.kind == "tool":
            out += self._arguments(index, block, delta)
        elif kind == "response.custom_tool_call_input.delta" and block.kind == "custom":
            if isinstance(delta, str) and delta:
                out += self._arguments(index, block, orjson.dumps(delta).decode()[1:-1])
        elif kind == "response.reasoning_summary_part.added" and block.kind == "reasoning":
            block.summaries += 1
            if block.summaries > 1:   # summary parts read as paragraphs of one text
                out.append(E.reasoning(index, "\n\n"))
        elif kind in ("response.reasoning_summary_text.delta",
                      "response.reasoning_text.delta") and block.kind == "reasoning":
            if isinstance(delta, str) and delta:
                block.streamed = True
                out.append(E.reasoning(index, delta))
        return out   # *.done events repeat what the deltas said; the rest is ignored

    def finish(self) -> list[chat_pb2.StreamEvent]:
        """End of the HTTP stream before `response.completed`: the stream was cut."""
        if self._closed:
            return []
        self._closed = True
        return [E.error(stream_cut_error())]

    # ---- items -----------------------------------------------------------------------
    def started(self, response: JsonObject) -> list[chat_pb2.StreamEvent]:
        if self._started:
            return []
        self._started = True
        extra = {k: response[k] for k in _START_EXTRA if response.get(k) is not None}
        return [E.start(str(response.get("id") or ""), str(response.get("model") or ""),
                        extra_json=orjson.dumps(extra) if extra else b"")]

    def item_added(self, index: int, item: JsonObject,
                   whole: bool = False) -> list[chat_pb2.StreamEvent]:
        if index in self._blocks:
            return []
        kind = item.get("type")
        part: chat_pb2.ContentPart
        if kind == "message":
            block, part = _Block("text"), E.text_part()
        elif kind in _TOOL_ITEMS:
            self._tools = True
            block = _Block("tool" if kind == "function_call" else "custom")
            part = E.tool_part(str(item.get("call_id") or ""), str(item.get("name") or ""))
        elif kind == "reasoning":
            block, part = _Block("reasoning"), E.reasoning_part()
        else:
            return []   # hosted tools' items (web_search_call, ...): no counterpart
        self._blocks[index] = block
        out = [E.block_start(index, part)]
        if block.kind == "custom":
            out.append(E.arguments(index, '{"input":"'))
        return out

    def item_done(self, index: int, item: JsonObject) -> list[chat_pb2.StreamEvent]:
        block = self._blocks.get(index)
        if block is None or index in self._done:
            return []
        self._done.add(index)
        out: list[chat_pb2.StreamEvent] = []
        if block.kind == "text" and not block.streamed:
            for c in item.get("content") or ():
                if isinstance(c, dict):
                    if c.get("type") == "refusal":
                        self._refusal = True
                    out += self._text(index, block, c.get("text") or c.get("refusal"))
        elif block.kind == "tool" and not block.streamed:
            out += self._arguments(index, block, item.get("arguments") or "{}")
        elif block.kind == "custom":
            if not block.streamed and isinstance(item.get("input"), str):
                out += self._arguments(index, block,
                                       orjson.dumps(item["input"]).decode()[1:-1])
            out.append(E.arguments(index, '"}'))
        elif block.kind == "reasoning":
            if not block.streamed:
                texts = [str(s.get("text") or "") for s in item.get("summary") or ()
                         if isinstance(s, dict)]
                texts = texts or [str(c.get("text") or "") for c in item.get("content") or ()
                                  if isinstance(c, dict)]
                text = "\n\n".join(t for t in texts if t)
                if text:
                    out.append(E.reasoning(index, text))
            encrypted = item.get("encrypted_content")
            if isinstance(encrypted, str) and encrypted:
                out.append(E.signature(index, pack(encrypted)))
        out.append(E.block_stop(index))
        return out

    def finished(self, response: JsonObject) -> list[chat_pb2.StreamEvent]:
        out: list[chat_pb2.StreamEvent] = []
        for index in self._blocks:
            if index not in self._done:
                self._done.add(index)
                if self._blocks[index].kind == "custom":
                    out.append(E.arguments(index, '"}'))
                out.append(E.block_stop(index))
        self._closed = True
        if response.get("status") == "failed":
            return out + [E.error(_error_from(response.get("error")))]
        out.append(E.finish(self._stop(response), usage_from_responses(response.get("usage"))))
        return out

    def _stop(self, response: JsonObject) -> chat_pb2.StopReason:
        if response.get("status") == "incomplete":
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, dict) else None
            return RESPONSES_INCOMPLETE_TO_STOP.get(str(reason or ""),
                                                    chat_pb2.STOP_REASON_MAX_TOKENS)
        if self._refusal:
            return chat_pb2.STOP_REASON_REFUSAL
        return chat_pb2.STOP_REASON_TOOL_USE if self._tools else chat_pb2.STOP_REASON_END_TURN

    @staticmethod
    def _text(index: int, block: _Block, value: Any) -> list[chat_pb2.StreamEvent]:
        if not isinstance(value, str) or not value:
            return []
        block.streamed = True
        return [E.text(index, value)]

    @staticmethod
    def _arguments(index: int, block: _Block, value: Any) -> list[chat_pb2.StreamEvent]:
        if not isinstance(value, str) or not value:
            return []
        block.streamed = True
        return [E.arguments(index, value)]
