"""Anthropic Messages streaming: canonical events -> Anthropic SSE, one block open at a time."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.canonical.aggregate import Turn, merge_usage
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import sse
from switchyard.edge.formats.anthropic_messages.response import (
    client_stop_reason,
    encode_response,
    message_id,
)


def _delta_frame(index: int, delta: dict[str, Any]) -> bytes:
    return sse.event_frame("content_block_delta", {
        "type": "content_block_delta", "index": index, "delta": delta})


@dataclass
class _Block:
    """An upstream block on its way to the client: held until every earlier block closed."""
    part: chat_pb2.ContentPart
    deltas: list[chat_pb2.BlockDelta] = field(default_factory=list)
    stopped: bool = False
    index: int = -1   # dense client index once content_block_start was sent


class StreamEncoder:
    """Canonical events -> Anthropic SSE: one block open at a time, dense indexes,
    `message_stop` exactly once (from `done()`, after the app's completion hook)."""

    def __init__(self, model: str, response_id: str, created: int,
                 request: chat_pb2.ChatRequest) -> None:
        self._model = model
        self._reply = (response_id, created)
        self._id = message_id(response_id)
        self._usage = chat_pb2.Usage()
        self._started = False
        self._finished = False
        self._stopped = False
        self._active: tuple[int, _Block] | None = None     # upstream index, block
        self._pending: OrderedDict[int, _Block] = OrderedDict()
        self._next_index = 0
        self._saw_tool = False
        # Per-token content_block_delta frames from templates, by (client index, delta type).
        self._templates: dict[tuple[int, str], sse.Template | None] = {}

    # -- framing
    def _message_start(self, out: list[bytes], start: chat_pb2.StreamStart | None) -> None:
        self._started = True
        if start is not None:
            self._usage.MergeFrom(start.usage)
        usage = mappings.usage_to_anthropic(self._usage)
        usage["output_tokens"] = max(usage["output_tokens"], 1)  # as Anthropic sends it
        out.append(sse.event_frame("message_start", {"type": "message_start", "message": {
            "id": self._id, "type": "message", "role": "assistant", "model": self._model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}}))
        out.append(sse.event_frame("ping", {"type": "ping"}))

    def _open(self, blk: _Block, out: list[bytes]) -> None:
        """content_block_start, except for text, which opens on its first character."""
        p = blk.part
        kind = p.WhichOneof("kind")
        if kind == "text":
            if p.text.text:
                self._emit_start(blk, {"type": "text", "text": ""}, out)
                self._emit_delta(blk, {"type": "text_delta", "text": p.text.text}, out)
        elif kind == "tool_call":
            self._saw_tool = True
            tc = p.tool_call
            self._emit_start(blk, {"type": "tool_use", "id": tc.id, "name": tc.name,
                                   "input": {}}, out)
            if tc.arguments_json:
                self._emit_delta(blk, {"type": "input_json_delta",
                                       "partial_json": tc.arguments_json}, out)
        elif kind == "reasoning":
            r = p.reasoning
            if r.redacted:
                self._emit_start(blk, {"type": "redacted_thinking", "data": r.redacted_data},
                                 out)
            else:
                self._emit_start(blk, {"type": "thinking", "thinking": "", "signature": ""},
                                 out)
                if r.text:
                    self._emit_delta(blk, {"type": "thinking_delta", "thinking": r.text}, out)
                if r.signature:
                    self._emit_delta(blk, {"type": "signature_delta",
                                           "signature": r.signature}, out)
        for d in blk.deltas:
            self._send_delta(blk, d, out)
        blk.deltas.clear()

    def _emit_start(self, blk: _Block, content_block: dict[str, Any], out: list[bytes]) -> None:
        blk.index = self._next_index
        self._next_index += 1
        out.append(sse.event_frame("content_block_start", {
            "type": "content_block_start", "index": blk.index, "content_block": content_block}))

    def _emit_delta(self, blk: _Block, delta: dict[str, Any], out: list[bytes]) -> None:
        out.append(_delta_frame(blk.index, delta))

    def _emit_piece(self, blk: _Block, kind: str, key: str, value: str,
                    out: list[bytes]) -> None:
        """`_emit_delta` of `{"type": kind, key: value}`, the same bytes from a template."""
        slot = (blk.index, kind)
        if slot not in self._templates:
            index = blk.index
            self._templates[slot] = sse.template(
                lambda: _delta_frame(index, {"type": kind, key: sse.SLOT}))
        tpl = self._templates[slot]
        if tpl is None:   # a placeholder inside a value: whole frames
            self._emit_delta(blk, {"type": kind, key: value}, out)
        else:
            out.append(tpl.fill(orjson.dumps(value)))

    def _send_delta(self, blk: _Block, d: chat_pb2.BlockDelta, out: list[bytes]) -> None:
        which = d.WhichOneof("delta")
        if which == "text":
            if not d.text:
                return
            if blk.index < 0:
                self._emit_start(blk, {"type": "text", "text": ""}, out)
            self._emit_piece(blk, "text_delta", "text", d.text, out)
        elif blk.index < 0:
            return  # a non-text delta for a block that never opened (e.g. text): nowhere to go
        elif which == "arguments_json":
            if d.arguments_json:
                self._emit_piece(blk, "input_json_delta", "partial_json", d.arguments_json, out)
        elif which == "reasoning":
            self._emit_piece(blk, "thinking_delta", "thinking", d.reasoning, out)
        elif which == "signature":
            self._emit_delta(blk, {"type": "signature_delta", "signature": d.signature}, out)

    def _close(self, blk: _Block, out: list[bytes]) -> None:
        if blk.index >= 0:
            out.append(sse.event_frame("content_block_stop", {
                "type": "content_block_stop", "index": blk.index}))

    def _close_active_and_drain(self, out: list[bytes], *, all_blocks: bool) -> None:
        """Close the open block, then release held blocks in order of arrival."""
        if self._active is not None:
            self._close(self._active[1], out)
            self._active = None
        while self._pending:
            idx, blk = self._pending.popitem(last=False)
            self._open(blk, out)
            if blk.stopped or all_blocks:
                self._close(blk, out)
                continue
            self._active = (idx, blk)
            break

    # -- public
    def encode(self, events: Sequence[chat_pb2.StreamEvent]) -> bytes:
        """SSE bytes for a batch of events."""
        out: list[bytes] = []
        for ev in events:
            if self._stopped:
                break
            kind = ev.WhichOneof("event")
            if kind == "start":
                if not self._started:
                    self._message_start(out, ev.start)
                continue
            if not self._started:
                self._message_start(out, None)
            if kind == "delta":
                d = ev.delta
                if self._active is not None and self._active[0] == d.index:
                    self._send_delta(self._active[1], d, out)
                elif d.index in self._pending:
                    self._pending[d.index].deltas.append(d)
            elif kind == "block_start":
                bs = ev.block_start
                if bs.choice != 0 or self._finished:
                    continue
                blk = _Block(part=bs.part)
                if self._active is None and not self._pending:
                    self._active = (bs.index, blk)
                    self._open(blk, out)
                else:
                    self._pending[bs.index] = blk
            elif kind == "block_stop":
                idx = ev.block_stop.index
                if self._active is not None and self._active[0] == idx:
                    self._close_active_and_drain(out, all_blocks=False)
                elif idx in self._pending:
                    self._pending[idx].stopped = True
            elif kind == "finish":
                if ev.finish.choice == 0 and not self._finished:
                    self._finish(ev.finish, out)
        return b"".join(out)

    def _finish(self, f: chat_pb2.StreamFinish, out: list[bytes]) -> None:
        self._close_active_and_drain(out, all_blocks=True)
        self._finished = True
        if f.HasField("usage"):
            merge_usage(self._usage, f.usage)
        usage = mappings.usage_to_anthropic(self._usage)
        out.append(sse.event_frame("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": client_stop_reason(self._saw_tool, f.stop_reason),
                      "stop_sequence": f.stop_sequence or None},
            "usage": usage}))

    def error(self, err: chat_pb2.Error) -> bytes:
        """`event: error`; the SDKs raise on it. Nothing else is sent afterwards."""
        self._stopped = True
        kind = mappings.ERROR_TYPES.get(err.type, ("api_error", "api_error"))[1]
        return sse.event_frame("error", {"type": "error", "error": {
            "type": kind, "message": err.message or "upstream error"}})

    def reply_body(self, turn: Turn) -> dict[str, Any]:
        """The Message a non-streaming client would have got."""
        response_id, created = self._reply
        return encode_response(turn, model=self._model, response_id=response_id,
                               created=created)

    def done(self) -> bytes:
        """`message_stop`, exactly once; closes a turn that ended without `finish`."""
        if self._stopped:
            return b""
        out: list[bytes] = []
        if not self._started:
            self._message_start(out, None)
        if not self._finished:
            self._finish(chat_pb2.StreamFinish(), out)
        self._stopped = True
        out.append(sse.event_frame("message_stop", {"type": "message_stop"}))
        return b"".join(out)
