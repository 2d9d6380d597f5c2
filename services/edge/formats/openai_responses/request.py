"""OpenAI Responses request decoding: a /v1/responses body -> canonical ChatRequest plus the
ResponsesContext (state, echo fields, normalised input items)."""
from __future__ import annotations

import os
from typing import Any, TypeGuard

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.data_urls import is_data_url, split_data_url
from switchyard.common.errors import echo, invalid_request
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.fields import check_model
from switchyard.edge.formats.openai_responses.context import REDACTED, ResponsesContext

_INPUT_ROLES = {"user": chat_pb2.ROLE_USER, "system": chat_pb2.ROLE_SYSTEM,
                "developer": chat_pb2.ROLE_DEVELOPER, "assistant": chat_pb2.ROLE_ASSISTANT}
# Request fields this codec names (everything else rides in extra_json, for the record).
_NAMED = frozenset({
    "model", "input", "instructions", "previous_response_id", "store", "metadata", "tools",
    "tool_choice", "temperature", "top_p", "max_output_tokens", "parallel_tool_calls",
    "reasoning", "user", "stream", "stream_options", "text", "include", "truncation",
    "background", "conversation", "prompt"})


def _new_id(prefix: str) -> str:
    """A fresh item id in the API's style (prefix_ + hex)."""
    return f"{prefix}_{os.urandom(16).hex()}"


def decode_request(body: dict[str, Any]) -> tuple[chat_pb2.ChatRequest, ResponsesContext]:
    """A /v1/responses body → canonical request plus the Responses-only context."""
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    ctx = ResponsesContext()
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES,
                               include_usage=True)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid_request("model must be a string", "model")
    if model:
        check_model(model)
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


def _reject_unsupported(body: dict[str, Any]) -> None:
    """Features that need OpenAI-side storage or execution: a clear 400, not silence."""
    if body.get("background"):
        raise invalid_request("background responses are not supported by this gateway",
                              "background")
    for name in ("conversation", "prompt"):
        if body.get(name) is not None:
            raise invalid_request(f"'{name}' is not supported by this gateway; use "
                                  "previous_response_id and instructions", name)


def _decode_state(body: dict[str, Any], ctx: ResponsesContext) -> None:
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


def _decode_sampling(body: dict[str, Any], req: chat_pb2.ChatRequest,
                     ctx: ResponsesContext) -> None:
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
            raise invalid_request(f"unknown reasoning.effort '{echo(str(effort))}'",
                                  "reasoning.effort")
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


def _decode_tools(body: dict[str, Any], req: chat_pb2.ChatRequest, ctx: ResponsesContext) -> None:
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
        if choice not in mappings.OPENAI_TOOL_CHOICE:
            raise invalid_request("tool_choice must be 'auto', 'none', 'required' or "
                                  "{type: function, name}", "tool_choice")
        req.tool_choice.mode = mappings.OPENAI_TOOL_CHOICE[choice]
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request("tool_choice.name is required", "tool_choice.name")
        req.tool_choice.mode = chat_pb2.ToolChoice.MODE_NAMED
        req.tool_choice.name = name
    elif isinstance(choice, dict):
        raise invalid_request(f"tool_choice type '{echo(str(choice.get('type')))}' is not "
                              "supported by this gateway", "tool_choice")
    else:
        raise invalid_request("tool_choice must be a string or an object", "tool_choice")
    ctx.tool_choice = choice


def _decode_tool(tool: Any, param: str) -> chat_pb2.Tool:
    if not isinstance(tool, dict):
        raise invalid_request("each tool must be an object", param)
    kind = tool.get("type")
    if kind != "function":
        raise invalid_request(f"tool type '{echo(str(kind))}' is not supported by this "
                              "gateway; only function tools are", f"{param}.type")
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


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A function tool as the API echoes it (strict defaults to true in the Responses API)."""
    return {"type": "function", "name": tool["name"], "description": tool.get("description"),
            "parameters": tool.get("parameters"), "strict": tool.get("strict", True)}


# ---- input items -------------------------------------------------------------------------
def _normalise_input(raw: Any) -> list[dict[str, Any]]:
    """`input` (string or items) → Responses items with ids, as input_items returns them."""
    if raw is None:
        raise invalid_request("Missing required parameter: 'input'", "input")
    if isinstance(raw, str):
        return [{"id": _new_id("msg"), "type": "message", "role": "user", "status": "completed",
                 "content": [{"type": "input_text", "text": raw}]}]
    if not isinstance(raw, list):
        raise invalid_request("input must be a string or an array of items", "input")
    return [_normalise_item(item, f"input[{i}]") for i, item in enumerate(raw)]


def _normalise_item(item: Any, param: str) -> dict[str, Any]:
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
    raise invalid_request(f"input item type '{echo(str(kind))}' is not supported by this gateway",
                          f"{param}.type")


def _normalise_message(item: dict[str, Any], param: str) -> dict[str, Any]:
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


def _normalise_part(part: Any, param: str, role: str) -> dict[str, Any]:
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
    raise invalid_request(f"content part type '{echo(str(kind))}' is not supported by this gateway",
                          f"{param}.type")


def _items_to_messages(items: list[dict[str, Any]]) -> list[chat_pb2.Message]:
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


def _only(msg: chat_pb2.Message | None, role: int, kind: str) -> TypeGuard[chat_pb2.Message]:
    """Is `msg` of `role` and made only of `kind` parts (so the next item belongs to it)?"""
    return (msg is not None and msg.role == role and len(msg.parts) > 0
            and all(p.WhichOneof("kind") == kind for p in msg.parts))


def _tool_result(item: dict[str, Any]) -> chat_pb2.ContentPart:
    output = item["output"]
    result = chat_pb2.ToolResultPart(tool_call_id=item["call_id"])
    if isinstance(output, str):
        result.content.append(chat_pb2.ContentPart(text=chat_pb2.TextPart(text=output)))
    else:
        result.content.extend(_part_to_canonical(p) for p in output)
    return chat_pb2.ContentPart(tool_result=result)


def _reasoning_to_canonical(item: dict[str, Any]) -> chat_pb2.ContentPart:
    """A reasoning item → reasoning part; `encrypted_content` carries the Anthropic signature."""
    texts = [s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict)]
    if not texts:
        texts = [c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)]
    enc = item.get("encrypted_content") or ""
    if isinstance(enc, str) and enc.startswith(REDACTED):
        part = chat_pb2.ReasoningPart(redacted=True, redacted_data=enc[len(REDACTED):])
    else:
        part = chat_pb2.ReasoningPart(text="\n\n".join(texts), signature=str(enc))
    return chat_pb2.ContentPart(reasoning=part)


def _part_to_canonical(part: dict[str, Any]) -> chat_pb2.ContentPart:
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
    """`data:<media>;base64,<data>` → (media, data); not a data URL → ("", None); a data URL
    that is not base64 is a 400."""
    if not is_data_url(url):
        return "", None
    split = split_data_url(url)
    if split is None:
        raise invalid_request("data URLs must be base64 encoded (data:<type>;base64,...)")
    return split


def _text_message(role: chat_pb2.Role, text: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=role, parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(
        text=text))])


def _response_format(fmt: object) -> dict[str, Any] | None:
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
