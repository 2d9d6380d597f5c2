"""Anthropic Messages request decoding: the real API's validation, then the canonical
ChatRequest (unknown fields ride in extra_json)."""
from __future__ import annotations

from typing import Any

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.errors import GatewayError, echo, invalid_request
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.fields import (
    check_model,
    dumps_extra,
    is_int,
    is_num,
    unknown_fields,
)

_NAMED = frozenset({"model", "messages", "max_tokens", "system", "metadata", "stop_sequences",
                    "stream", "temperature", "top_k", "top_p", "tools", "tool_choice",
                    "thinking"})
# `system` in messages: a mid-conversation system message (Claude Code sends them with the
# beta `mid-conversation-tool-changes-2026-07-01`); it stays in place.
_ROLES = {"user": chat_pb2.ROLE_USER, "assistant": chat_pb2.ROLE_ASSISTANT,
          "system": chat_pb2.ROLE_SYSTEM}
_USER_BLOCKS = ("text", "image", "document", "tool_result")
_ASSISTANT_BLOCKS = ("text", "tool_use", "thinking", "redacted_thinking")
_SYSTEM_BLOCKS = ("text",)
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


# ---- validation helpers ------------------------------------------------------------------
def _missing(param: str) -> GatewayError:
    return invalid_request(f"{param}: Field required", param)


def _bad(param: str, what: str) -> GatewayError:
    return invalid_request(f"{param}: {what}", param)


def _str_field(obj: dict[str, Any], key: str, param: str, *, required: bool = True) -> str:
    v = obj.get(key)
    if v is None:
        if required:
            raise _missing(f"{param}.{key}")
        return ""
    if not isinstance(v, str):
        raise _bad(f"{param}.{key}", "Input should be a valid string")
    return v


def decode_request(body: dict[str, Any]) -> chat_pb2.ChatRequest:
    """Validate a Messages request and decode it into the canonical ChatRequest."""
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_ANTHROPIC)
    extra = unknown_fields(body, _NAMED)

    model = body.get("model")
    if model is not None:   # absent: the `default: true` entry answers
        if not isinstance(model, str):
            raise _bad("model", "Input should be a valid string")
        check_model(model)
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
    _decode_output(body, req)
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


def _decode_thinking(thinking: Any, req: chat_pb2.ChatRequest, extra: dict[str, Any]) -> None:
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
    elif kind == "adaptive":
        req.reasoning.enabled = True   # the model decides; `output_config.effort` may say more
        extra["thinking"] = thinking   # same-format routes send it as it is
    elif isinstance(kind, str) and kind:
        extra["thinking"] = thinking  # disabled (or a newer type): same-format routes keep it
    else:
        raise _missing("thinking.type")


def _decode_output(body: dict[str, Any], req: chat_pb2.ChatRequest) -> None:
    """`output_config` (format, effort) and the beta's top-level `output_format` ->
    canonical structured output and reasoning effort. Both also stay in extra_json, so a
    same-format route sends them exactly as the client did."""
    config = body.get("output_config")
    fmt = body.get("output_format")
    if config is not None:
        if not isinstance(config, dict):
            raise _bad("output_config", "Input should be a valid dictionary")
        effort = config.get("effort")
        if effort is not None:
            if effort not in mappings.ANTHROPIC_EFFORT_TO_EFFORT:
                raise _bad("output_config.effort",
                           "Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
            req.reasoning.effort = mappings.ANTHROPIC_EFFORT_TO_EFFORT[effort]
        if config.get("format") is not None:
            fmt = config["format"]
            where = "output_config.format"
        else:
            where = "output_format"
    else:
        where = "output_format"
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise _bad(f"{where}.type", "Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise _missing(f"{where}.schema")
    # Anthropic's format names no schema; OpenAI's needs a name.
    req.response_format_json = orjson.dumps({"type": "json_schema", "json_schema": {
        "name": "output", "schema": schema}})


def _decode_tools(body: dict[str, Any], req: chat_pb2.ChatRequest) -> None:
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
    mode = mappings.ANTHROPIC_TOOL_CHOICE.get(kind) if isinstance(kind, str) else None
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
        raise _bad(f"{param}.role", "Input should be 'user', 'assistant' or 'system'")
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
    allowed = {"user": _USER_BLOCKS, "assistant": _ASSISTANT_BLOCKS}.get(role, _SYSTEM_BLOCKS)
    for j, b in enumerate(content):
        _decode_block(b, allowed, f"{param}.content.{j}", msg.parts.add())


def _decode_block(b: Any, allowed: tuple[str, ...], param: str,
                  part: chat_pb2.ContentPart) -> None:
    if not isinstance(b, dict):
        raise _bad(param, "Input should be a valid dictionary")
    kind = b.get("type")
    if kind not in allowed:
        listed = ", ".join(f"'{a}'" for a in allowed)
        raise _bad(f"{param}.type", f"Input tag '{echo(str(kind))}' is not supported here; "
                                    f"expected one of {listed}")
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


def _decode_image(b: dict[str, Any], img: chat_pb2.ImagePart, param: str) -> dict[str, Any]:
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


def _decode_document(b: dict[str, Any], doc: chat_pb2.DocumentPart, param: str) -> dict[str, Any]:
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


def _decode_tool_result(b: dict[str, Any], tr: chat_pb2.ToolResultPart,
                        param: str) -> dict[str, Any]:
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
