"""OpenAI Responses streaming: canonical events -> Responses SSE (typed, sequence-numbered
events); the terminal event waits for the app to store the response."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.canonical.aggregate import Turn, TurnBuilder
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import sse
from switchyard.edge.formats.openai_responses.context import ResponsesContext
from switchyard.edge.formats.openai_responses.response import (
    encode_response,
    failure,
    output_id,
    output_item,
    skeleton,
)
from switchyard.edge.formats.openai_responses.tools import (
    TOOL_SEARCH,
    call_item,
    custom_input,
    item_prefix,
)
from switchyard.edge.formats.openai_responses.unwrap import InputStream

# The fields around `delta` in the per-token events (key order as the API sends them).
_TEXT_BEFORE = {"content_index": 0}
_TEXT_AFTER: dict[str, Any] = {"logprobs": []}
_SUMMARY_BEFORE = {"summary_index": 0}


@dataclass
class _Open:
    """One output item being streamed (`kind`: text, reasoning, tool_call, custom or
    tool_search; a custom tool's input is decoded from its arguments as they come)."""
    kind: str
    item_id: str
    output_index: int
    base: dict[str, Any]
    pieces: list[str] = field(default_factory=list)   # joined once, at the end (not `+=`)
    part_open: bool = False
    done: bool = False
    custom: InputStream | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class StreamEncoder:
    """Canonical events → Responses SSE. `encode` never emits the terminal event: the app
    calls `completed()` once the response is stored, or `error()` if that failed."""

    def __init__(self, model: str, response_id: str, created: int,
                 request: chat_pb2.ChatRequest, ctx: ResponsesContext) -> None:
        self.model, self.response_id, self.created = model, response_id, created
        self.request, self.ctx = request, ctx
        self._seq = 0
        self._started = False
        self._finished = False
        self._terminal = False
        self._items: dict[int, _Open] = {}  # canonical block index -> item
        self._count = 0
        self._builder = TurnBuilder()
        self._final: dict[str, Any] | None = None
        self._dropped: list[str] = []   # what the route dropped (start event)
        # Per-token delta events from templates, by (event type, output index).
        self._templates: dict[tuple[str, int], sse.Template | None] = {}

    # -- public ----------------------------------------------------------------------------
    def encode(self, events: Iterable[chat_pb2.StreamEvent]) -> bytes:
        """SSE bytes for a batch of canonical events (an `error` event ends the stream)."""
        out: list[bytes] = []
        for ev in events:
            kind = ev.WhichOneof("event")
            if self._terminal:
                break
            if kind == "error":
                out.append(self.error(ev.error))
                break
            if kind == "start":
                self._dropped = list(ev.start.dropped_params)
            if not self._started:
                out.extend(self._start())
            self._builder.feed(ev)
            if kind == "block_start":
                out.extend(self._block_start(ev.block_start))
            elif kind == "delta":
                out.extend(self._delta(ev.delta))
            elif kind == "block_stop":
                out.extend(self._block_stop(ev.block_stop.index))
            elif kind == "finish" and ev.finish.choice == 0:
                for index in sorted(self._items, key=lambda i: self._items[i].output_index):
                    out.extend(self._block_stop(index))
                self._finished = True
        return b"".join(out)

    def final_response(self) -> dict[str, Any]:
        """The complete Responses object; raises a 502 GatewayError if no finish was seen."""
        if not self._finished:
            raise GatewayError(502, "the upstream stream ended before the response finished")
        if self._final is None:
            self._final = encode_response(self._builder.turn, model=self.model,
                                          response_id=self.response_id, created=self.created,
                                          ctx=self.ctx)
        return self._final

    def completed(self) -> bytes:
        """The terminal `response.completed` (or `response.incomplete`) event."""
        if self._terminal:
            return b""
        if not self._finished:
            return self.error(GatewayError(
                502, "the upstream stream ended before the response finished").to_proto())
        final = self.final_response()
        self._terminal = True
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return self._event(kind, response=final)

    def error(self, err: chat_pb2.Error) -> bytes:
        """`response.failed` (the Responses grammar), then an `error` event, which
        openai-python raises as APIError."""
        if self._terminal:
            return b""
        out = [] if self._started else self._start()
        self._terminal = True
        failed = self._snapshot("failed")
        failed["output"] = [self._item_now(it) for it in
                            sorted(self._items.values(), key=lambda i: i.output_index)]
        failed["error"] = failure(err)
        openai_type = mappings.ERROR_TYPES.get(err.type, ("api_error",))[0]
        detail = {"type": openai_type, "code": failed["error"]["code"],
                  "message": failed["error"]["message"], "param": err.param or None}
        out.append(self._event("response.failed", response=failed))
        out.append(self._event("error", code=detail["code"], message=detail["message"],
                               param=detail["param"], error=detail))
        return b"".join(out)

    def reply_body(self, turn: Turn) -> dict[str, Any]:
        """The Responses object as streamed (`final_response`); `turn` is the same stream."""
        return self.final_response()

    def done(self) -> bytes:
        """The terminal `response.completed` (the API has no `[DONE]` sentinel); once."""
        return self.completed()

    # -- internals -------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> bytes:
        ev = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return sse.event_frame(kind, ev)

    def _token(self, kind: str, item: _Open, delta: str, before: dict[str, Any] | None = None,
               after: dict[str, Any] | None = None) -> bytes:
        """`_event(kind, item_id=, output_index=, **before, delta=delta, **after)`: the same
        bytes, from a template with the sequence number and the delta as its slots."""
        slot = (kind, item.output_index)
        if slot not in self._templates:
            self._templates[slot] = sse.template(lambda: sse.event_frame(kind, {
                "type": kind, "sequence_number": sse.SLOTS[0], "item_id": item.item_id,
                "output_index": item.output_index, **(before or {}), "delta": sse.SLOTS[1],
                **(after or {})}), slots=2)
        tpl = self._templates[slot]
        if tpl is None:   # a placeholder inside a value: whole frames
            return self._event(kind, item_id=item.item_id, output_index=item.output_index,
                               **(before or {}), delta=delta, **(after or {}))
        seq = self._seq
        self._seq += 1
        return tpl.fill2(b"%d" % seq, orjson.dumps(delta))

    def _snapshot(self, status: str) -> dict[str, Any]:
        snap = skeleton(model=self.model, response_id=self.response_id, created=self.created,
                        ctx=self.ctx, dropped=self._dropped)
        snap["status"] = status
        return snap

    def _start(self) -> list[bytes]:
        self._started = True
        snap = self._snapshot("in_progress")
        return [self._event("response.created", response=snap),
                self._event("response.in_progress", response=snap)]

    def _block_start(self, bs: chat_pb2.BlockStart) -> list[bytes]:
        kind = bs.part.WhichOneof("kind")
        if bs.choice != 0 or kind not in ("text", "tool_call", "reasoning") \
                or bs.index in self._items:
            return []
        n = self._count
        self._count += 1
        base: dict[str, Any]
        if kind == "text":
            base = {"id": output_id("msg", self.response_id, n), "type": "message",
                    "status": "in_progress", "role": "assistant", "content": []}
        elif kind == "tool_call":
            origin = self.ctx.tool_map.origin(bs.part.tool_call.name)
            call = chat_pb2.ToolCallPart(id=bs.part.tool_call.id, name=bs.part.tool_call.name)
            base = call_item(call, origin, output_id(item_prefix(origin), self.response_id, n),
                             "in_progress")
            if origin.kind == "custom":
                kind, base["input"] = "custom", ""
            elif origin.kind == TOOL_SEARCH:
                kind = TOOL_SEARCH
            else:
                base["arguments"] = ""
        else:
            base = {"id": output_id("rs", self.response_id, n), "type": "reasoning",
                    "summary": []}
        item = _Open(kind=kind, item_id=base["id"], output_index=n, base=base,
                     custom=InputStream() if kind == "custom" else None)
        self._items[bs.index] = item
        out = [self._event("response.output_item.added", output_index=n, item=dict(base))]
        if kind == "text":
            out.append(self._part_event("response.content_part.added", item, ""))
            item.part_open = True
        initial = bs.part.reasoning.text if kind == "reasoning" else (
            bs.part.text.text if kind == "text" else bs.part.tool_call.arguments_json)
        if initial:
            out.extend(self._append(item, initial))
        return out

    def _part_event(self, kind: str, item: _Open, text: str) -> bytes:
        return self._event(kind, item_id=item.item_id, output_index=item.output_index,
                           content_index=0, part={"type": "output_text", "text": text,
                                                  "annotations": []})

    def _delta(self, d: chat_pb2.BlockDelta) -> list[bytes]:
        item = self._items.get(d.index)
        if item is None or item.done:
            return []
        which = d.WhichOneof("delta")
        if (item.kind, which) in (("text", "text"), ("tool_call", "arguments_json"),
                                  ("custom", "arguments_json"), (TOOL_SEARCH, "arguments_json"),
                                  ("reasoning", "reasoning")):
            return self._append(item, getattr(d, which))
        return []  # signature deltas: folded by the TurnBuilder, sent in output_item.done

    def _append(self, item: _Open, chunk: str) -> list[bytes]:
        if not chunk:
            return []
        item.pieces.append(chunk)
        if item.kind == "text":
            return [self._token("response.output_text.delta", item, chunk, _TEXT_BEFORE,
                                _TEXT_AFTER)]
        if item.kind == "tool_call":
            return [self._token("response.function_call_arguments.delta", item, chunk)]
        if item.custom is not None:
            piece = item.custom.feed(chunk)
            return [self._token("response.custom_tool_call_input.delta", item,
                                piece)] if piece else []
        if item.kind == TOOL_SEARCH:
            return []   # its arguments are an object, sent whole with output_item.done
        out = []
        where = {"item_id": item.item_id, "output_index": item.output_index}
        if not item.part_open:
            item.part_open = True
            out.append(self._event("response.reasoning_summary_part.added", **where,
                                   summary_index=0, part={"type": "summary_text", "text": ""}))
        out.append(self._token("response.reasoning_summary_text.delta", item, chunk,
                               _SUMMARY_BEFORE))
        return out

    def _block_stop(self, index: int) -> list[bytes]:
        item = self._items.get(index)
        if item is None or item.done:
            return []
        item.done = True
        where = {"item_id": item.item_id, "output_index": item.output_index}
        out = []
        text = item.text
        if item.kind == "text":
            out.append(self._event("response.output_text.done", **where, content_index=0,
                                   text=text, logprobs=[]))
            out.append(self._part_event("response.content_part.done", item, text))
        elif item.kind == "tool_call":
            out.append(self._event("response.function_call_arguments.done", **where,
                                   arguments=text or "{}"))
        elif item.custom is not None:
            full = custom_input(text)
            rest = full[len(item.custom.text):] if full.startswith(item.custom.text) else ""
            if rest:   # arguments of another shape than {"input": ...}: sent at the end
                out.append(self._event("response.custom_tool_call_input.delta", **where,
                                       delta=rest))
            out.append(self._event("response.custom_tool_call_input.done", **where,
                                   input=full))
        elif item.part_open:
            part = {"type": "summary_text", "text": text}
            out.append(self._event("response.reasoning_summary_text.done", **where,
                                   summary_index=0, text=text))
            out.append(self._event("response.reasoning_summary_part.done", **where,
                                   summary_index=0, part=part))
        out.append(self._event("response.output_item.done", output_index=item.output_index,
                               item=self._item_now(item)))
        return out

    def _item_now(self, item: _Open) -> dict[str, Any]:
        """The item as it stands: final (from the folded turn) once done, else in progress."""
        choice = self._builder.turn.choice(0)
        parts = [p for p in choice.parts
                 if p.WhichOneof("kind") in ("text", "tool_call", "reasoning")]
        if item.output_index < len(parts):
            final = output_item(parts[item.output_index], self.response_id, item.output_index,
                                self.ctx.tool_map)
            if final is not None:
                if not item.done and "status" in final:
                    final["status"] = "incomplete"
                return final
        return dict(item.base)
