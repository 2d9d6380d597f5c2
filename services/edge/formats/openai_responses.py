"""OpenAI Responses API codec (POST /v1/responses): request → canonical, canonical → Responses
JSON and SSE. Pure functions; the edge app does the I/O and the state service the storing."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from services.common.canonical import mappings
from services.common.canonical.aggregate import Choice, Turn, TurnBuilder
from services.common.errors import GatewayError, invalid_request
from services.common.proto import chat_pb2

_SR = chat_pb2.StopReason
_MODES = {"auto": chat_pb2.ToolChoice.MODE_AUTO, "none": chat_pb2.ToolChoice.MODE_NONE,
          "required": chat_pb2.ToolChoice.MODE_REQUIRED}
_INPUT_ROLES = {"user": chat_pb2.ROLE_USER, "system": chat_pb2.ROLE_SYSTEM,
                "developer": chat_pb2.ROLE_DEVELOPER, "assistant": chat_pb2.ROLE_ASSISTANT}
# Stop reasons that end a Responses object as `incomplete`, with the reason it names.
_INCOMPLETE = {_SR.STOP_REASON_MAX_TOKENS: "max_output_tokens",
               _SR.STOP_REASON_REFUSAL: "content_filter"}
# Canonical error type -> Responses `error.code` (ResponseError.code) when the error has none.
_FAILED_CODES = {"rate_limit": "rate_limit_exceeded", "invalid_request": "invalid_prompt"}
# Request fields this codec names (everything else rides in extra_json, for the record).
_NAMED = frozenset({
    "model", "input", "instructions", "previous_response_id", "store", "metadata", "tools",
    "tool_choice", "temperature", "top_p", "max_output_tokens", "parallel_tool_calls",
    "reasoning", "user", "stream", "stream_options", "text", "include", "truncation",
    "background", "conversation", "prompt"})
# Prefix that marks Anthropic redacted thinking inside a reasoning item's `encrypted_content`.
_REDACTED = "redacted:"


@dataclass
class ResponsesContext:
    """What a Responses request carries besides the canonical request: state and echo fields."""
    previous_response_id: str | None = None
    store: bool = True
    instructions: str | None = None
    metadata: dict | None = None
    input_items: list[dict] = field(default_factory=list)
    tools: list[dict] = field(default_factory=list)
    tool_choice: str | dict = "auto"
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool = True
    text: dict = field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: dict = field(default_factory=lambda: {"effort": None, "summary": None})
    user: str | None = None
    truncation: str = "disabled"


# ---- ids ---------------------------------------------------------------------------------
def _new_id(prefix: str) -> str:
    """A fresh item id in the API's style (prefix_ + hex)."""
    return f"{prefix}_{os.urandom(16).hex()}"


def _output_id(prefix: str, response_id: str, n: int) -> str:
    """Output item ids derive from the response id, so stream and stored object agree."""
    return f"{prefix}_{response_id.removeprefix('resp_')}{n:03d}"


# ---- request decoding --------------------------------------------------------------------
def decode_request(body: dict) -> tuple[chat_pb2.ChatRequest, ResponsesContext]:
    """A /v1/responses body → canonical request plus the Responses-only context."""
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    ctx = ResponsesContext()
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES,
                               include_usage=True)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid_request("model must be a string", "model")
    req.model = model or ""
    _reject_unsupported(body)
    _decode_state(body, ctx)

    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_request("instructions must be a string", "instructions")
    if instructions:
        ctx.instructions = instructions
        req.messages.append(_text_message(chat_pb2.ROLE_SYSTEM, instructions))

    items = _normalise_input(body.get("input"))
    ctx.input_items = items
    req.messages.extend(_items_to_messages(items))

    _decode_tools(body, req, ctx)
    _decode_sampling(body, req, ctx)
    extra = {k: v for k, v in body.items() if k not in _NAMED}
    text = body.get("text")
    if text is not None:
        if not isinstance(text, dict):
            raise invalid_request("text must be an object", "text")
        ctx.text = {"format": {"type": "text"}, **text}
        fmt = text.get("format", {"type": "text"})
        response_format = _response_format(fmt)
        if response_format is not None:
            req.response_format_json = orjson.dumps(response_format)
        rest = {k: v for k, v in text.items() if k != "format"}
        if rest:
            extra["text"] = rest  # e.g. verbosity: no canonical field, reported as dropped
    if body.get("truncation") is not None:
        if body["truncation"] not in ("auto", "disabled"):
            raise invalid_request("truncation must be 'auto' or 'disabled'", "truncation")
        ctx.truncation = body["truncation"]
    if extra:
        req.extra_json = orjson.dumps(extra)
    return req, ctx


def _reject_unsupported(body: dict) -> None:
    """Features that need OpenAI-side storage or execution: a clear 400, not silence."""
    if body.get("background"):
        raise invalid_request("background responses are not supported by this gateway",
                              "background")
    for name in ("conversation", "prompt"):
        if body.get(name) is not None:
            raise invalid_request(f"'{name}' is not supported by this gateway; use "
                                  "previous_response_id and instructions", name)


def _decode_state(body: dict, ctx: ResponsesContext) -> None:
    prev = body.get("previous_response_id")
    if prev is not None and (not isinstance(prev, str) or not prev):
        raise invalid_request("previous_response_id must be a non-empty string",
                              "previous_response_id")
    ctx.previous_response_id = prev
    store = body.get("store", True)
    if store is None:
        store = True
    if not isinstance(store, bool):
        raise invalid_request("store must be a boolean", "store")
    ctx.store = store
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or len(metadata) > 16:
            raise invalid_request("metadata must be an object of at most 16 keys", "metadata")
        for k, v in metadata.items():
            if not isinstance(v, str) or len(k) > 64 or len(v) > 512:
                raise invalid_request("metadata values must be strings (keys ≤ 64, values ≤ "
                                      "512 characters)", f"metadata.{k}")
        ctx.metadata = metadata


def _decode_sampling(body: dict, req: chat_pb2.ChatRequest, ctx: ResponsesContext) -> None:
    for name, lo, hi in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise invalid_request(f"{name} must be a number between {lo:g} and {hi:g}", name)
        setattr(req, name, float(value))
        setattr(ctx, name, float(value))
    mot = body.get("max_output_tokens")
    if mot is not None:
        if isinstance(mot, bool) or not isinstance(mot, int) or not 1 <= mot < 2**31:
            raise invalid_request("max_output_tokens must be a positive integer",
                                  "max_output_tokens")
        req.max_tokens = min(mot, 2**31 - 1)
        ctx.max_output_tokens = mot
    ptc = body.get("parallel_tool_calls")
    if ptc is not None:
        if not isinstance(ptc, bool):
            raise invalid_request("parallel_tool_calls must be a boolean", "parallel_tool_calls")
        req.parallel_tool_calls = ptc
        ctx.parallel_tool_calls = ptc
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise invalid_request("reasoning must be an object", "reasoning")
        effort = reasoning.get("effort")
        if effort is not None and effort not in ("none", "minimal", "low", "medium", "high",
                                                 "xhigh"):
            raise invalid_request(f"unknown reasoning.effort '{effort}'", "reasoning.effort")
        if effort and effort != "none":
            req.reasoning.effort = effort
        ctx.reasoning = {"effort": effort, "summary": reasoning.get("summary")}
    user = body.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise invalid_request("user must be a string", "user")
        req.user = user
        ctx.user = user
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_request("stream must be a boolean", "stream")
    req.stream = bool(stream)


def _decode_tools(body: dict, req: chat_pb2.ChatRequest, ctx: ResponsesContext) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_request("tools must be an array", "tools")
        for i, tool in enumerate(tools):
            req.tools.append(_decode_tool(tool, f"tools[{i}]"))
            ctx.tools.append(_echo_tool(tool))
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in _MODES:
            raise invalid_request("tool_choice must be 'auto', 'none', 'required' or "
                                  "{type: function, name}", "tool_choice")
        req.tool_choice.mode = _MODES[choice]
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request("tool_choice.name is required", "tool_choice.name")
        req.tool_choice.mode = chat_pb2.ToolChoice.MODE_NAMED
        req.tool_choice.name = name
    elif isinstance(choice, dict):
        raise invalid_request(f"tool_choice type '{choice.get('type')}' is not supported by "
                              "this gateway", "tool_choice")
    else:
        raise invalid_request("tool_choice must be a string or an object", "tool_choice")
    ctx.tool_choice = choice


def _decode_tool(tool: Any, param: str) -> chat_pb2.Tool:
    if not isinstance(tool, dict):
        raise invalid_request("each tool must be an object", param)
    kind = tool.get("type")
    if kind != "function":
        raise invalid_request(f"tool type '{kind}' is not supported by this gateway; only "
                              "function tools are", f"{param}.type")
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise invalid_request("Missing required parameter: function tools take a top-level "
                              "'name' in the Responses API", f"{param}.name")
    out = chat_pb2.Tool(name=name, type="function")
    description = tool.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise invalid_request("description must be a string", f"{param}.description")
        out.description = description
    params = tool.get("parameters")
    if params is not None:
        if not isinstance(params, dict):
            raise invalid_request("parameters must be a JSON Schema object",
                                  f"{param}.parameters")
        out.parameters_json = orjson.dumps(params).decode()
    extra = {k: v for k, v in tool.items()
             if k not in ("type", "name", "description", "parameters")}
    if extra:
        out.extra_json = orjson.dumps(extra)
    return out


def _echo_tool(tool: dict) -> dict:
    """A function tool as the API echoes it (strict defaults to true in the Responses API)."""
    return {"type": "function", "name": tool["name"], "description": tool.get("description"),
            "parameters": tool.get("parameters"), "strict": tool.get("strict", True)}


# ---- input items -------------------------------------------------------------------------
def _normalise_input(raw: Any) -> list[dict]:
    """`input` (string or items) → Responses items with ids, as input_items returns them."""
    if raw is None:
        raise invalid_request("Missing required parameter: 'input'", "input")
    if isinstance(raw, str):
        return [{"id": _new_id("msg"), "type": "message", "role": "user", "status": "completed",
                 "content": [{"type": "input_text", "text": raw}]}]
    if not isinstance(raw, list):
        raise invalid_request("input must be a string or an array of items", "input")
    return [_normalise_item(item, f"input[{i}]") for i, item in enumerate(raw)]


def _normalise_item(item: Any, param: str) -> dict:
    if not isinstance(item, dict):
        raise invalid_request("each input item must be an object", param)
    kind = item.get("type")
    if kind is None and "role" in item:
        kind = "message"
    if kind == "message":
        return _normalise_message(item, param)
    if kind == "function_call":
        for key in ("call_id", "name"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise invalid_request(f"function_call items need '{key}'", f"{param}.{key}")
        args = item.get("arguments", "")
        if not isinstance(args, str):
            raise invalid_request("arguments must be a JSON string", f"{param}.arguments")
        return {"id": item.get("id") or _new_id("fc"), "type": "function_call",
                "call_id": item["call_id"], "name": item["name"], "arguments": args,
                "status": item.get("status") or "completed"}
    if kind == "function_call_output":
        if not isinstance(item.get("call_id"), str) or not item["call_id"]:
            raise invalid_request("function_call_output items need 'call_id'", f"{param}.call_id")
        output = item.get("output")
        if isinstance(output, list):
            output = [_normalise_part(p, f"{param}.output[{j}]", "user")
                      for j, p in enumerate(output)]
        elif not isinstance(output, str):
            raise invalid_request("output must be a string or an array of content parts",
                                  f"{param}.output")
        return {"id": item.get("id") or _new_id("fco"), "type": "function_call_output",
                "call_id": item["call_id"], "output": output,
                "status": item.get("status") or "completed"}
    if kind == "reasoning":
        summary = item.get("summary") or []
        if not isinstance(summary, list):
            raise invalid_request("summary must be an array", f"{param}.summary")
        out = {"id": item.get("id") or _new_id("rs"), "type": "reasoning", "summary": summary}
        for key in ("content", "encrypted_content"):
            if item.get(key) is not None:
                out[key] = item[key]
        return out
    if kind == "item_reference":
        raise invalid_request("item_reference input items are not supported by this gateway; "
                              "use previous_response_id", f"{param}.type")
    raise invalid_request(f"input item type '{kind}' is not supported by this gateway",
                          f"{param}.type")


def _normalise_message(item: dict, param: str) -> dict:
    role = item.get("role")
    if not isinstance(role, str) or role not in _INPUT_ROLES:
        raise invalid_request("role must be one of user, assistant, system, developer",
                              f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        content = [{"type": "output_text" if role == "assistant" else "input_text",
                    "text": content}]
    if not isinstance(content, list):
        raise invalid_request("content must be a string or an array of parts",
                              f"{param}.content")
    parts = [_normalise_part(p, f"{param}.content[{j}]", role) for j, p in enumerate(content)]
    return {"id": item.get("id") or _new_id("msg"), "type": "message", "role": role,
            "status": item.get("status") or "completed", "content": parts}


def _normalise_part(part: Any, param: str, role: str) -> dict:
    if not isinstance(part, dict):
        raise invalid_request("each content part must be an object", param)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        if not isinstance(part.get("text"), str):
            raise invalid_request("text parts need a string 'text'", f"{param}.text")
        if role == "assistant":
            return {"type": "output_text", "text": part["text"],
                    "annotations": part.get("annotations") or []}
        return {"type": "input_text", "text": part["text"]}
    if kind == "refusal" and role == "assistant":
        return {"type": "refusal", "refusal": str(part.get("refusal", ""))}
    if kind == "input_image":
        if part.get("file_id"):
            raise invalid_request("input_image by file_id is not supported by this gateway; "
                                  "send image_url (a URL or a data URL)", f"{param}.file_id")
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise invalid_request("input_image needs 'image_url'", f"{param}.image_url")
        return {"type": "input_image", "image_url": url, "detail": part.get("detail") or "auto"}
    if kind == "input_file":
        if part.get("file_id"):
            raise invalid_request("input_file by file_id is not supported by this gateway; "
                                  "send file_data or file_url", f"{param}.file_id")
        if not part.get("file_data") and not part.get("file_url"):
            raise invalid_request("input_file needs file_data or file_url", param)
        return {k: part[k] for k in ("type", "file_data", "file_url", "filename")
                if part.get(k) is not None}
    raise invalid_request(f"content part type '{kind}' is not supported by this gateway",
                          f"{param}.type")


def _items_to_messages(items: list[dict]) -> list[chat_pb2.Message]:
    """Normalised items → canonical messages; one assistant turn's items share a message."""
    out: list[chat_pb2.Message] = []
    for item in items:
        last = out[-1] if out else None
        kind = item["type"]
        if kind == "message":
            role = _INPUT_ROLES[item["role"]]
            parts = [_part_to_canonical(p) for p in item["content"]]
            if role == chat_pb2.ROLE_ASSISTANT and _only(last, chat_pb2.ROLE_ASSISTANT,
                                                         "reasoning"):
                last.parts.extend(parts)
            else:
                out.append(chat_pb2.Message(role=role, parts=parts))
        elif kind == "function_call":
            part = chat_pb2.ContentPart(tool_call=chat_pb2.ToolCallPart(
                id=item["call_id"], name=item["name"], arguments_json=item["arguments"]))
            if last is not None and last.role == chat_pb2.ROLE_ASSISTANT:
                last.parts.append(part)
            else:
                out.append(chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=[part]))
        elif kind == "function_call_output":
            part = _tool_result(item)
            if _only(last, chat_pb2.ROLE_USER, "tool_result"):
                last.parts.append(part)
            else:
                out.append(chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[part]))
        elif kind == "reasoning":
            part = _reasoning_to_canonical(item)
            if _only(last, chat_pb2.ROLE_ASSISTANT, "reasoning"):
                last.parts.append(part)
            else:
                out.append(chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=[part]))
    return out


def _only(msg: chat_pb2.Message | None, role: int, kind: str) -> bool:
    """Is `msg` of `role` and made only of `kind` parts (so the next item belongs to it)?"""
    return (msg is not None and msg.role == role and len(msg.parts) > 0
            and all(p.WhichOneof("kind") == kind for p in msg.parts))


def _tool_result(item: dict) -> chat_pb2.ContentPart:
    output = item["output"]
    result = chat_pb2.ToolResultPart(tool_call_id=item["call_id"])
    if isinstance(output, str):
        result.content.append(chat_pb2.ContentPart(text=chat_pb2.TextPart(text=output)))
    else:
        result.content.extend(_part_to_canonical(p) for p in output)
    return chat_pb2.ContentPart(tool_result=result)


def _reasoning_to_canonical(item: dict) -> chat_pb2.ContentPart:
    """A reasoning item → reasoning part; `encrypted_content` carries the Anthropic signature."""
    texts = [s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict)]
    if not texts:
        texts = [c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)]
    enc = item.get("encrypted_content") or ""
    if isinstance(enc, str) and enc.startswith(_REDACTED):
        part = chat_pb2.ReasoningPart(redacted=True, redacted_data=enc[len(_REDACTED):])
    else:
        part = chat_pb2.ReasoningPart(text="\n\n".join(texts), signature=str(enc))
    return chat_pb2.ContentPart(reasoning=part)


def _part_to_canonical(part: dict) -> chat_pb2.ContentPart:
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        return chat_pb2.ContentPart(text=chat_pb2.TextPart(text=part["text"]))
    if kind == "refusal":
        return chat_pb2.ContentPart(text=chat_pb2.TextPart(text=part["refusal"]))
    if kind == "input_image":
        image = chat_pb2.ImagePart(detail=part.get("detail") or "")
        media, data = _split_data_url(part["image_url"])
        if data is None:
            image.url = part["image_url"]
        else:
            image.media_type, image.data_base64 = media, data
        return chat_pb2.ContentPart(image=image)
    doc = chat_pb2.DocumentPart(filename=part.get("filename") or "")
    if part.get("file_data"):
        media, data = _split_data_url(part["file_data"])
        doc.media_type = media or "application/pdf"
        doc.data_base64 = part["file_data"] if data is None else data
    else:
        doc.url = part["file_url"]
    return chat_pb2.ContentPart(document=doc)


def _split_data_url(url: str) -> tuple[str, str | None]:
    """`data:<media>;base64,<data>` → (media, data); anything else → ("", None)."""
    if not url.startswith("data:"):
        return "", None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise invalid_request("data URLs must be base64 encoded (data:<type>;base64,...)")
    return head[: -len(";base64")], data


def _text_message(role: int, text: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=role, parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(
        text=text))])


# ---- response encoding -------------------------------------------------------------------
def _skeleton(*, model: str, response_id: str, created: int, ctx: ResponsesContext) -> dict:
    """The Responses object without output: everything echoed from the request."""
    return {
        "id": response_id, "object": "response", "created_at": created,
        "status": "in_progress", "background": False, "error": None,
        "incomplete_details": None, "instructions": ctx.instructions,
        "max_output_tokens": ctx.max_output_tokens, "model": model, "output": [],
        "parallel_tool_calls": ctx.parallel_tool_calls,
        "previous_response_id": ctx.previous_response_id, "reasoning": ctx.reasoning,
        "store": ctx.store,
        "temperature": 1.0 if ctx.temperature is None else ctx.temperature,
        "text": ctx.text, "tool_choice": ctx.tool_choice, "tools": ctx.tools,
        "top_p": 1.0 if ctx.top_p is None else ctx.top_p, "truncation": ctx.truncation,
        "usage": None, "user": ctx.user, "metadata": ctx.metadata or {},
    }


def _output_item(part: chat_pb2.ContentPart, response_id: str, n: int) -> dict | None:
    """One canonical part → one finished Responses output item (None: no counterpart)."""
    kind = part.WhichOneof("kind")
    if kind == "text":
        return {"id": _output_id("msg", response_id, n), "type": "message", "status": "completed",
                "role": "assistant", "content": [
                    {"type": "output_text", "text": part.text.text, "annotations": []}]}
    if kind == "tool_call":
        tc = part.tool_call
        return {"id": _output_id("fc", response_id, n), "type": "function_call",
                "status": "completed", "call_id": tc.id, "name": tc.name,
                "arguments": tc.arguments_json or "{}"}
    if kind == "reasoning":
        r = part.reasoning
        item: dict = {"id": _output_id("rs", response_id, n), "type": "reasoning",
                      "summary": [{"type": "summary_text", "text": r.text}] if r.text else []}
        if r.redacted:
            item["encrypted_content"] = _REDACTED + r.redacted_data
        elif r.signature:
            item["encrypted_content"] = r.signature
        return item
    return None


def _outputs(choice: Choice, response_id: str) -> list[dict]:
    items: list[dict] = []
    for part in choice.parts:
        item = _output_item(part, response_id, len(items))
        if item is not None:
            items.append(item)
    return items


def _failure(err: chat_pb2.Error) -> dict:
    """Responses `error` object for a failed response."""
    code = err.code or _FAILED_CODES.get(err.type) or (
        "server_error" if (err.http_status or 500) >= 500 else
        mappings.ERROR_TYPES.get(err.type, ("api_error",))[0])
    return {"code": code, "message": err.message or "the upstream request failed"}


def _response_format(fmt: object) -> dict | None:
    """Responses `text.format` -> Chat Completions `response_format` (None for plain text)."""
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise invalid_request("text.format.type must be 'text', 'json_object' or 'json_schema'",
                              "text.format")
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    name, schema = fmt.get("name"), fmt.get("schema")
    if not isinstance(name, str) or not name or not isinstance(schema, dict):
        raise invalid_request("text.format of type json_schema needs a name and a schema object",
                              "text.format")
    spec = {"name": name, "schema": schema}
    for key in ("strict", "description"):
        if key in fmt:
            spec[key] = fmt[key]
    return {"type": "json_schema", "json_schema": spec}


def encode_response(turn: Turn, *, model: str, response_id: str, created: int,
                    ctx: ResponsesContext) -> dict:
    """A whole turn → the Responses object exactly as POST /v1/responses returns it."""
    out = _skeleton(model=model, response_id=response_id, created=created, ctx=ctx)
    choice = turn.choices[0] if turn.choices else Choice()
    out["output"] = _outputs(choice, response_id)
    out["usage"] = mappings.usage_to_responses(turn.usage)
    if turn.error is not None:
        out["status"], out["error"] = "failed", _failure(turn.error)
    elif choice.stop_reason in _INCOMPLETE:
        out["status"] = "incomplete"
        out["incomplete_details"] = {"reason": _INCOMPLETE[choice.stop_reason]}
        if out["output"] and "status" in out["output"][-1]:
            out["output"][-1]["status"] = "incomplete"  # the item the limit cut short
    else:
        out["status"] = "completed"
    return out


# ---- streaming ---------------------------------------------------------------------------
def _frame(event: dict) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


@dataclass
class _Open:
    """One output item being streamed."""
    kind: str
    item_id: str
    output_index: int
    base: dict
    text: str = ""
    part_open: bool = False
    done: bool = False


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
        self._final: dict | None = None

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

    def final_response(self) -> dict:
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
        failed["error"] = _failure(err)
        openai_type = mappings.ERROR_TYPES.get(err.type, ("api_error",))[0]
        detail = {"type": openai_type, "code": failed["error"]["code"],
                  "message": failed["error"]["message"], "param": err.param or None}
        out.append(self._event("response.failed", response=failed))
        out.append(self._event("error", code=detail["code"], message=detail["message"],
                               param=detail["param"], error=detail))
        return b"".join(out)

    def done(self) -> bytes:
        """The Responses API has no `[DONE]` sentinel."""
        return b""

    # -- internals -------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> bytes:
        ev = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return _frame(ev)

    def _snapshot(self, status: str) -> dict:
        snap = _skeleton(model=self.model, response_id=self.response_id, created=self.created,
                         ctx=self.ctx)
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
        if kind == "text":
            base = {"id": _output_id("msg", self.response_id, n), "type": "message",
                    "status": "in_progress", "role": "assistant", "content": []}
        elif kind == "tool_call":
            base = {"id": _output_id("fc", self.response_id, n), "type": "function_call",
                    "status": "in_progress", "call_id": bs.part.tool_call.id,
                    "name": bs.part.tool_call.name, "arguments": ""}
        else:
            base = {"id": _output_id("rs", self.response_id, n), "type": "reasoning",
                    "summary": []}
        item = _Open(kind=kind, item_id=base["id"], output_index=n, base=base)
        self._items[bs.index] = item
        out = [self._event("response.output_item.added", output_index=n, item=dict(base))]
        if kind == "text":
            out.append(self._part_event("response.content_part.added", item, ""))
            item.part_open = True
        initial = {"text": bs.part.text.text, "tool_call": bs.part.tool_call.arguments_json,
                   "reasoning": bs.part.reasoning.text}[kind]
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
                                  ("reasoning", "reasoning")):
            return self._append(item, getattr(d, which))
        return []  # signature deltas: folded by the TurnBuilder, sent in output_item.done

    def _append(self, item: _Open, chunk: str) -> list[bytes]:
        if not chunk:
            return []
        item.text += chunk
        where = {"item_id": item.item_id, "output_index": item.output_index}
        if item.kind == "text":
            return [self._event("response.output_text.delta", **where, content_index=0,
                                delta=chunk, logprobs=[])]
        if item.kind == "tool_call":
            return [self._event("response.function_call_arguments.delta", **where, delta=chunk)]
        out = []
        if not item.part_open:
            item.part_open = True
            out.append(self._event("response.reasoning_summary_part.added", **where,
                                   summary_index=0, part={"type": "summary_text", "text": ""}))
        out.append(self._event("response.reasoning_summary_text.delta", **where,
                               summary_index=0, delta=chunk))
        return out

    def _block_stop(self, index: int) -> list[bytes]:
        item = self._items.get(index)
        if item is None or item.done:
            return []
        item.done = True
        where = {"item_id": item.item_id, "output_index": item.output_index}
        out = []
        if item.kind == "text":
            out.append(self._event("response.output_text.done", **where, content_index=0,
                                   text=item.text, logprobs=[]))
            out.append(self._part_event("response.content_part.done", item, item.text))
        elif item.kind == "tool_call":
            out.append(self._event("response.function_call_arguments.done", **where,
                                   arguments=item.text or "{}"))
        elif item.part_open:
            part = {"type": "summary_text", "text": item.text}
            out.append(self._event("response.reasoning_summary_text.done", **where,
                                   summary_index=0, text=item.text))
            out.append(self._event("response.reasoning_summary_part.done", **where,
                                   summary_index=0, part=part))
        out.append(self._event("response.output_item.done", output_index=item.output_index,
                               item=self._item_now(item)))
        return out

    def _item_now(self, item: _Open) -> dict:
        """The item as it stands: final (from the folded turn) once done, else in progress."""
        choice = self._builder.turn.choice(0)
        parts = [p for p in choice.parts
                 if p.WhichOneof("kind") in ("text", "tool_call", "reasoning")]
        if item.output_index < len(parts):
            final = _output_item(parts[item.output_index], self.response_id, item.output_index)
            if final is not None:
                if not item.done and "status" in final:
                    final["status"] = "incomplete"
                return final
        return dict(item.base)


# ---- errors and listings -----------------------------------------------------------------
def error_body(err: GatewayError) -> tuple[int, dict]:
    """HTTP status and OpenAI error JSON for a GatewayError."""
    status = mappings.OPENAI_STATUS.get(err.http_status, err.http_status)
    openai_type = mappings.ERROR_TYPES.get(err.type, ("api_error",))[0]
    return status, {"error": {"message": err.message, "type": openai_type,
                              "param": err.param or None, "code": err.code or None}}


def input_items_page(items: list[dict], *, limit: int = 20, order: str = "desc",
                     after: str | None = None) -> dict:
    """The `GET /v1/responses/{id}/input_items` list object for stored input items."""
    if not 1 <= limit <= 100:
        raise invalid_request("limit must be between 1 and 100", "limit")
    if order not in ("asc", "desc"):
        raise invalid_request("order must be 'asc' or 'desc'", "order")
    ordered = list(reversed(items)) if order == "desc" else list(items)
    if after is not None:
        ids = [it.get("id") for it in ordered]
        if after not in ids:
            raise invalid_request(f"No input item found with id '{after}'", "after")
        ordered = ordered[ids.index(after) + 1:]
    page = ordered[:limit]
    return {"object": "list", "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(ordered) > limit}
