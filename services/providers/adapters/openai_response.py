"""OpenAI Chat Completions responses (whole or streamed chunks) -> canonical stream events."""
from __future__ import annotations

import orjson

from switchyard.common.canonical.mappings import (
    ANTHROPIC_ERROR_STATUS,
    OPENAI_FINISH_TO_STOP,
    error_type_for_status,
    usage_from_openai,
)
from switchyard.common.json_object import JsonObject
from switchyard.common.proto import chat_pb2

from . import events as E
from .common import load_chunk, stream_cut_error

_START_EXTRA = ("system_fingerprint", "service_tier")
_END_TURN = chat_pb2.STOP_REASON_END_TURN
_TOOL_USE = chat_pb2.STOP_REASON_TOOL_USE


def decode_stream_error(payload: JsonObject) -> chat_pb2.Error:
    """An `{"error": {...}}` object sent inside a 200 stream (or body) -> Error."""
    err = payload.get("error")
    if not isinstance(err, dict):
        err = {"message": err if isinstance(err, str) else payload.get("message") or ""}
    etype = str(err.get("type") or "")
    code = err.get("code")
    status = payload.get("status") or err.get("status")
    if not isinstance(status, int) or status < 400:
        rate_limited = "rate_limit" in f"{etype} {code}"
        status = 429 if rate_limited else ANTHROPIC_ERROR_STATUS.get(etype, 500)
    return chat_pb2.Error(http_status=status, type=error_type_for_status(status),
                          message=str(err.get("message") or "upstream stream error"),
                          code="" if code is None else str(code),
                          param=str(err.get("param") or ""))


def decode_response(body: JsonObject) -> list[chat_pb2.StreamEvent]:
    """A whole non-streaming reply as the event sequence its stream would have given."""
    if "error" in body and not body.get("choices"):
        return [E.error(decode_stream_error(body))]
    chunk = {k: v for k, v in body.items() if k != "choices"}
    chunk["choices"] = [{"index": c.get("index", i), "delta": c.get("message") or {},
                         "finish_reason": c.get("finish_reason")}
                        for i, c in enumerate(body.get("choices") or [])]
    dec = StreamDecoder()
    return dec.chunk(chunk) + dec.done()


class _Choice:
    """Open blocks of one choice: text/reasoning (one at a time) and tool calls by index."""
    __slots__ = ("index", "open", "text", "reasoning", "tools", "pending", "had_tool", "refusal",
                 "stop")

    def __init__(self, index: int) -> None:
        self.index = index
        self.open: list[int] = []             # block indices, in opening order
        self.text = -1
        self.reasoning = -1
        self.tools: dict[int, int] = {}       # tool_calls[].index -> block index
        self.pending: dict[int, list[str]] = {}  # tool index -> [id, name, args] before its name
        self.had_tool = False
        self.refusal = False
        self.stop: chat_pb2.StopReason | None = None  # finish_reason seen, finish not emitted


class StreamDecoder:
    """Turns the data payloads of one OpenAI SSE stream into canonical events."""

    def __init__(self) -> None:
        self._started = False
        self._closed = False                  # finish(es) or an error emitted
        self._next = 0
        self._choices: dict[int, _Choice] = {}
        self._usage: chat_pb2.Usage | None = None

    def feed(self, data: bytes) -> list[chat_pb2.StreamEvent]:
        """Events for one SSE `data:` payload (a chunk JSON or `[DONE]`)."""
        if self._closed:
            return []
        if data.strip() == b"[DONE]":
            return self.done()
        chunk = load_chunk(data)
        if isinstance(chunk, chat_pb2.Error):
            self._closed = True
            return [E.error(chunk)]
        return self.chunk(chunk)

    def chunk(self, chunk: JsonObject) -> list[chat_pb2.StreamEvent]:
        """Events for one parsed chunk."""
        if self._closed:
            return []
        out: list[chat_pb2.StreamEvent] = []
        choices = chunk.get("choices") or []
        if "error" in chunk and not choices:
            self._closed = True
            return [E.error(decode_stream_error(chunk))]
        if not self._started:
            self._started = True
            extra = {k: chunk[k] for k in _START_EXTRA if chunk.get(k) is not None}
            out.append(E.start(str(chunk.get("id") or ""), str(chunk.get("model") or ""),
                               extra_json=orjson.dumps(extra) if extra else b""))
        for pos, c in enumerate(choices):
            self._choice(c, pos, out)
        usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict):
            self._usage = usage_from_openai(usage)
            if self._choices and all(ch.stop is not None for ch in self._choices.values()):
                self._emit_finishes(out)
        return out

    def done(self) -> list[chat_pb2.StreamEvent]:
        """`[DONE]`: the upstream completed; finish every choice still open."""
        if self._closed:
            return []
        if not self._started:
            self._closed = True
            return [E.error(stream_cut_error())]
        out: list[chat_pb2.StreamEvent] = []
        if not self._choices:
            self._choices[0] = _Choice(0)
        for ch in self._choices.values():
            if ch.stop is None:
                self._close_choice(ch, out)
                ch.stop = _TOOL_USE if ch.had_tool else _END_TURN
        self._emit_finishes(out)
        return out

    def finish(self) -> list[chat_pb2.StreamEvent]:
        """End of the HTTP stream: pending finishes, or an error when it was cut short."""
        if self._closed:
            return []
        if self._started and self._choices and all(
                ch.stop is not None for ch in self._choices.values()):
            out: list[chat_pb2.StreamEvent] = []
            self._emit_finishes(out)
            return out
        self._closed = True
        return [E.error(stream_cut_error())]

    # ---- internals -------------------------------------------------------------------
    def _emit_finishes(self, out: list[chat_pb2.StreamEvent]) -> None:
        for idx in sorted(self._choices):
            ch = self._choices[idx]
            out.append(E.finish(ch.stop if ch.stop is not None else _END_TURN,
                                self._usage, choice=idx))
        self._closed = True

    def _open(self, ch: _Choice, part: chat_pb2.ContentPart, choice: int,
              out: list[chat_pb2.StreamEvent]) -> int:
        idx = self._next
        self._next += 1
        ch.open.append(idx)
        out.append(E.block_start(idx, part, choice))
        return idx

    def _close(self, ch: _Choice, idx: int, out: list[chat_pb2.StreamEvent]) -> None:
        if idx in ch.open:
            ch.open.remove(idx)
            out.append(E.block_stop(idx))

    def _close_prose(self, ch: _Choice, out: list[chat_pb2.StreamEvent]) -> None:
        """Close the text and reasoning blocks (before another kind of block opens)."""
        for attr in ("text", "reasoning"):
            idx = getattr(ch, attr)
            if idx >= 0:
                self._close(ch, idx, out)
                setattr(ch, attr, -1)

    def _close_choice(self, ch: _Choice, out: list[chat_pb2.StreamEvent]) -> None:
        for ti in list(ch.pending):
            self._open_tool(ch, ti, ch.index, out)
        for idx in list(ch.open):
            self._close(ch, idx, out)
        ch.text = ch.reasoning = -1
        ch.tools.clear()

    def _choice(self, c: JsonObject, pos: int, out: list[chat_pb2.StreamEvent]) -> None:
        ci = c.get("index", pos)
        ch = self._choices.get(ci)
        if ch is None:
            ch = self._choices[ci] = _Choice(ci)
        delta = c.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            if ch.reasoning < 0:
                self._close_prose(ch, out)
                ch.reasoning = self._open(ch, E.reasoning_part(), ci, out)
            out.append(E.reasoning(ch.reasoning, reasoning))
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, list):  # a few servers send content parts
                text = "".join(p.get("text") or "" for p in text
                               if isinstance(p, dict) and p.get("type") == "text")
            if isinstance(text, str) and text:
                if key == "refusal":
                    ch.refusal = True
                if ch.text < 0:
                    self._close_prose(ch, out)
                    ch.text = self._open(ch, E.text_part(), ci, out)
                out.append(E.text(ch.text, text))
        calls = delta.get("tool_calls")
        if not calls and isinstance(delta.get("function_call"), dict):
            calls = [{"index": 0, "function": delta["function_call"]}]  # legacy functions API
        for tpos, tc in enumerate(calls or ()):
            self._tool_fragment(ch, ci, tc, tpos, out)
        fr = c.get("finish_reason")
        if fr and ch.stop is None:
            self._close_choice(ch, out)
            stop = OPENAI_FINISH_TO_STOP.get(fr, _END_TURN)
            if ch.refusal:
                stop = chat_pb2.STOP_REASON_REFUSAL
            elif ch.had_tool and stop == _END_TURN:
                stop = _TOOL_USE  # some servers say "stop" after tool calls
            ch.stop = stop

    def _tool_fragment(self, ch: _Choice, ci: int, tc: JsonObject, tpos: int,
                       out: list[chat_pb2.StreamEvent]) -> None:
        ti = tc.get("index", tpos)
        fn = tc.get("function") or {}
        args = fn.get("arguments") or ""
        if not isinstance(args, str):
            args = orjson.dumps(args).decode()  # a few servers send an object
        idx = ch.tools.get(ti)
        if idx is not None:
            if args:
                out.append(E.arguments(idx, args))
            return
        pend = ch.pending.setdefault(ti, ["", "", ""])
        pend[0] = pend[0] or tc.get("id") or ""
        pend[1] = pend[1] or fn.get("name") or ""
        pend[2] += args
        if pend[1]:
            self._open_tool(ch, ti, ci, out)

    def _open_tool(self, ch: _Choice, ti: int, ci: int, out: list[chat_pb2.StreamEvent]) -> None:
        call_id, name, args = ch.pending.pop(ti)
        self._close_prose(ch, out)
        idx = self._open(ch, E.tool_part(call_id or f"call_{ci}_{ti}", name), ci, out)
        ch.tools[ti] = idx
        ch.had_tool = True
        if args:
            out.append(E.arguments(idx, args))
