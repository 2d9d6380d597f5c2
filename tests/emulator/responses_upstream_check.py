"""Validate an OpenAI Responses request (`POST /v1/responses`) the way api.openai.com does,
in its wording: the parameters `ResponseCreateParams` names (openai-python's types), input
item shapes per type and role, function-call outputs answering an earlier call, reasoning
items that must carry encrypted content the emulator issued when `store` is false, strict
function schemas, the 16-token floor of `max_output_tokens`, and what reasoning models
refuse (`temperature`, `top_p`) or non-reasoning models refuse (`reasoning`).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from tests.emulator.errors import ApiError, openai_error, openai_invalid
from tests.emulator.openai_check import json_type
from tests.emulator.plan import RequestInfo, count_json_tokens

PARAMS = frozenset({
    "background", "context_management", "conversation", "include", "input", "instructions",
    "max_output_tokens", "max_tool_calls", "metadata", "model", "parallel_tool_calls",
    "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_retention",
    "reasoning", "safety_identifier", "service_tier", "store", "stream", "stream_options",
    "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation",
    "user",
    # Not in openai-python's params, but the API takes it: Codex sends it on every request.
    "client_metadata"})
INCLUDABLE = ("code_interpreter_call.outputs", "computer_call_output.output.image_url",
              "file_search_call.results", "message.input_image.image_url",
              "message.output_text.logprobs", "reasoning.encrypted_content",
              "web_search_call.action.sources")
_ROLES = ("user", "assistant", "system", "developer")
_INPUT_PARTS = ("input_text", "input_image", "input_file")
_ASSISTANT_PARTS = ("output_text", "refusal")
_ITEMS = ("message", "function_call", "function_call_output", "reasoning",
          "custom_tool_call", "custom_tool_call_output", "item_reference")
_HOSTED_TOOLS = {"web_search": (), "web_search_preview": (), "file_search": ("vector_store_ids",),
                 "code_interpreter": ("container",), "image_generation": (),
                 "mcp": ("server_label",), "computer_use_preview": (), "local_shell": (),
                 "custom": ("name",)}
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_SUMMARIES = ("auto", "concise", "detailed")
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5", "codex-", "computer-use")
MIN_OUTPUT_TOKENS = 16
_KEY = b"switchyard-emulator-responses-v1"
_ENC_PREFIX = "gAAAAA"   # OpenAI's encrypted content is Fernet-like base64


def reasoning_model(model: str) -> bool:
    return model.startswith(_REASONING_MODELS)


def encrypt(text: str) -> str:
    """Encrypted reasoning the emulator can verify later (HMAC + the text, base64)."""
    raw = text.encode()
    mac = hmac.new(_KEY, raw, hashlib.sha256).digest()
    return _ENC_PREFIX + base64.b64encode(mac + raw).decode()


def decrypt(blob: str) -> str | None:
    """The reasoning text of content `encrypt` issued, else None."""
    if not blob.startswith(_ENC_PREFIX):
        return None
    try:
        raw = base64.b64decode(blob[len(_ENC_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return None
    mac, text = raw[:32], raw[32:]
    if not hmac.compare_digest(mac, hmac.new(_KEY, text, hashlib.sha256).digest()):
        return None
    return text.decode("utf-8", "replace")


def _missing(param: str) -> ApiError:
    return openai_invalid(f"Missing required parameter: '{param}'.", param,
                          "missing_required_parameter")


def _bad_type(param: str, expected: str, got: Any) -> ApiError:
    return openai_invalid(f"Invalid type for '{param}': expected {expected}, but got "
                          f"{json_type(got)} instead.", param, "invalid_type")


def _bad_value(param: str, value: Any, allowed: tuple[str, ...]) -> ApiError:
    listed = ", ".join(f"'{v}'" for v in allowed)
    return openai_invalid(f"Invalid value: '{value}'. Supported values are: {listed}.", param,
                          "invalid_value")


def _unsupported(param: str) -> ApiError:
    return openai_invalid(f"Unsupported parameter: '{param}' is not supported with this model.",
                          param, "unsupported_parameter")


def check_responses(body: Any) -> dict:
    """Raise the ApiError OpenAI would send; the body when it is acceptable."""
    if not isinstance(body, dict):
        raise openai_invalid("We could not parse the JSON body of your request.")
    for key in body:
        if key not in PARAMS:
            raise openai_invalid(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _missing("model")
    if "input" not in body:
        raise _missing("input")
    store = body.get("store", True)
    if not isinstance(store, bool):
        raise _bad_type("store", "a boolean", store)
    if not isinstance(body.get("stream", False), bool):
        raise _bad_type("stream", "a boolean", body["stream"])
    _check_input(body["input"], store)
    _check_tools(body)
    _check_settings(body, model)
    return body


def _check_input(items: Any, store: bool) -> None:
    if isinstance(items, str):
        return
    if not isinstance(items, list):
        raise _bad_type("input", "a string or an array", items)
    calls: set[str] = set()
    for i, item in enumerate(items):
        p = f"input[{i}]"
        if not isinstance(item, dict):
            raise _bad_type(p, "an object", item)
        kind = item.get("type", "message" if "role" in item else None)
        if kind not in _ITEMS:
            raise _bad_value(f"{p}.type", kind, _ITEMS)
        if kind == "message":
            _check_message(item, p)
        elif kind in ("function_call", "custom_tool_call"):
            for key in ("call_id", "name", "arguments" if kind == "function_call" else "input"):
                if not isinstance(item.get(key), str):
                    raise _missing(f"{p}.{key}") if key not in item else \
                        _bad_type(f"{p}.{key}", "a string", item[key])
            calls.add(item["call_id"])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise _missing(f"{p}.call_id")
            if "output" not in item:
                raise _missing(f"{p}.output")
            if not isinstance(item["output"], (str, list)):
                raise _bad_type(f"{p}.output", "a string or an array", item["output"])
            if call_id not in calls:
                raise openai_invalid(f"No tool call found for function call output with "
                                     f"call_id {call_id}.", "input")
        elif kind == "reasoning":
            _check_reasoning(item, p, store)
        else:   # item_reference
            raise openai_error(404, f"Item with id '{item.get('id')}' not found. Items are not "
                                    "persisted when `store` is set to false.", param="input",
                               code=None) if not store else _missing(f"{p}.id")


def _check_message(item: dict, p: str) -> None:
    role = item.get("role")
    if role not in _ROLES:
        raise _bad_value(f"{p}.role", role, _ROLES)
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad_type(f"{p}.content", "a string or an array", content)
    allowed = _ASSISTANT_PARTS if role == "assistant" else _INPUT_PARTS
    for j, part in enumerate(content):
        q = f"{p}.content[{j}]"
        if not isinstance(part, dict):
            raise _bad_type(q, "an object", part)
        kind = part.get("type")
        if kind not in allowed:
            raise _bad_value(f"{q}.type", kind, allowed)
        if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            raise _missing(f"{q}.text")
        if kind == "input_image" and not (part.get("image_url") or part.get("file_id")):
            raise _missing(f"{q}.image_url")
        if kind == "input_file" and not (part.get("file_data") or part.get("file_url")
                                         or part.get("file_id")):
            raise openai_invalid("Expected file_data, file_url or file_id on input_file.", q)
        if kind == "input_file" and part.get("file_data") and not part.get("filename"):
            raise _missing(f"{q}.filename")


def _check_reasoning(item: dict, p: str, store: bool) -> None:
    if not isinstance(item.get("summary"), list):
        raise _missing(f"{p}.summary") if "summary" not in item else \
            _bad_type(f"{p}.summary", "an array", item["summary"])
    encrypted = item.get("encrypted_content")
    if encrypted is None:
        if not store and item.get("id"):
            raise openai_error(404, f"Item with id '{item['id']}' not found. Items are not "
                                    "persisted when `store` is set to false. Try again with "
                                    "`store` set to true, or remove this item from your input.",
                               param="input", code=None)
        if not store:
            raise _missing(f"{p}.encrypted_content")
        return
    if not isinstance(encrypted, str) or decrypt(encrypted) is None:
        raise openai_invalid(f"The encrypted content for item {item.get('id') or p} could not "
                             "be verified.", None, "invalid_encrypted_content")


def _check_strict_schema(name: str, schema: dict, param: str) -> None:
    """Strict mode (the Responses default) wants closed objects with every key required."""
    def walk(node: Any, context: str) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") == "object":
            if node.get("additionalProperties") is not False:
                raise openai_invalid(f"Invalid schema for function '{name}': In context="
                                     f"({context}), 'additionalProperties' is required to be "
                                     "supplied and to be false.", param,
                                     "invalid_function_parameters")
            props = node.get("properties") or {}
            missing = [k for k in props if k not in (node.get("required") or [])]
            if missing:
                raise openai_invalid(f"Invalid schema for function '{name}': In context="
                                     f"({context}), 'required' is required to be supplied and "
                                     "to be an array including every key in properties. Missing "
                                     f"'{missing[0]}'.", param, "invalid_function_parameters")
            for key, sub in props.items():
                walk(sub, f"{context}{', ' if context else ''}'properties', '{key}'")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{context}{', ' if context else ''}'items'")
    walk(schema, "")


def _check_tools(body: dict) -> None:
    tools = body.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad_type("tools", "an array", tools)
        for i, tool in enumerate(tools):
            p = f"tools[{i}]"
            if not isinstance(tool, dict) or "type" not in tool:
                raise _missing(f"{p}.type")
            kind = tool["type"]
            if kind == "function":
                if not isinstance(tool.get("name"), str) or not tool["name"]:
                    raise _missing(f"{p}.name")
                params = tool.get("parameters")
                if params is not None and not isinstance(params, dict):
                    raise _bad_type(f"{p}.parameters", "an object", params)
                if tool.get("strict", True) is not False:
                    _check_strict_schema(tool["name"], params or {}, f"{p}.parameters")
                names.add(tool["name"])
            elif kind in _HOSTED_TOOLS:
                for key in _HOSTED_TOOLS[kind]:
                    if key not in tool:
                        raise _missing(f"{p}.{key}")
            else:
                raise _bad_value(f"{p}.type", kind, ("function", *sorted(_HOSTED_TOOLS)))
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise _bad_value("tool_choice", choice, ("auto", "none", "required"))
    elif isinstance(choice, dict) and choice.get("type") == "function":
        if choice.get("name") not in names:
            raise openai_invalid(f"Tool choice '{choice.get('name')}' not found in 'tools' "
                                 "parameter.", "tool_choice")
    elif not isinstance(choice, dict):
        raise _bad_type("tool_choice", "a string or an object", choice)


def _check_settings(body: dict, model: str) -> None:
    reasons = reasoning_model(model)
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise _bad_type("max_output_tokens", "an integer", limit)
        if limit < MIN_OUTPUT_TOKENS:
            raise openai_invalid(f"Invalid 'max_output_tokens': integer below minimum value. "
                                 f"Expected a value >= {MIN_OUTPUT_TOKENS}, but got {limit} "
                                 "instead.", "max_output_tokens", "integer_below_min_value")
    for key in ("temperature", "top_p"):
        if body.get(key) is not None and reasons:
            raise _unsupported(key)
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise _bad_type("reasoning", "an object", reasoning)
        if not reasons and reasoning.get("effort") is not None:
            raise _unsupported("reasoning.effort")
        if reasoning.get("effort") is not None and reasoning["effort"] not in _EFFORTS:
            raise _bad_value("reasoning.effort", reasoning["effort"], _EFFORTS)
        if reasoning.get("summary") is not None and reasoning["summary"] not in _SUMMARIES:
            raise _bad_value("reasoning.summary", reasoning["summary"], _SUMMARIES)
    include = body.get("include")
    if include is not None:
        if not isinstance(include, list):
            raise _bad_type("include", "an array", include)
        for i, value in enumerate(include):
            if value not in INCLUDABLE:
                raise _bad_value(f"include[{i}]", value, INCLUDABLE)
    text = body.get("text")
    if text is not None:
        if not isinstance(text, dict):
            raise _bad_type("text", "an object", text)
        fmt = text.get("format")
        if fmt is not None:
            kinds = ("text", "json_object", "json_schema")
            if not isinstance(fmt, dict) or fmt.get("type") not in kinds:
                raise _bad_value("text.format.type", (fmt or {}).get("type"), kinds)
            if fmt["type"] == "json_schema":
                for key in ("name", "schema"):
                    if key not in fmt:
                        raise _missing(f"text.format.{key}")
        verbosity = text.get("verbosity")
        if verbosity is not None and verbosity not in ("low", "medium", "high"):
            raise _bad_value("text.verbosity", verbosity, ("low", "medium", "high"))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or () if isinstance(p, dict)
                    and p.get("type") == "input_text")


def responses_info(body: dict) -> RequestInfo:
    """The reply-relevant facts of a valid Responses request."""
    items = body["input"]
    if isinstance(items, str):
        last_user = items
    else:
        last_user = next((_text(i.get("content")) for i in reversed(items)
                          if i.get("type", "message") == "message" and i.get("role") == "user"
                          and _text(i.get("content"))), "")
    fmt = (body.get("text") or {}).get("format") or {}
    mode = "text" if fmt.get("type") in ("json_object", "json_schema") else None
    info = RequestInfo(
        last_user_text=last_user, max_tokens=body.get("max_output_tokens"),
        thinking=(body.get("reasoning") or {}).get("effort") not in (None, "none"),
        input_tokens=max(count_json_tokens(items) + count_json_tokens(body.get("tools") or [])
                         + count_json_tokens(body.get("instructions") or ""), 1),
        json_mode=mode, json_schema=fmt.get("schema") if mode else None,
        offered_tools={t["name"]: t.get("parameters") if t.get("type") == "function" else None
                       for t in body.get("tools") or [] if isinstance(t.get("name"), str)})
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        info.force_tool(choice.get("name"))
    elif choice == "required":
        info.force_any_tool()
    return info
