"""OpenAI Responses request decoding: a /v1/responses body -> canonical ChatRequest plus the
ResponsesContext (state, echo fields, normalised input items)."""
from __future__ import annotations

import re
from typing import Any, TypeGuard

import orjson

from switchyard.common.data_urls import is_data_url, split_data_url
from switchyard.common.errors import GatewayError, echo, invalid_request
from switchyard.common.proto import chat_pb2
from switchyard.common.random_hex import random_hex
from switchyard.edge.formats.fields import MAX_ID_CHARS, check_model, check_name
from switchyard.edge.formats.openai_responses.context import REDACTED, ResponsesContext
from switchyard.edge.formats.openai_responses.tools import (
    CUSTOM_INPUT,
    TOOL_SEARCH,
    DecodedTools,
    canonical_name,
    decode_tool_choice,
    decode_tools,
)

_INPUT_ROLES = {"user": chat_pb2.ROLE_USER, "system": chat_pb2.ROLE_SYSTEM,
                "developer": chat_pb2.ROLE_DEVELOPER, "assistant": chat_pb2.ROLE_ASSISTANT}
# Request fields this codec names (everything else rides in extra_json, for the record).
_NAMED = frozenset({
    "model", "input", "instructions", "previous_response_id", "store", "metadata", "tools",
    "tool_choice", "temperature", "top_p", "max_output_tokens", "parallel_tool_calls",
    "reasoning", "user", "stream", "stream_options", "text", "include", "truncation",
    "background", "conversation", "prompt", "prompt_cache_key"})
# Input items of tools the API runs itself: no upstream here can take them, so they are
# dropped (and reported) while the rest of the conversation goes on.
_HOSTED_ITEMS = frozenset({
    "web_search_call", "file_search_call", "computer_call", "computer_call_output",
    "code_interpreter_call", "image_generation_call", "local_shell_call",
    "local_shell_call_output", "shell_call", "shell_call_output", "apply_patch_call",
    "apply_patch_call_output", "mcp_call", "mcp_list_tools", "mcp_approval_request",
    "mcp_approval_response"})

# OpenAI's conversation ids: `conv_` and letters, digits, `_` or `-` (the gateway mints hex).
_CONVERSATION_ID = re.compile(r"conv_[A-Za-z0-9_-]+")


def _new_id(prefix: str) -> str:
    """A fresh item id in the API's style (prefix_ + hex)."""
    return f"{prefix}_{random_hex(16)}"


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

    tools = DecodedTools()
    if body.get("tools") is not None:
        decode_tools(body["tools"], "tools", tools)
    ctx.tools = list(tools.echo)
    items = _normalise_input(body.get("input"))
    ctx.input_items = items
    req.messages.extend(_items_to_messages(items, tools, ctx.dropped))
    req.tools.extend(tools.tools)
    ctx.tool_map = tools.map
    if body.get("tool_choice") is not None:
        decode_tool_choice(body["tool_choice"], req, tools, ctx.dropped)
        ctx.tool_choice = body["tool_choice"]
    _decode_sampling(body, req, ctx)
    cache_key = body.get("prompt_cache_key")
    if cache_key is not None:
        if not isinstance(cache_key, str):
            raise invalid_request("prompt_cache_key must be a string", "prompt_cache_key")
        req.prompt_cache_key = cache_key
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
    if body.get("prompt") is not None:
        raise invalid_request("'prompt' is not supported by this gateway; use instructions",
                              "prompt")


def _decode_state(body: dict[str, Any], ctx: ResponsesContext) -> None:
    prev = body.get("previous_response_id")
    if prev is not None and (not isinstance(prev, str) or not prev):
        raise invalid_request("previous_response_id must be a non-empty string",
                              "previous_response_id")
    ctx.previous_response_id = prev
    conversation = body.get("conversation")
    if conversation is not None:
        ctx.conversation = _conversation_id(conversation)
        if prev is not None:
            raise GatewayError(400, "Mutually exclusive parameters: Ensure you are only "
                               "providing one of: 'previous_response_id' or 'conversation'.",
                               type="invalid_request", code="mutually_exclusive_parameters")
    store = body.get("store", True)
    if store is None:
        store = True
    if not isinstance(store, bool):
        raise invalid_request("store must be a boolean", "store")
    ctx.store = store
    metadata = body.get("metadata")
    if metadata is not None:
        ctx.metadata = check_metadata(metadata)


def check_metadata(metadata: Any) -> dict[str, str]:
    """OpenAI's `metadata`: at most 16 string pairs (keys ≤ 64, values ≤ 512 characters)."""
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise invalid_request("metadata must be an object of at most 16 keys", "metadata")
    for k, v in metadata.items():
        if not isinstance(v, str) or len(k) > 64 or len(v) > 512:
            raise invalid_request("metadata values must be strings (keys ≤ 64, values ≤ "
                                  "512 characters)", f"metadata.{k}")
    return metadata


def check_conversation_id(value: str, param: str) -> None:
    """A conversation id worth looking up (`conv_...`), else a 400 as OpenAI gives it."""
    check_name(value, param, MAX_ID_CHARS)
    if _CONVERSATION_ID.fullmatch(value) is None:
        raise invalid_request(f"Invalid '{param}': '{echo(value)}'. Expected an ID that "
                              "begins with 'conv'.", param)


def _conversation_id(value: Any) -> str:
    """`conversation`: the id, or an object naming it (`{"id": ...}`)."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str):
        raise invalid_request("conversation must be a conversation id or an object with "
                              "its 'id'", "conversation")
    check_conversation_id(value, "conversation")
    return value


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
                                                 "xhigh", "max"):
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


# ---- input items -------------------------------------------------------------------------
def normalise_items(raw: Any, param: str) -> list[dict[str, Any]]:
    """An array of input items (a conversation's items), normalised as `input` items are."""
    if not isinstance(raw, list):
        raise invalid_request(f"{param} must be an array of items", param)
    return [_normalise_item(item, f"{param}[{i}]") for i, item in enumerate(raw)]


def items_to_history(items: list[dict[str, Any]], dropped: list[str]) -> list[chat_pb2.Message]:
    """Normalised items (a stored conversation) → canonical messages, oldest first."""
    return _items_to_messages(items, DecodedTools(), dropped)


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
        out = _call_item(item, param, "fc", ("call_id", "name"))
        args = item.get("arguments", "")
        if not isinstance(args, str):
            raise invalid_request("arguments must be a JSON string", f"{param}.arguments")
        out["arguments"] = args
        return out
    if kind == "custom_tool_call":
        out = _call_item(item, param, "ctc", ("call_id", "name"))
        if not isinstance(item.get("input"), str):
            raise invalid_request("custom_tool_call items need a string 'input'",
                                  f"{param}.input")
        out["input"] = item["input"]
        return out
    if kind in ("function_call_output", "custom_tool_call_output"):
        if not isinstance(item.get("call_id"), str) or not item["call_id"]:
            raise invalid_request(f"{kind} items need 'call_id'", f"{param}.call_id")
        output = item.get("output")
        if isinstance(output, list):
            output = [_normalise_part(p, f"{param}.output[{j}]", "user")
                      for j, p in enumerate(output)]
        elif not isinstance(output, str):
            raise invalid_request("output must be a string or an array of content parts",
                                  f"{param}.output")
        return {"id": item.get("id") or _new_id("fco"), "type": kind,
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
    if isinstance(kind, str) and (kind in ("tool_search_call", "tool_search_output",
                                           "additional_tools") or kind in _HOSTED_ITEMS):
        # Kept as sent (input_items returns them); `_items_to_messages` decides their fate.
        return {**item, "id": item.get("id") or _new_id("ti")}
    if kind == "item_reference":
        raise invalid_request("item_reference input items are not supported by this gateway; "
                              "use previous_response_id", f"{param}.type")
    raise invalid_request(f"input item type '{echo(str(kind))}' is not supported by this gateway",
                          f"{param}.type")


def _call_item(item: dict[str, Any], param: str, prefix: str,
               keys: tuple[str, ...]) -> dict[str, Any]:
    """The shared part of a call item: id, type, required names, namespace, status."""
    for key in keys:
        if not isinstance(item.get(key), str) or not item[key]:
            raise invalid_request(f"{item['type']} items need '{key}'", f"{param}.{key}")
    out = {"id": item.get("id") or _new_id(prefix), "type": item["type"],
           **{k: item[k] for k in keys}, "status": item.get("status") or "completed"}
    namespace = item.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str):
            raise invalid_request("namespace must be a string", f"{param}.namespace")
        out["namespace"] = namespace
    return out


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


def _items_to_messages(items: list[dict[str, Any]], tools: DecodedTools,
                       dropped: list[str]) -> list[chat_pb2.Message]:
    """Normalised items → canonical messages; one assistant turn's items share a message.
    Tools that items load (tool search, additional_tools) are added to `tools`."""
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
            continue
        if kind in _HOSTED_ITEMS or (kind.startswith("tool_search")
                                     and item.get("execution", "server") != "client"):
            _drop(dropped, f"input[{kind}]")   # run by the API itself: no upstream here can
            continue
        if kind == "additional_tools":
            decode_tools(item.get("tools"), "input.additional_tools.tools", tools)
            continue
        if kind in ("function_call", "custom_tool_call", "tool_search_call"):
            _add_assistant(out, chat_pb2.ContentPart(tool_call=_call_part(item)))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            _add_result(out, _tool_result(item))
        elif kind == "tool_search_output":
            loaded = DecodedTools()
            decode_tools(item.get("tools") or [], "input.tool_search_output.tools", loaded)
            for tool in loaded.tools:
                tools.add(tool, loaded.map.origins.get(tool.name))
            names = ", ".join(t.name or t.type for t in loaded.tools) or "none"
            result = chat_pb2.ToolResultPart(tool_call_id=str(item.get("call_id") or
                                                              item["id"]))
            result.content.add().text.text = f"Tools loaded: {names}."
            _add_result(out, chat_pb2.ContentPart(tool_result=result))
        elif kind == "reasoning":
            part = _reasoning_to_canonical(item)
            if _only(last, chat_pb2.ROLE_ASSISTANT, "reasoning"):
                last.parts.append(part)
            else:
                out.append(chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=[part]))
    return out


def _drop(dropped: list[str], name: str) -> None:
    if name not in dropped:
        dropped.append(name)


def _call_part(item: dict[str, Any]) -> chat_pb2.ToolCallPart:
    """A call item (function, custom or client tool search) as the canonical tool call."""
    kind = item["type"]
    if kind == "tool_search_call":
        args = item.get("arguments")
        return chat_pb2.ToolCallPart(id=str(item.get("call_id") or item["id"]),
                                     name=TOOL_SEARCH,
                                     arguments_json=orjson.dumps(args or {}).decode())
    if kind == "custom_tool_call":
        name = canonical_name("custom", item["name"], item.get("namespace") or "")
        args_json = orjson.dumps({CUSTOM_INPUT: item["input"]}).decode()
    else:
        name = canonical_name("function", item["name"], item.get("namespace") or "")
        args_json = item["arguments"]
    return chat_pb2.ToolCallPart(id=item["call_id"], name=name, arguments_json=args_json)


def _add_assistant(out: list[chat_pb2.Message], part: chat_pb2.ContentPart) -> None:
    last = out[-1] if out else None
    if last is not None and last.role == chat_pb2.ROLE_ASSISTANT:
        last.parts.append(part)
    else:
        out.append(chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=[part]))


def _add_result(out: list[chat_pb2.Message], part: chat_pb2.ContentPart) -> None:
    last = out[-1] if out else None
    if _only(last, chat_pb2.ROLE_USER, "tool_result"):
        last.parts.append(part)
    else:
        out.append(chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[part]))


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
