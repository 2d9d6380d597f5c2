"""Validate an OpenAI Chat Completions request the way api.openai.com does (same wording)."""
from __future__ import annotations

import re
from typing import Any

from tests.emulator.errors import openai_invalid
from tests.emulator.plan import RequestInfo, count_json_tokens

ROLES = ("system", "developer", "user", "assistant", "tool")
_ROLE_LIST = "'system', 'assistant', 'user', 'tool', and 'developer'"
# Content part types each role may send.
_PART_TYPES: dict[str, tuple[str, ...]] = {
    "user": ("text", "image_url", "input_audio", "file"),
    "system": ("text",), "developer": ("text",), "tool": ("text",),
    "assistant": ("text", "refusal"),
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def json_type(v: Any) -> str:
    """How OpenAI names a JSON value's type in its errors."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a decimal"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _supported(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _missing(param: str):
    return openai_invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _bad_type(param: str, expected: str, got: Any):
    return openai_invalid(f"Invalid type for '{param}': expected {expected}, but got "
                          f"{json_type(got)} instead.", param, "invalid_type")


def _bad_value(param: str, value: Any, allowed: tuple[str, ...]):
    return openai_invalid(f"Invalid value: '{value}'. Supported values are: {_supported(allowed)}.",
                          param, "invalid_value")


def _check_pos_int(body: dict, key: str) -> None:
    if key not in body or body[key] is None:
        return
    v = body[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad_type(key, "an integer", v)
    if v < 1:
        raise openai_invalid(f"Invalid '{key}': integer below minimum value. Expected a value >= 1, "
                             f"but got {v} instead.", key, "integer_below_min_value")


def _check_parts(i: int, role: str, content: list) -> None:
    base = f"messages[{i}].content"
    if not content:
        raise openai_invalid(f"Invalid '{base}': empty array. Expected an array with minimum length 1, "
                             "but got an empty array instead.", base, "empty_array")
    allowed = _PART_TYPES[role]
    for j, part in enumerate(content):
        p = f"{base}[{j}]"
        if not isinstance(part, dict):
            raise _bad_type(p, "an object", part)
        if "type" not in part:
            raise _missing(f"{p}.type")
        if part["type"] not in allowed:
            raise _bad_value(f"{p}.type", part["type"], allowed)
        if part["type"] in ("text", "refusal"):
            key = part["type"]
            if key not in part:
                raise _missing(f"{p}.{key}")
            if not isinstance(part[key], str):
                raise _bad_type(f"{p}.{key}", "a string", part[key])
        elif part["type"] == "image_url":
            img = part.get("image_url")
            if img is None:
                raise _missing(f"{p}.image_url")
            if not isinstance(img, dict):
                raise _bad_type(f"{p}.image_url", "an object", img)
            if not isinstance(img.get("url"), str):
                raise _missing(f"{p}.image_url.url")


def _check_tool_calls(i: int, calls: Any) -> None:
    base = f"messages[{i}].tool_calls"
    if not isinstance(calls, list):
        raise _bad_type(base, "an array", calls)
    for j, call in enumerate(calls):
        p = f"{base}[{j}]"
        if not isinstance(call, dict):
            raise _bad_type(p, "an object", call)
        for key in ("id", "type", "function"):
            if key not in call:
                raise _missing(f"{p}.{key}")
        if call["type"] != "function":
            raise _bad_value(f"{p}.type", call["type"], ("function",))
        fn = call["function"]
        if not isinstance(fn, dict):
            raise _bad_type(f"{p}.function", "an object", fn)
        for key in ("name", "arguments"):
            if key not in fn:
                raise _missing(f"{p}.function.{key}")
            if not isinstance(fn[key], str):
                raise _bad_type(f"{p}.function.{key}", "a string", fn[key])


def _check_message(i: int, m: Any) -> None:
    p = f"messages[{i}]"
    if not isinstance(m, dict):
        raise _bad_type(p, "an object", m)
    if "role" not in m:
        raise _missing(f"{p}.role")
    role = m["role"]
    if role not in ROLES:
        raise _bad_value(f"{p}.role", role, ROLES)
    content = m.get("content")
    if role == "assistant":
        if m.get("tool_calls") is not None:
            _check_tool_calls(i, m["tool_calls"])
        if content is None and not m.get("tool_calls") and not m.get("refusal"):
            raise openai_invalid("Invalid value for 'content': expected a string, got null.",
                                 f"messages.[{i}].content")
    elif "content" not in m or content is None:
        raise _missing(f"{p}.content")
    if role == "tool":
        if "tool_call_id" not in m:
            raise _missing(f"{p}.tool_call_id")
        if not isinstance(m["tool_call_id"], str):
            raise _bad_type(f"{p}.tool_call_id", "a string", m["tool_call_id"])
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad_type(f"{p}.content", "one of a string or array of objects", content)
    _check_parts(i, role, content)


def _check_tool_pairing(messages: list) -> None:
    """Tool messages answer the preceding assistant's calls; every call is answered in time."""
    open_calls: dict[str, bool] = {}  # id -> answered, for the current assistant turn
    owner = -1
    for i, m in enumerate(messages):
        if m["role"] == "tool":
            if owner < 0 or m["tool_call_id"] not in open_calls:
                raise openai_invalid("Invalid parameter: messages with role 'tool' must be a response "
                                     "to a preceeding message with 'tool_calls'.", f"messages.[{i}].role")
            open_calls[m["tool_call_id"]] = True
            continue
        missing = [cid for cid, done in open_calls.items() if not done]
        if missing:
            raise openai_invalid(
                "An assistant message with 'tool_calls' must be followed by tool messages responding "
                "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(missing), f"messages.[{owner}].role")
        open_calls, owner = {}, -1
        if m["role"] == "assistant" and m.get("tool_calls"):
            open_calls = {c["id"]: False for c in m["tool_calls"]}
            owner = i
    missing = [cid for cid, done in open_calls.items() if not done]
    if missing:
        raise openai_invalid(
            "An assistant message with 'tool_calls' must be followed by tool messages responding "
            "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
            + ", ".join(missing), f"messages.[{owner}].role")


def _check_tools(body: dict) -> None:
    tools = body.get("tools")
    if tools is None:
        if body.get("tool_choice") is not None:
            raise openai_invalid("Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                                 "'tools' are specified.", "tool_choice")
        return
    if not isinstance(tools, list):
        raise _bad_type("tools", "an array", tools)
    for j, tool in enumerate(tools):
        p = f"tools[{j}]"
        if not isinstance(tool, dict):
            raise _bad_type(p, "an object", tool)
        if "type" not in tool:
            raise _missing(f"{p}.type")
        if tool["type"] != "function":
            raise _bad_value(f"{p}.type", tool["type"], ("function",))
        fn = tool.get("function")
        if fn is None:
            raise _missing(f"{p}.function")
        if not isinstance(fn, dict):
            raise _bad_type(f"{p}.function", "an object", fn)
        if "name" not in fn:
            raise _missing(f"{p}.function.name")
        if not isinstance(fn["name"], str) or not _TOOL_NAME.match(fn["name"]):
            raise openai_invalid(f"Invalid '{p}.function.name': string does not match pattern. Expected "
                                 "a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                                 f"{p}.function.name", "invalid_value")
        if fn.get("parameters") is not None and not isinstance(fn["parameters"], dict):
            raise _bad_type(f"{p}.function.parameters", "an object", fn["parameters"])


def _check_scalars(body: dict) -> None:
    _check_pos_int(body, "max_tokens")
    _check_pos_int(body, "max_completion_tokens")
    _check_pos_int(body, "n")
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise _bad_type("stream", "a boolean", body["stream"])
    if body.get("stream_options") is not None:
        if not body.get("stream"):
            raise openai_invalid("The 'stream_options' parameter is only allowed when 'stream' is "
                                 "enabled.", "stream_options")
        if not isinstance(body["stream_options"], dict):
            raise _bad_type("stream_options", "an object", body["stream_options"])
    t = body.get("temperature")
    if t is not None:
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise _bad_type("temperature", "a decimal", t)
        if not 0 <= t <= 2:
            raise openai_invalid(f"Invalid 'temperature': decimal above maximum value. Expected a value "
                                 f"<= 2, but got {t} instead.", "temperature", "decimal_above_max_value")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _bad_type("stop", "one of a string or array of strings", stop)
        if len(stop) > 4:
            raise openai_invalid(f"Invalid 'stop': array too long. Expected an array with maximum length "
                                 f"4, but got an array with length {len(stop)} instead.", "stop",
                                 "array_above_max_length")


_SCHEMA_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_FORMAT_TYPES = ("text", "json_object", "json_schema")
_JSON_SCHEMA_KEYS = frozenset({"name", "schema", "strict", "description"})
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def _mentions_json(messages: list) -> bool:
    return any("json" in _text_of(m.get("content")).lower() for m in messages
               if isinstance(m, dict))


def _check_response_format(body: dict) -> None:
    """`response_format` as the API takes it (json_object needs "json" in the messages)."""
    fmt = body.get("response_format")
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise _bad_type("response_format", "an object", fmt)
    if "type" not in fmt:
        raise _missing("response_format.type")
    if fmt["type"] not in _FORMAT_TYPES:
        raise _bad_value("response_format.type", fmt["type"], _FORMAT_TYPES)
    extra = set(fmt) - {"type", "json_schema"} if fmt["type"] == "json_schema" else set(fmt) - {"type"}
    if extra:
        raise openai_invalid(f"Unrecognized request argument supplied: response_format.{sorted(extra)[0]}",
                             f"response_format.{sorted(extra)[0]}", "unknown_parameter")
    if fmt["type"] == "json_object" and not _mentions_json(body["messages"]):
        raise openai_invalid("'messages' must contain the word 'json' in some form, to use "
                             "'response_format' of type 'json_object'.", "messages")
    if fmt["type"] != "json_schema":
        return
    spec = fmt.get("json_schema")
    if spec is None:
        raise _missing("response_format.json_schema")
    if not isinstance(spec, dict):
        raise _bad_type("response_format.json_schema", "an object", spec)
    for k in spec:
        if k not in _JSON_SCHEMA_KEYS:
            raise openai_invalid(f"Unrecognized request argument supplied: response_format.json_schema.{k}",
                                 f"response_format.json_schema.{k}", "unknown_parameter")
    if "name" not in spec:
        raise _missing("response_format.json_schema.name")
    if not isinstance(spec["name"], str) or not _SCHEMA_NAME.match(spec["name"]):
        raise openai_invalid("Invalid 'response_format.json_schema.name': string does not match pattern. "
                             "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                             "response_format.json_schema.name", "invalid_value")
    if spec.get("schema") is not None and not isinstance(spec["schema"], dict):
        raise _bad_type("response_format.json_schema.schema", "an object", spec["schema"])
    if spec.get("strict") is not None and not isinstance(spec["strict"], bool):
        raise _bad_type("response_format.json_schema.strict", "a boolean", spec["strict"])


# Responses API parameters (what Codex sends) that Chat Completions does not know: the API
# refuses each as an unrecognized argument, so one leaking through a translation fails here.
_RESPONSES_ONLY = ("input", "instructions", "include", "text", "reasoning", "client_metadata",
                   "previous_response_id", "max_output_tokens", "truncation", "conversation",
                   "background", "max_tool_calls", "prompt", "context_management")
_VERBOSITY = ("low", "medium", "high")


def _check_agent_fields(body: dict) -> None:
    """reasoning_effort, prompt_cache_key, verbosity, parallel_tool_calls, store: the values
    the API accepts; Responses-only parameters are unrecognized."""
    for k in _RESPONSES_ONLY:
        if k in body:
            raise openai_invalid(f"Unrecognized request argument supplied: {k}")
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in _EFFORTS:
        raise _bad_value("reasoning_effort", effort, _EFFORTS)
    verbosity = body.get("verbosity")
    if verbosity is not None and verbosity not in _VERBOSITY:
        raise _bad_value("verbosity", verbosity, _VERBOSITY)
    for k in ("parallel_tool_calls", "store"):
        if body.get(k) is not None and not isinstance(body[k], bool):
            raise _bad_type(k, "a boolean", body[k])
    key = body.get("prompt_cache_key")
    if key is not None and not isinstance(key, str):
        raise _bad_type("prompt_cache_key", "a string", key)


def check_openai(body: Any, *, azure: bool = False) -> None:
    """Raise `ApiError` (400, OpenAI's wording) if the request would be refused upstream."""
    if not isinstance(body, dict):
        raise openai_invalid("We could not parse the JSON body of your request. (HINT: This likely "
                             "means you aren't using your HTTP library correctly. The OpenAI API "
                             "expects a JSON payload, but what was sent was not valid JSON.)")
    model = body.get("model")
    if not azure and (not isinstance(model, str) or not model):
        raise openai_invalid("you must provide a model parameter")
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _bad_type("messages", "an array", messages)
    if not messages:
        raise openai_invalid("Invalid 'messages': empty array. Expected an array with minimum length 1, "
                             "but got an empty array instead.", "messages", "empty_array")
    for i, m in enumerate(messages):
        _check_message(i, m)
    _check_tool_pairing(messages)
    _check_tools(body)
    _check_scalars(body)
    _check_response_format(body)
    _check_agent_fields(body)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def openai_info(body: dict) -> RequestInfo:
    """The reply-relevant facts of a (valid) OpenAI request."""
    messages = body.get("messages") or []
    last_user = next((_text_of(m.get("content")) for m in reversed(messages)
                      if isinstance(m, dict) and m.get("role") == "user"), "")
    stop = body.get("stop")
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    fmt = body.get("response_format") or {}
    mode = "text" if fmt.get("type") in ("json_object", "json_schema") else None
    info = RequestInfo(
        last_user_text=last_user,
        max_tokens=limit if isinstance(limit, int) else None,
        stop=[stop] if isinstance(stop, str) else list(stop or []),
        input_tokens=max(count_json_tokens(messages) + count_json_tokens(body.get("tools") or []), 1),
        n=body.get("n") or 1,
        json_mode=mode, json_schema=(fmt.get("json_schema") or {}).get("schema") if mode else None,
        offered_tools={t["function"]["name"]: t["function"].get("parameters")
                       for t in body.get("tools") or [] if isinstance(t, dict)
                       and isinstance(t.get("function"), dict) and "name" in t["function"]},
    )
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        info.force_tool((choice.get("function") or {}).get("name"))
        info.named_call_finish = "stop"
    elif choice == "required":
        info.force_any_tool()
    return info
