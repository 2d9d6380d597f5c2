"""Client codec for Anthropic Messages (POST /v1/messages): request decoding with the real
API's validation, response and SSE encoding (one block open at a time), error bodies."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import orjson

from services.common.canonical import mappings
from services.common.canonical.aggregate import Turn, merge_usage
from services.common.errors import GatewayError, invalid_request
from services.common.proto import chat_pb2
from services.edge.formats import sse
from services.edge.formats.fields import dumps_extra, is_int, is_num, unknown_fields

_NAMED = frozenset({"model", "messages", "max_tokens", "system", "metadata", "stop_sequences",
                    "stream", "temperature", "top_k", "top_p", "tools", "tool_choice",
                    "thinking"})
_ROLES = {"user": chat_pb2.ROLE_USER, "assistant": chat_pb2.ROLE_ASSISTANT}
_USER_BLOCKS = ("text", "image", "document", "tool_result")
_ASSISTANT_BLOCKS = ("text", "tool_use", "thinking", "redacted_thinking")
_TOOL_RESULT_BLOCKS = ("text", "image", "document")
# Keys each block decoder names itself (the rest goes to extra_json).
_K_MESSAGE = frozenset(("role", "content"))
_K_TEXT = frozenset(("type", "text"))
_K_TOOL_USE = frozenset(("type", "id", "name", "input"))
_K_THINKING = frozenset(("type", "thinking", "signature"))
_K_REDACTED = frozenset(("type", "data"))
_K_IMAGE = frozenset(("type", "source"))
_K_DOCUMENT = frozenset(("type", "source", "title"))
_K_TOOL_RESULT = frozenset(("type", "tool_use_id", "is_error", "content"))
_K_METADATA = frozenset(("user_id",))
_K_THINKING_CFG = frozenset(("type", "budget_tokens"))
_K_NATIVE_TOOL = frozenset(("type", "name"))
_K_TOOL = frozenset(("name", "description", "input_schema"))
_TOOL_CHOICE_MODES = {"auto": chat_pb2.ToolChoice.MODE_AUTO,
                      "none": chat_pb2.ToolChoice.MODE_NONE,
                      "any": chat_pb2.ToolChoice.MODE_REQUIRED,
                      "tool": chat_pb2.ToolChoice.MODE_NAMED}


# ---- validation helpers ------------------------------------------------------------------
def _missing(param: str) -> GatewayError:
    return invalid_request(f"{param}: Field required", param)


def _bad(param: str, what: str) -> GatewayError:
    return invalid_request(f"{param}: {what}", param)


def _str_field(obj: dict, key: str, param: str, *, required: bool = True) -> str:
    v = obj.get(key)
    if v is None:
        if required:
            raise _missing(f"{param}.{key}")
        return ""
    if not isinstance(v, str):
        raise _bad(f"{param}.{key}", "Input should be a valid string")
    return v


# ---- request -----------------------------------------------------------------------------
def decode_request(body: dict) -> chat_pb2.ChatRequest:
    """Validate a Messages request and decode it into the canonical ChatRequest."""
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_ANTHROPIC)
    extra = unknown_fields(body, _NAMED)

    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise _bad("model", "Input should be a valid string")
    req.model = model

    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _missing("max_tokens")
    if not is_int(max_tokens):
        raise _bad("max_tokens", "Input should be a valid integer")
    if max_tokens < 1:
        raise _bad("max_tokens", "Input should be greater than or equal to 1")
    req.max_tokens = max_tokens

    _decode_system(body.get("system"), req)
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _bad("messages", "Input should be a valid list")
    if not messages:
        raise invalid_request("messages: at least one message is required", "messages")
    for i, m in enumerate(messages):
        _decode_message(m, f"messages.{i}", req.messages.add())

    for name, hi in (("temperature", 1.0), ("top_p", 1.0)):
        v = body.get(name)
        if v is None:
            continue
        if not is_num(v):
            raise _bad(name, "Input should be a valid number")
        if not 0.0 <= v <= hi:
            raise _bad(name, f"Input should be between 0 and {hi:g}")
        setattr(req, name, float(v))
    top_k = body.get("top_k")
    if top_k is not None:
        if not is_int(top_k):
            raise _bad("top_k", "Input should be a valid integer")
        if top_k < 0:
            raise _bad("top_k", "Input should be greater than or equal to 0")
        req.top_k = top_k

    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list):
            raise _bad("stop_sequences", "Input should be a valid list")
        for i, s in enumerate(stops):
            if not isinstance(s, str):
                raise _bad(f"stop_sequences.{i}", "Input should be a valid string")
            req.stop.append(s)

    stream = body.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise _bad("stream", "Input should be a valid boolean")
        req.stream = stream

    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _bad("metadata", "Input should be a valid dictionary")
        user = metadata.get("user_id")
        if user is not None:
            if not isinstance(user, str):
                raise _bad("metadata.user_id", "Input should be a valid string")
            req.user = user
        rest = unknown_fields(metadata, _K_METADATA)
        if rest:
            extra["metadata"] = rest

    _decode_thinking(body.get("thinking"), req, extra)
    _decode_tools(body, req)
    req.extra_json = dumps_extra(extra)
    return req


def _decode_system(system: Any, req: chat_pb2.ChatRequest) -> None:
    """Top-level system -> leading SYSTEM messages, one per block."""
    if system is None:
        return
    if isinstance(system, str):
        req.system_as_string = True
        if system:
            req.messages.append(chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, parts=[
                chat_pb2.ContentPart(text=chat_pb2.TextPart(text=system))]))
        return
    if not isinstance(system, list):
        raise _bad("system", "Input should be a valid string or a list of text blocks")
    for i, b in enumerate(system):
        param = f"system.{i}"
        if not isinstance(b, dict) or b.get("type") != "text":
            raise _bad(f"{param}.type", "Input should be 'text'")
        text = _str_field(b, "text", param)
        part = chat_pb2.ContentPart(text=chat_pb2.TextPart(text=text),
                                    extra_json=dumps_extra(unknown_fields(b, _K_TEXT)))
        req.messages.append(chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, parts=[part]))


def _decode_thinking(thinking: Any, req: chat_pb2.ChatRequest, extra: dict) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict):
        raise _bad("thinking", "Input should be a valid dictionary")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            raise _missing("thinking.enabled.budget_tokens")
        if not is_int(budget):
            raise _bad("thinking.enabled.budget_tokens", "Input should be a valid integer")
        if budget < 1024:
            raise _bad("thinking.enabled.budget_tokens",
                       "Input should be greater than or equal to 1024")
        if budget >= req.max_tokens:
            raise invalid_request("`max_tokens` must be greater than `thinking.budget_tokens`",
                                  "max_tokens")
        req.reasoning.enabled = True
        req.reasoning.budget_tokens = budget
        rest = unknown_fields(thinking, _K_THINKING_CFG)
        if rest:
            extra["thinking"] = thinking
    elif isinstance(kind, str) and kind:
        extra["thinking"] = thinking  # disabled / adaptive: same-format routes keep it
    else:
        raise _missing("thinking.type")


def _decode_tools(body: dict, req: chat_pb2.ChatRequest) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools", "Input should be a valid list")
        for i, t in enumerate(tools):
            req.tools.append(_decode_tool(t, f"tools.{i}"))
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise _bad("tool_choice", "Input should be a valid dictionary")
    kind = choice.get("type")
    mode = _TOOL_CHOICE_MODES.get(kind) if isinstance(kind, str) else None
    if mode is None:
        raise _bad("tool_choice.type",
                   "Input should be 'auto', 'any', 'tool' or 'none'")
    req.tool_choice.mode = mode
    if mode == chat_pb2.ToolChoice.MODE_NAMED:
        req.tool_choice.name = _str_field(choice, "name", "tool_choice.tool")
    dpt = choice.get("disable_parallel_tool_use")
    if dpt is not None:
        if not isinstance(dpt, bool):
            raise _bad("tool_choice.disable_parallel_tool_use", "Input should be a valid boolean")
        req.parallel_tool_calls = not dpt


def _decode_tool(t: Any, param: str) -> chat_pb2.Tool:
    if not isinstance(t, dict):
        raise _bad(param, "Input should be a valid dictionary")
    kind = t.get("type")
    if kind not in (None, "custom"):
        if not isinstance(kind, str):
            raise _bad(f"{param}.type", "Input should be a valid string")
        # A server or client tool Anthropic defines (bash, web_search, ...): carried whole.
        return chat_pb2.Tool(type=kind, name=_str_field(t, "name", param, required=False),
                             extra_json=dumps_extra(unknown_fields(t, _K_NATIVE_TOOL)))
    tool = chat_pb2.Tool(type="function", name=_str_field(t, "name", param))
    if not tool.name:
        raise _bad(f"{param}.name", "String should have at least 1 character")
    tool.description = _str_field(t, "description", param, required=False)
    schema = t.get("input_schema")
    if schema is None:
        raise _missing(f"{param}.custom.input_schema")
    if not isinstance(schema, dict):
        raise _bad(f"{param}.custom.input_schema", "Input should be a valid dictionary")
    tool.parameters_json = orjson.dumps(schema).decode()
    tool.extra_json = dumps_extra(unknown_fields(t, _K_TOOL))
    return tool


def _decode_message(m: Any, param: str, msg: chat_pb2.Message) -> None:
    """Fill `msg` (built in place: copying protobuf messages is the slow part)."""
    if not isinstance(m, dict):
        raise _bad(param, "Input should be a valid dictionary")
    role = m.get("role")
    if role is None:
        raise _missing(f"{param}.role")
    if not isinstance(role, str) or role not in _ROLES:
        raise _bad(f"{param}.role", "Input should be 'user' or 'assistant'")
    msg.role = _ROLES[role]
    msg.extra_json = dumps_extra(unknown_fields(m, _K_MESSAGE))
    content = m.get("content")
    if content is None:
        raise _missing(f"{param}.content")
    if isinstance(content, str):
        msg.parts.add().text.text = content
        return
    if not isinstance(content, list):
        raise _bad(f"{param}.content", "Input should be a valid string or a list of blocks")
    allowed = _USER_BLOCKS if role == "user" else _ASSISTANT_BLOCKS
    for j, b in enumerate(content):
        _decode_block(b, allowed, f"{param}.content.{j}", msg.parts.add())


def _decode_block(b: Any, allowed: tuple[str, ...], param: str,
                  part: chat_pb2.ContentPart) -> None:
    if not isinstance(b, dict):
        raise _bad(param, "Input should be a valid dictionary")
    kind = b.get("type")
    if kind not in allowed:
        listed = ", ".join(f"'{a}'" for a in allowed)
        raise _bad(f"{param}.type", f"Input tag '{kind}' is not supported here; expected one "
                                    f"of {listed}")
    if kind == "text":
        part.text.text = _str_field(b, "text", param)
        extra = unknown_fields(b, _K_TEXT)  # cache_control, citations
    elif kind == "image":
        extra = _decode_image(b, part.image, param)
    elif kind == "document":
        extra = _decode_document(b, part.document, param)
    elif kind == "tool_use":
        tc = part.tool_call
        tc.id = _str_field(b, "id", param)
        tc.name = _str_field(b, "name", param)
        inp = b.get("input")
        if inp is None:
            raise _missing(f"{param}.input")
        if not isinstance(inp, dict):
            raise _bad(f"{param}.input", "Input should be a valid dictionary")
        tc.arguments_json = orjson.dumps(inp).decode()
        extra = unknown_fields(b, _K_TOOL_USE)
    elif kind == "tool_result":
        extra = _decode_tool_result(b, part.tool_result, param)
    elif kind == "thinking":
        part.reasoning.text = _str_field(b, "thinking", param)
        part.reasoning.signature = _str_field(b, "signature", param)
        extra = unknown_fields(b, _K_THINKING)
    else:  # redacted_thinking
        part.reasoning.redacted = True
        part.reasoning.redacted_data = _str_field(b, "data", param)
        extra = unknown_fields(b, _K_REDACTED)
    part.extra_json = dumps_extra(extra)


def _decode_image(b: dict, img: chat_pb2.ImagePart, param: str) -> dict:
    src = b.get("source")
    if not isinstance(src, dict):
        raise _missing(f"{param}.source")
    extra = unknown_fields(b, _K_IMAGE)
    kind = src.get("type")
    if kind == "base64":
        img.media_type = _str_field(src, "media_type", f"{param}.source")
        img.data_base64 = _str_field(src, "data", f"{param}.source")
    elif kind == "url":
        img.url = _str_field(src, "url", f"{param}.source")
    elif isinstance(kind, str):
        extra["source"] = src  # file ids: no canonical counterpart
    else:
        raise _missing(f"{param}.source.type")
    return extra


def _decode_document(b: dict, doc: chat_pb2.DocumentPart, param: str) -> dict:
    src = b.get("source")
    if not isinstance(src, dict):
        raise _missing(f"{param}.source")
    extra = unknown_fields(b, _K_DOCUMENT)  # context, citations, cache_control
    doc.title = _str_field(b, "title", param, required=False)
    kind = src.get("type")
    sp = f"{param}.source"
    if kind == "base64":
        doc.media_type = _str_field(src, "media_type", sp)
        doc.data_base64 = _str_field(src, "data", sp)
    elif kind == "text":
        doc.media_type = _str_field(src, "media_type", sp, required=False) or "text/plain"
        doc.text = _str_field(src, "data", sp)
    elif kind == "url":
        doc.url = _str_field(src, "url", sp)
    elif isinstance(kind, str):
        extra["source"] = src  # content blocks / file ids: carried for same-format routes
    else:
        raise _missing(f"{sp}.type")
    return extra


def _decode_tool_result(b: dict, tr: chat_pb2.ToolResultPart, param: str) -> dict:
    tr.tool_call_id = _str_field(b, "tool_use_id", param)
    is_error = b.get("is_error")
    if is_error is not None:
        if not isinstance(is_error, bool):
            raise _bad(f"{param}.is_error", "Input should be a valid boolean")
        tr.is_error = is_error
    content = b.get("content")
    if isinstance(content, str):
        tr.content.add().text.text = content
    elif isinstance(content, list):
        for k, inner in enumerate(content):
            _decode_block(inner, _TOOL_RESULT_BLOCKS, f"{param}.content.{k}", tr.content.add())
    elif content is not None:
        raise _bad(f"{param}.content", "Input should be a valid string or a list of blocks")
    extra = unknown_fields(b, _K_TOOL_RESULT)
    if is_error is False:
        extra["is_error"] = False  # the proto bool cannot tell an explicit false from absent
    return extra


# ---- response ----------------------------------------------------------------------------
def _message_id(response_id: str) -> str:
    return response_id if response_id.startswith("msg_") else f"msg_{response_id}"


def _block(p: chat_pb2.ContentPart) -> dict | None:
    kind = p.WhichOneof("kind")
    if kind == "text":
        return {"type": "text", "text": p.text.text} if p.text.text else None
    if kind == "tool_call":
        return {"type": "tool_use", "id": p.tool_call.id, "name": p.tool_call.name,
                "input": _parse_input(p.tool_call.arguments_json)}
    if kind == "reasoning":
        r = p.reasoning
        if r.redacted:
            return {"type": "redacted_thinking", "data": r.redacted_data}
        return {"type": "thinking", "thinking": r.text, "signature": r.signature}
    return None


def _parse_input(arguments_json: str) -> dict:
    """Tool-call arguments as an object: `{}` when empty, invalid or not an object."""
    if not arguments_json:
        return {}
    try:
        value = orjson.loads(arguments_json)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _stop_reason(has_tool: bool, stop_reason: int) -> str:
    if has_tool:
        return "tool_use"  # whatever the upstream said: agents stop on end_turn
    return mappings.STOP_TO_ANTHROPIC_STOP.get(stop_reason, "end_turn")


def encode_response(turn: Turn, *, model: str, response_id: str, created: int) -> dict:
    """A `message` object for a finished Turn (choice 0; Anthropic has no n>1)."""
    choice = turn.choices[0] if turn.choices else None
    parts = choice.parts if choice else []
    content = [b for b in (_block(p) for p in parts) if b is not None]
    has_tool = any(b["type"] == "tool_use" for b in content)
    stop_reason = _stop_reason(has_tool, choice.stop_reason if choice else 0)
    stop_sequence = choice.stop_sequence if choice and choice.stop_sequence else None
    return {"id": _message_id(response_id), "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": stop_reason,
            "stop_sequence": stop_sequence, "usage": mappings.usage_to_anthropic(turn.usage)}


# ---- stream ------------------------------------------------------------------------------
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
        self._id = _message_id(response_id)
        self._usage = chat_pb2.Usage()
        self._started = False
        self._finished = False
        self._stopped = False
        self._active: tuple[int, _Block] | None = None     # upstream index, block
        self._pending: OrderedDict[int, _Block] = OrderedDict()
        self._next_index = 0
        self._saw_tool = False

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

    def _emit_start(self, blk: _Block, content_block: dict, out: list[bytes]) -> None:
        blk.index = self._next_index
        self._next_index += 1
        out.append(sse.event_frame("content_block_start", {
            "type": "content_block_start", "index": blk.index, "content_block": content_block}))

    def _emit_delta(self, blk: _Block, delta: dict, out: list[bytes]) -> None:
        out.append(sse.event_frame("content_block_delta", {
            "type": "content_block_delta", "index": blk.index, "delta": delta}))

    def _send_delta(self, blk: _Block, d: chat_pb2.BlockDelta, out: list[bytes]) -> None:
        which = d.WhichOneof("delta")
        if which == "text":
            if not d.text:
                return
            if blk.index < 0:
                self._emit_start(blk, {"type": "text", "text": ""}, out)
            self._emit_delta(blk, {"type": "text_delta", "text": d.text}, out)
        elif blk.index < 0:
            return  # a non-text delta for a block that never opened (e.g. text): nowhere to go
        elif which == "arguments_json":
            if d.arguments_json:
                self._emit_delta(blk, {"type": "input_json_delta",
                                       "partial_json": d.arguments_json}, out)
        elif which == "reasoning":
            self._emit_delta(blk, {"type": "thinking_delta", "thinking": d.reasoning}, out)
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
            "delta": {"stop_reason": _stop_reason(self._saw_tool, f.stop_reason),
                      "stop_sequence": f.stop_sequence or None},
            "usage": usage}))

    def error(self, err: chat_pb2.Error) -> bytes:
        """`event: error`; the SDKs raise on it. Nothing else is sent afterwards."""
        self._stopped = True
        kind = mappings.ERROR_TYPES.get(err.type, ("api_error", "api_error"))[1]
        return sse.event_frame("error", {"type": "error", "error": {
            "type": kind, "message": err.message or "upstream error"}})

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


# ---- errors ------------------------------------------------------------------------------
def error_body(err: GatewayError) -> tuple[int, dict]:
    """HTTP status and `{"type": "error", "error": {...}}` as Anthropic sends them."""
    status = mappings.ANTHROPIC_STATUS.get(err.http_status, err.http_status)
    kind = mappings.ERROR_TYPES.get(err.type, ("api_error", "api_error"))[1]
    return status, {"type": "error", "error": {"type": kind, "message": err.message}}
