"""OpenAI Chat Completions streaming: canonical events -> `chat.completion.chunk` SSE frames."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.canonical.aggregate import Turn, merge_usage
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import sse
from switchyard.edge.formats.openai_chat.response import encode_response, start_extras


class StreamEncoder:
    """Canonical events -> `chat.completion.chunk` SSE frames."""

    def __init__(self, model: str, response_id: str, created: int,
                 request: chat_pb2.ChatRequest) -> None:
        self._reply = (model, response_id, created)
        self._base: dict[str, Any] = {"id": response_id, "object": "chat.completion.chunk",
                                      "created": created, "model": model}
        self._include_usage = request.include_usage
        self._usage = chat_pb2.Usage()
        self._blocks: dict[int, tuple[int, int]] = {}   # block index -> (choice, tool index)
        self._tool_count: dict[int, int] = {}           # choice -> tool calls seen
        self._roled: set[int] = set()                   # choices whose role chunk was sent
        self._usage_sent = False
        # Per-token chunks from templates, by (choice, delta key, tool index); rebuilt
        # when `start` changes the chunks' common fields.
        self._templates: dict[tuple[int, str, int], sse.Template | None] = {}

    def _chunk(self, choice: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        obj = dict(self._base)
        obj["choices"] = [{"index": choice, "delta": delta, "logprobs": None,
                           "finish_reason": finish}]
        if self._include_usage:
            obj["usage"] = None
        return sse.data_frame(obj)

    def _piece(self, choice: int, key: str, value: str, tool_index: int = -1) -> bytes:
        """The chunk whose delta is `{key: value}` (a tool call's arguments when
        `tool_index` >= 0): the same bytes as `_chunk`, from a template."""
        slot = (choice, key, tool_index)
        if slot not in self._templates:
            self._templates[slot] = sse.template(
                lambda: self._chunk(choice, self._delta_of(key, sse.SLOT, tool_index)))
        tpl = self._templates[slot]
        if tpl is None:   # a placeholder inside an upstream value: no template
            return self._chunk(choice, self._delta_of(key, value, tool_index))
        return tpl.fill(orjson.dumps(value))

    @staticmethod
    def _delta_of(key: str, value: str, tool_index: int) -> dict[str, Any]:
        if tool_index < 0:
            return {key: value}
        return {"tool_calls": [{"index": tool_index, "function": {"arguments": value}}]}

    def _role(self, choice: int, out: list[bytes]) -> None:
        if choice not in self._roled:
            self._roled.add(choice)
            out.append(self._chunk(choice, {"role": "assistant", "content": ""}))

    def encode(self, events: Sequence[chat_pb2.StreamEvent]) -> bytes:
        """SSE bytes for a batch of events."""
        out: list[bytes] = []
        for ev in events:
            kind = ev.WhichOneof("event")
            if kind == "delta":
                self._delta(ev.delta, out)
            elif kind == "block_start":
                self._block_start(ev.block_start, out)
            elif kind == "start":
                self._base.update(start_extras(ev.start))
                self._templates.clear()
                self._usage.MergeFrom(ev.start.usage)
                self._role(0, out)
            elif kind == "finish":
                f = ev.finish
                self._role(f.choice, out)
                if f.HasField("usage"):
                    merge_usage(self._usage, f.usage)
                reason = ("tool_calls" if self._tool_count.get(f.choice)
                          else mappings.STOP_TO_OPENAI_FINISH.get(f.stop_reason, "stop"))
                out.append(self._chunk(f.choice, {}, reason))
        return b"".join(out)

    def _block_start(self, bs: chat_pb2.BlockStart, out: list[bytes]) -> None:
        self._role(bs.choice, out)
        part = bs.part
        kind = part.WhichOneof("kind")
        tool_index = -1
        if kind == "tool_call":
            tool_index = self._tool_count.get(bs.choice, 0)
            self._tool_count[bs.choice] = tool_index + 1
            tc = part.tool_call
            out.append(self._chunk(bs.choice, {"tool_calls": [{
                "index": tool_index, "id": tc.id, "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments_json}}]}))
        elif kind == "text" and part.text.text:
            out.append(self._chunk(bs.choice, {"content": part.text.text}))
        elif kind == "reasoning" and part.reasoning.text:
            out.append(self._chunk(bs.choice, {"reasoning_content": part.reasoning.text}))
        self._blocks[bs.index] = (bs.choice, tool_index)

    def _delta(self, d: chat_pb2.BlockDelta, out: list[bytes]) -> None:
        choice, tool_index = self._blocks.get(d.index, (0, -1))
        which = d.WhichOneof("delta")
        if which == "text":
            out.append(self._piece(choice, "content", d.text))
        elif which == "reasoning":
            out.append(self._piece(choice, "reasoning_content", d.reasoning))
        elif which == "arguments_json" and tool_index >= 0:
            out.append(self._piece(choice, "arguments", d.arguments_json, tool_index))
        # signature deltas have no place in Chat Completions

    def error(self, err: chat_pb2.Error) -> bytes:
        """A mid-stream error chunk; openai-python raises APIError on it. No [DONE] follows."""
        kind = mappings.ERROR_TYPES.get(err.type, ("api_error", "api_error"))[0]
        return sse.data_frame({"error": {"message": err.message or "upstream error",
                                         "type": kind, "param": err.param or None,
                                         "code": err.code or None}})

    def reply_body(self, turn: Turn) -> dict[str, Any]:
        """The `chat.completion` a non-streaming client would have got (what state stores)."""
        model, response_id, created = self._reply
        return encode_response(turn, model=model, response_id=response_id, created=created)

    def done(self) -> bytes:
        """The usage chunk (when asked for, after every finish) then `data: [DONE]`."""
        if self._include_usage and not self._usage_sent:
            self._usage_sent = True
            obj = dict(self._base)
            obj["choices"] = []
            obj["usage"] = mappings.usage_to_openai(self._usage)
            return sse.data_frame(obj) + sse.DONE
        return sse.DONE
