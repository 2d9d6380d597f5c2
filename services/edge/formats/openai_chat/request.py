"""OpenAI Chat Completions request decoding: the real API's validation, then the canonical
ChatRequest (unknown fields ride in extra_json)."""
from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from switchyard.common.canonical import mappings
from switchyard.common.errors import GatewayError, echo, invalid_request
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.fields import (
    check_model,
    dumps_extra,
    is_int,
    is_num,
    split_data_url,
    unknown_fields,
)

# Top-level fields the canonical ChatRequest names; everything else rides in extra_json.
_NAMED = frozenset({"model", "messages", "tools", "tool_choice", "parallel_tool_calls",
                    "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
                    "stream", "stream_options", "reasoning_effort", "user", "response_format",
                    "prompt_cache_key"})
_MESSAGE_NAMED = frozenset({"role", "content", "name", "tool_calls", "tool_call_id",
                            "reasoning_content"})
_ROLES = {"system": chat_pb2.ROLE_SYSTEM, "developer": chat_pb2.ROLE_DEVELOPER,
          "user": chat_pb2.ROLE_USER, "assistant": chat_pb2.ROLE_ASSISTANT,
          "tool": chat_pb2.ROLE_USER}
# Content part types each role may send (the API rejects the rest).
_PART_TYPES = {"system": ("text",), "developer": ("text",), "tool": ("text",),
               "user": ("text", "image_url", "file"), "assistant": ("text", "refusal")}
# Numeric fields the canonical model does not name but the API type-checks.
_EXTRA_INTS = ("n", "seed", "top_logprobs")
# Keys each decoder names itself (the rest goes to extra_json).
_TEXT_KEYS = frozenset(("type", "text"))
_K_STREAM_OPTS = frozenset(("include_usage",))
_K_TYPE = frozenset(("type",))
_K_FUNCTION = frozenset(("name", "description", "parameters"))
_K_TOOL = frozenset(("type", "function"))
_K_TOOL_CALL = frozenset(("id", "type", "function"))
_K_REFUSAL = frozenset(("refusal",))
_K_IMAGE = frozenset(("type", "image_url"))
_K_FILE = frozenset(("type", "file"))
_K_FILE_INNER = frozenset(("file_data", "filename"))
_EXTRA_NUMBERS = {"frequency_penalty": (-2.0, 2.0), "presence_penalty": (-2.0, 2.0)}


# ---- validation helpers ------------------------------------------------------------------
def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string",
            list: "an array", dict: "an object"}.get(type(v), type(v).__name__)


def _bad_type(param: str, expected: str, got: Any) -> GatewayError:
    return invalid_request(f"Invalid type for '{param}': expected {expected}, but got "
                           f"{_type_name(got)} instead.", param)


def _missing(param: str) -> GatewayError:
    return invalid_request(f"Missing required parameter: '{param}'.", param)


def decode_request(body: dict[str, Any]) -> chat_pb2.ChatRequest:
    """Validate a Chat Completions request and decode it into the canonical ChatRequest."""
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_OPENAI_CHAT)
    extra = unknown_fields(body, _NAMED)

    model = body.get("model")
    if model is not None:   # absent: the `default: true` entry answers (as for "")
        if not isinstance(model, str):
            raise _bad_type("model", "a string", model)
        check_model(model)
        req.model = model

    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _bad_type("messages", "an array", messages)
    if not messages:
        raise invalid_request("Invalid 'messages': empty array. Expected an array with "
                              "minimum length 1, but got an empty array instead.", "messages")
    for i, m in enumerate(messages):
        _decode_message(m, f"messages[{i}]", req.messages.add())

    _decode_sampling(body, req, extra)
    _decode_tools(body, req, extra)

    stream = body.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise _bad_type("stream", "a boolean", stream)
        req.stream = stream
    opts = body.get("stream_options")
    if opts is not None:
        if not isinstance(opts, dict):
            raise _bad_type("stream_options", "an object", opts)
        inc = opts.get("include_usage")
        if inc is not None and not isinstance(inc, bool):
            raise _bad_type("stream_options.include_usage", "a boolean", inc)
        req.include_usage = bool(inc)
        rest = unknown_fields(opts, _K_STREAM_OPTS)
        if rest:
            extra["stream_options"] = rest

    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str):
            raise _bad_type("reasoning_effort", "a string", effort)
        req.reasoning.effort = effort
    user = body.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise _bad_type("user", "a string", user)
        req.user = user
    cache_key = body.get("prompt_cache_key")
    if cache_key is not None:
        if not isinstance(cache_key, str):
            raise _bad_type("prompt_cache_key", "a string", cache_key)
        req.prompt_cache_key = cache_key
    _decode_response_format(body.get("response_format"), req)
    _decode_thinking(body.get("thinking"), req)

    for name in _EXTRA_INTS:
        v = body.get(name)
        if v is not None and not is_int(v):
            raise _bad_type(name, "an integer", v)
    n = body.get("n")
    if n is not None and n < 1:
        raise invalid_request(f"Invalid 'n': integer below minimum value. Expected a value >= 1, "
                              f"but got {n} instead.", "n")
    for name, (lo, hi) in _EXTRA_NUMBERS.items():
        v = body.get(name)
        if v is not None:
            if not is_num(v):
                raise _bad_type(name, "a number", v)
            if not lo <= v <= hi:
                raise invalid_request(f"Invalid '{name}': expected a value between {lo:g} and "
                                      f"{hi:g}, but got {v} instead.", name)
    req.extra_json = dumps_extra(extra)
    return req


def _decode_response_format(fmt: Any, req: chat_pb2.ChatRequest) -> None:
    """`response_format` -> the canonical one (every upstream codec reads it from there)."""
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise _bad_type("response_format", "an object", fmt)
    kind = fmt.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise invalid_request(f"Invalid value for 'response_format.type': '{echo(str(kind))}'. "
                              "Supported values are: 'text', 'json_object' and 'json_schema'.",
                              "response_format.type")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            raise _missing("response_format.json_schema")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise _missing("response_format.json_schema.name")
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise _bad_type("response_format.json_schema.schema", "an object", schema)
    req.response_format_json = orjson.dumps(fmt)   # "text" too: same-format routes send it


def _decode_thinking(thinking: Any, req: chat_pb2.ChatRequest) -> None:
    """Anthropic-style `thinking` sent as an extra body field (LiteLLM and others accept it):
    canonical reasoning for upstreams of other formats; it stays in extra_json too, for
    OpenAI-compatible servers that take it as it is."""
    if not isinstance(thinking, dict):
        return
    kind = thinking.get("type")
    budget = thinking.get("budget_tokens")
    if kind == "enabled":
        req.reasoning.enabled = True
        if isinstance(budget, int) and is_int(budget) and budget > 0:
            req.reasoning.budget_tokens = budget
    elif kind == "adaptive":
        req.reasoning.enabled = True


def _decode_sampling(body: dict[str, Any], req: chat_pb2.ChatRequest,
                     extra: dict[str, Any]) -> None:
    """max_tokens / max_completion_tokens, temperature, top_p, stop."""
    for name in ("max_tokens", "max_completion_tokens"):
        v = body.get(name)
        if v is None:
            continue
        if not is_int(v):
            raise _bad_type(name, "an integer", v)
        if v < 1:
            raise invalid_request(f"Invalid '{name}': integer below minimum value. Expected a "
                                  f"value >= 1, but got {v} instead.", name)
    mct, mt = body.get("max_completion_tokens"), body.get("max_tokens")
    if mct is not None:
        req.max_tokens = mct
        extra["max_completion_tokens"] = mct  # the upstream encoder emits the same key back
        if mt is not None:
            extra["max_tokens"] = mt
    elif mt is not None:
        req.max_tokens = mt

    for name, hi in (("temperature", 2.0), ("top_p", 1.0)):
        v = body.get(name)
        if v is None:
            continue
        if not is_num(v):
            raise _bad_type(name, "a number", v)
        if not 0.0 <= v <= hi:
            raise invalid_request(f"Invalid '{name}': expected a value between 0 and {hi:g}, "
                                  f"but got {v} instead.", name)
        setattr(req, name, float(v))

    stop = body.get("stop")
    if isinstance(stop, str):
        req.stop.append(stop)
    elif isinstance(stop, list):
        for i, s in enumerate(stop):
            if not isinstance(s, str):
                raise _bad_type(f"stop[{i}]", "a string", s)
            req.stop.append(s)
    elif stop is not None:
        raise _bad_type("stop", "a string or an array of strings", stop)


def _decode_tools(body: dict[str, Any], req: chat_pb2.ChatRequest, extra: dict[str, Any]) -> None:
    """tools, tool_choice, parallel_tool_calls."""
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad_type("tools", "an array", tools)
        for i, t in enumerate(tools):
            req.tools.append(_decode_tool(t, f"tools[{i}]"))

    choice = body.get("tool_choice")
    if isinstance(choice, str):
        mode = mappings.OPENAI_TOOL_CHOICE.get(choice)
        if mode is None:
            raise invalid_request(f"Invalid value for 'tool_choice': '{echo(str(choice))}'. "
                                  "Supported values are: 'none', 'auto' and 'required'.",
                                  "tool_choice")
        req.tool_choice.mode = mode
    elif isinstance(choice, dict):
        if choice.get("type") == "function":
            fn = choice.get("function")
            name = fn.get("name") if isinstance(fn, dict) else None
            if not isinstance(name, str) or not name:
                raise _missing("tool_choice.function.name")
            req.tool_choice.mode = chat_pb2.ToolChoice.MODE_NAMED
            req.tool_choice.name = name
        elif isinstance(choice.get("type"), str):
            extra["tool_choice"] = choice  # allowed_tools, custom: no canonical counterpart
        else:
            raise _missing("tool_choice.type")
    elif choice is not None:
        raise _bad_type("tool_choice", "a string or an object", choice)

    ptc = body.get("parallel_tool_calls")
    if ptc is not None:
        if not isinstance(ptc, bool):
            raise _bad_type("parallel_tool_calls", "a boolean", ptc)
        req.parallel_tool_calls = ptc


def _decode_tool(t: Any, param: str) -> chat_pb2.Tool:
    if not isinstance(t, dict):
        raise _bad_type(param, "an object", t)
    kind = t.get("type")
    if not isinstance(kind, str):
        raise _missing(f"{param}.type")
    if kind != "function":
        # A provider-native tool (e.g. `custom`): carried whole for same-format routes.
        inner = t.get(kind)
        name = inner.get("name", "") if isinstance(inner, dict) else ""
        return chat_pb2.Tool(type=kind, name=name if isinstance(name, str) else "",
                             extra_json=dumps_extra(unknown_fields(t, _K_TYPE)))
    fn = t.get("function")
    if not isinstance(fn, dict):
        raise _missing(f"{param}.function")
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise _missing(f"{param}.function.name")
    tool = chat_pb2.Tool(type="function", name=name)
    desc = fn.get("description")
    if desc is not None:
        if not isinstance(desc, str):
            raise _bad_type(f"{param}.function.description", "a string", desc)
        tool.description = desc
    params = fn.get("parameters")
    if params is not None:
        if not isinstance(params, dict):
            raise _bad_type(f"{param}.function.parameters", "an object", params)
        tool.parameters_json = orjson.dumps(params).decode()
    # Usually only function-level keys (strict): carried flat. With tool-level unknown keys
    # too, the function's go under "function" so an encoder can put each back in its place.
    fn_extra = unknown_fields(fn, _K_FUNCTION)
    tool_extra = unknown_fields(t, _K_TOOL)
    if tool_extra and fn_extra:
        tool_extra["function"] = fn_extra
    tool.extra_json = dumps_extra(tool_extra or fn_extra)
    return tool


def _decode_message(m: Any, param: str, msg: chat_pb2.Message) -> None:
    """Fill `msg` (built in place: copying protobuf messages is the slow part)."""
    if not isinstance(m, dict):
        raise _bad_type(param, "an object", m)
    role = m.get("role")
    if role is None:
        raise _missing(f"{param}.role")
    if not isinstance(role, str) or role not in _ROLES:
        raise invalid_request(f"Invalid value for '{param}.role': '{echo(str(role))}'. "
                              "Supported values are: 'system', "
                              "'developer', 'user', 'assistant' and 'tool'.", f"{param}.role")
    msg.role = _ROLES[role]
    name = m.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise _bad_type(f"{param}.name", "a string", name)
        msg.name = name
    msg.extra_json = dumps_extra(unknown_fields(m, _MESSAGE_NAMED))

    content = m.get("content")
    if role == "tool":
        call_id = m.get("tool_call_id")
        if not isinstance(call_id, str):
            raise _missing(f"{param}.tool_call_id")
        if content is None:
            raise _missing(f"{param}.content")
        result = msg.parts.add().tool_result
        result.tool_call_id = call_id
        _decode_content(content, role, f"{param}.content", result.content)
        return

    if role == "assistant":
        reasoning = m.get("reasoning_content")
        if reasoning is not None:
            if not isinstance(reasoning, str):
                raise _bad_type(f"{param}.reasoning_content", "a string", reasoning)
            if reasoning:
                msg.parts.add().reasoning.text = reasoning
        calls = m.get("tool_calls")
        if content is None and not calls and "function_call" not in m:
            raise invalid_request(f"Invalid value for '{param}.content': expected a string or "
                                  "an array, got null (content may be null only with "
                                  "tool_calls).", f"{param}.content")
        if content is not None:
            _decode_content(content, role, f"{param}.content", msg.parts)
        if calls is not None:
            if not isinstance(calls, list):
                raise _bad_type(f"{param}.tool_calls", "an array", calls)
            for j, c in enumerate(calls):
                _decode_tool_call(c, f"{param}.tool_calls[{j}]", msg.parts.add())
        return

    if content is None:
        raise _missing(f"{param}.content")
    _decode_content(content, role, f"{param}.content", msg.parts)


def _decode_tool_call(c: Any, param: str, part: chat_pb2.ContentPart) -> None:
    if not isinstance(c, dict):
        raise _bad_type(param, "an object", c)
    call_id = c.get("id")
    if not isinstance(call_id, str):
        raise _missing(f"{param}.id")
    kind = c.get("type", "function")
    if kind != "function":
        raise invalid_request(f"Invalid value for '{param}.type': '{echo(str(kind))}'. "
                              "Supported values are: 'function'.",
                              f"{param}.type")
    fn = c.get("function")
    if not isinstance(fn, dict):
        raise _missing(f"{param}.function")
    name = fn.get("name")
    if not isinstance(name, str):
        raise _missing(f"{param}.function.name")
    args = fn.get("arguments", "")
    if not isinstance(args, str):
        raise _bad_type(f"{param}.function.arguments", "a string", args)
    tc = part.tool_call
    tc.id, tc.name, tc.arguments_json = call_id, name, args
    part.extra_json = dumps_extra(unknown_fields(c, _K_TOOL_CALL))


def _decode_content(content: Any, role: str, param: str,
                    into: RepeatedCompositeFieldContainer[chat_pb2.ContentPart]) -> None:
    """Append the content's parts to `into` (a repeated ContentPart field)."""
    if isinstance(content, str):
        into.add().text.text = content
        return
    if not isinstance(content, list):
        raise _bad_type(param, "a string or an array", content)
    allowed = _PART_TYPES[role]
    for i, p in enumerate(content):
        pp = f"{param}[{i}]"
        if not isinstance(p, dict):
            raise _bad_type(pp, "an object", p)
        kind = p.get("type")
        if kind not in allowed:
            listed = ", ".join(f"'{a}'" for a in allowed)
            raise invalid_request(f"Invalid value for '{pp}.type': '{echo(str(kind))}'. "
                                  f"Supported values are: {listed}.",
                                  f"{pp}.type")
        _decode_part(p, kind, pp, into.add())


def _decode_part(p: dict[str, Any], kind: str, param: str, part: chat_pb2.ContentPart) -> None:
    if kind in ("text", "refusal"):
        text = p.get(kind)
        if not isinstance(text, str):
            raise _bad_type(f"{param}.{kind}", "a string", text)
        part.text.text = text
        extra = unknown_fields(p, _TEXT_KEYS)
        if kind == "refusal":
            extra = unknown_fields(p, _K_REFUSAL)  # keeps "type": "refusal" for same-format routes
    elif kind == "image_url":
        img = p.get("image_url")
        url = img.get("url") if isinstance(img, dict) else None
        if not isinstance(img, dict) or not isinstance(url, str):
            raise _missing(f"{param}.image_url.url")
        media, data = split_data_url(url)
        if data:
            part.image.media_type, part.image.data_base64 = media, data
        else:
            part.image.url = url
        detail = img.get("detail")
        if isinstance(detail, str):
            part.image.detail = detail
        extra = unknown_fields(p, _K_IMAGE)
    else:  # file
        f = p.get("file")
        if not isinstance(f, dict):
            raise _missing(f"{param}.file")
        file_data, filename = f.get("file_data"), f.get("filename")
        part.document.SetInParent()  # a part with only a file_id is still a document
        if isinstance(file_data, str):
            media, data = split_data_url(file_data)
            if data:
                part.document.media_type, part.document.data_base64 = media, data
            else:
                part.document.url = file_data
        if isinstance(filename, str):
            part.document.filename = filename
        extra = unknown_fields(p, _K_FILE)
        file_rest = unknown_fields(f, _K_FILE_INNER)  # file_id: no canonical counterpart
        if file_rest:
            extra["file"] = file_rest
    part.extra_json = dumps_extra(extra)
