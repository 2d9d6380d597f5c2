"""Gemini generateContent request decoding: contents, systemInstruction, tools, toolConfig
and generationConfig -> the canonical ChatRequest. Google's JSON parser takes camelCase and
snake_case field names alike (the Python SDK mixes them), so every read accepts both."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.errors import echo, invalid_request
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.fields import check_model, dumps_extra, is_int, is_num
from switchyard.edge.formats.gemini.schema import to_json_schema
from switchyard.edge.formats.gemini.signatures import from_client

# Set by the route from the URL (`:streamGenerateContent`, `?alt=sse`): "sse", "json" or
# absent. A client's own value is overwritten by the route, so it cannot steer this.
STREAM_KEY = "\x00switchyard.stream"
MODEL_PREFIX = "models/"
_CAMEL = re.compile(r"([A-Z])")
_EMPTY_OBJECT_SCHEMA = '{"type":"object","properties":{}}'
# Schema names Chat Completions accepts for json_schema.
_SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(slots=True)
class GeminiContext:
    """What the Gemini encoders read back: the stream's framing."""
    sse: bool = True   # `alt=sse` frames; else one JSON array, streamed


def snake(name: str) -> str:
    """`inlineData` -> `inline_data`."""
    return _CAMEL.sub(r"_\1", name).lower()


def _names(*camel: str) -> frozenset[str]:
    """Both spellings of the fields a decoder names itself."""
    return frozenset(camel) | frozenset(snake(c) for c in camel)


def get(obj: dict[str, Any], camel: str) -> Any:
    """`obj[camel]`, else `obj[snake_case]`, else None."""
    v = obj.get(camel)
    return obj.get(snake(camel)) if v is None else v


def rest(obj: dict[str, Any], named: frozenset[str]) -> dict[str, Any]:
    """The fields of `obj` not in `named` (for extra_json)."""
    if obj.keys() <= named:
        return {}
    return {k: v for k, v in obj.items() if k not in named}


_K_TOP = _names("model", "contents", "systemInstruction", "tools", "toolConfig",
                "generationConfig") | {STREAM_KEY}
_K_CONTENT = _names("role", "parts")
_K_PART = _names("text", "thought", "thoughtSignature", "inlineData", "fileData",
                 "functionCall", "functionResponse")
_K_BLOB = _names("mimeType", "data")
_K_FILE = _names("mimeType", "fileUri")
_K_CALL = _names("id", "name", "args")
_K_RESPONSE = _names("id", "name", "response")
_K_DECL = _names("name", "description", "parameters", "parametersJsonSchema")
_K_TOOL_CONFIG = _names("functionCallingConfig")
_K_CALLING = _names("mode", "allowedFunctionNames")
_K_GEN = _names("temperature", "topP", "topK", "maxOutputTokens", "stopSequences",
                "candidateCount", "responseMimeType", "responseSchema", "responseJsonSchema",
                "thinkingConfig")
_K_THINKING = _names("thinkingBudget", "thinkingLevel")
_ROLES = {"user": chat_pb2.ROLE_USER, "model": chat_pb2.ROLE_ASSISTANT,
          "function": chat_pb2.ROLE_USER}   # "function": the old spelling of a tool turn


def _bad(param: str, what: str) -> Exception:
    return invalid_request(f"Invalid value at '{param}': {what}", param)


def _obj(v: Any, param: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _bad(param, "expected an object")
    return v


def _list(v: Any, param: str) -> list[Any]:
    if not isinstance(v, list):
        raise _bad(param, "expected a list")
    return v


def _str(v: Any, param: str) -> str:
    if not isinstance(v, str):
        raise _bad(param, "expected a string")
    return v


def model_name(path_model: str) -> str:
    """`models/x` or `x` -> `x` (the gateway's model name)."""
    return path_model[len(MODEL_PREFIX):] if path_model.startswith(MODEL_PREFIX) else path_model


def decode_request(body: dict[str, Any]) -> tuple[chat_pb2.ChatRequest, GeminiContext]:
    """Validate a generateContent body and decode it into the canonical ChatRequest."""
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_GEMINI)
    extra = rest(body, _K_TOP)
    model = body.get("model")
    if not isinstance(model, str) or not model_name(model):
        raise invalid_request("model is required: name it in the path, "
                              "/v1beta/models/{model}:generateContent", "model")
    req.model = model_name(model)
    check_model(req.model)
    stream = body.get(STREAM_KEY)
    req.stream = stream in ("sse", "json")
    ctx = GeminiContext(sse=stream != "json")

    _decode_system(get(body, "systemInstruction"), req)
    contents = get(body, "contents")
    if contents is None or (isinstance(contents, list) and not contents):
        raise invalid_request("contents is not specified", "contents")
    _decode_contents(_list(contents, "contents"), req)
    tools = get(body, "tools")
    if tools is not None:
        for i, t in enumerate(_list(tools, "tools")):
            _decode_tool(_obj(t, f"tools[{i}]"), f"tools[{i}]", req)
    config = get(body, "toolConfig")
    if config is not None:
        _decode_tool_config(_obj(config, "tool_config"), req, extra)
    gen = get(body, "generationConfig")
    if gen is not None:
        _decode_generation(_obj(gen, "generation_config"), req, extra)
    req.extra_json = dumps_extra(extra)
    return req, ctx


# ---- contents ----------------------------------------------------------------------------
def _decode_system(system: Any, req: chat_pb2.ChatRequest) -> None:
    """systemInstruction -> leading SYSTEM messages, one per text part."""
    if system is None:
        return
    if isinstance(system, str):
        system = {"parts": [{"text": system}]}
    parts = get(_obj(system, "system_instruction"), "parts")
    for j, p in enumerate(_list(parts or [], "system_instruction.parts")):
        param = f"system_instruction.parts[{j}]"
        text = get(_obj(p, param), "text")
        if text is None:
            raise _bad(param, "systemInstruction takes text parts only")
        req.messages.append(chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, parts=[
            chat_pb2.ContentPart(text=chat_pb2.TextPart(text=_str(text, f"{param}.text")))]))


def _decode_contents(contents: list[Any], req: chat_pb2.ChatRequest) -> None:
    # Gemini function calls may come without ids: a call gets one by position, and a
    # response without an id answers the oldest open call of its name.
    open_calls: dict[str, list[str]] = {}
    for i, c in enumerate(contents):
        param = f"contents[{i}]"
        c = _obj(c, param)
        role = get(c, "role") or "user"
        if not isinstance(role, str) or role not in _ROLES:
            raise _bad(f"{param}.role", f"'{echo(str(role))}' is not a role: use 'user' "
                                        "or 'model'")
        parts = get(c, "parts")
        if not parts:
            raise invalid_request(f"{param}.parts must not be empty", f"{param}.parts")
        msg = req.messages.add()
        msg.role = _ROLES[role]
        msg.extra_json = dumps_extra(rest(c, _K_CONTENT))
        for j, p in enumerate(_list(parts, f"{param}.parts")):
            _decode_part(_obj(p, f"{param}.parts[{j}]"), f"{param}.parts[{j}]",
                         msg.parts.add(), open_calls)


def _decode_part(p: dict[str, Any], param: str, part: chat_pb2.ContentPart,
                 open_calls: dict[str, list[str]]) -> None:
    """One Part. A thoughtSignature on a thought part is the reasoning's signature; on any
    other part it rides in the part's extra_json (only a Gemini upstream can use it)."""
    extra = rest(p, _K_PART)
    signature = get(p, "thoughtSignature")
    if signature is not None:
        signature = from_client(_str(signature, f"{param}.thought_signature"))
    text = get(p, "text")
    if get(p, "thought") is True:
        part.reasoning.text = _str(text or "", f"{param}.text")
        part.reasoning.signature = signature or ""
        signature = None
    elif text is not None:
        part.text.text = _str(text, f"{param}.text")
    elif (blob := get(p, "inlineData")) is not None:
        blob = _obj(blob, f"{param}.inline_data")
        media = _str(get(blob, "mimeType"), f"{param}.inline_data.mime_type")
        data = _str(get(blob, "data"), f"{param}.inline_data.data")
        if media.startswith("image/"):
            part.image.media_type, part.image.data_base64 = media, data
        else:
            part.document.media_type, part.document.data_base64 = media, data
        _nested_extra(extra, "inlineData", blob, _K_BLOB)
    elif (file := get(p, "fileData")) is not None:
        file = _obj(file, f"{param}.file_data")
        uri = _str(get(file, "fileUri"), f"{param}.file_data.file_uri")
        media = _str(get(file, "mimeType") or "", f"{param}.file_data.mime_type")
        if media.startswith("image/"):
            part.image.url, part.image.media_type = uri, media
        else:
            part.document.url, part.document.media_type = uri, media
        _nested_extra(extra, "fileData", file, _K_FILE)
    elif (call := get(p, "functionCall")) is not None:
        _decode_call(_obj(call, f"{param}.function_call"), f"{param}.function_call",
                     part.tool_call, open_calls, extra)
    elif (resp := get(p, "functionResponse")) is not None:
        _decode_function_response(_obj(resp, f"{param}.function_response"),
                                  f"{param}.function_response", part.tool_result, open_calls,
                                  extra)
    else:
        kinds = ", ".join(echo(k) for k in p) or "none"
        raise _bad(param, f"a part needs one of text, inline_data, file_data, function_call, "
                          f"function_response; the gateway does not carry ({kinds})")
    if signature:
        extra["thoughtSignature"] = signature
    part.extra_json = dumps_extra(extra)


def _nested_extra(extra: dict[str, Any], key: str, obj: dict[str, Any],
                  named: frozenset[str]) -> None:
    unnamed = rest(obj, named)
    if unnamed:
        extra[key] = unnamed


def _decode_call(call: dict[str, Any], param: str, tc: chat_pb2.ToolCallPart,
                 open_calls: dict[str, list[str]], extra: dict[str, Any]) -> None:
    tc.name = _str(get(call, "name"), f"{param}.name")
    args = get(call, "args")
    tc.arguments_json = orjson.dumps(_obj(args, f"{param}.args") if args is not None
                                     else {}).decode()
    call_id = get(call, "id")
    # A positional id stays unique within the request: it counts every call seen so far.
    tc.id = (_str(call_id, f"{param}.id") if call_id
             else f"call_{sum(map(len, open_calls.values()))}_{tc.name}")
    open_calls.setdefault(tc.name, []).append(tc.id)
    _nested_extra(extra, "functionCall", call, _K_CALL)


def _decode_function_response(resp: dict[str, Any], param: str, tr: chat_pb2.ToolResultPart,
                              open_calls: dict[str, list[str]],
                              extra: dict[str, Any]) -> None:
    name = _str(get(resp, "name"), f"{param}.name")
    call_id = get(resp, "id")
    waiting = open_calls.get(name) or []
    if call_id:
        tr.tool_call_id = _str(call_id, f"{param}.id")
        if tr.tool_call_id in waiting:
            waiting.remove(tr.tool_call_id)
    else:
        tr.tool_call_id = waiting.pop(0) if waiting else name
    result = get(resp, "response")
    result = _obj(result if result is not None else {}, f"{param}.response")
    # The SDK wraps a return value as {"result": v} (an exception as {"error": v}); a lone
    # string is the tool's text as every other format writes it.
    text: Any = result
    if len(result) == 1:
        key, value = next(iter(result.items()))
        if key in ("result", "output", "error"):
            text = value
            tr.is_error = key == "error"
    tr.content.add().text.text = text if isinstance(text, str) else orjson.dumps(text).decode()
    _nested_extra(extra, "functionResponse", resp, _K_RESPONSE)


# ---- tools -------------------------------------------------------------------------------
def _decode_tool(t: dict[str, Any], param: str, req: chat_pb2.ChatRequest) -> None:
    """functionDeclarations become function tools; any other key (googleSearch,
    codeExecution, ...) a native tool whose `type` is that key and extra_json its value."""
    for key, value in t.items():
        if key in ("functionDeclarations", "function_declarations"):
            for i, d in enumerate(_list(value, f"{param}.function_declarations")):
                req.tools.append(_declaration(_obj(d, f"{param}.function_declarations[{i}]"),
                                              f"{param}.function_declarations[{i}]"))
        else:
            native = chat_pb2.Tool(type=key)
            if isinstance(value, dict):
                native.extra_json = dumps_extra(value)
            req.tools.append(native)


def _declaration(d: dict[str, Any], param: str) -> chat_pb2.Tool:
    tool = chat_pb2.Tool(type="function", name=_str(get(d, "name"), f"{param}.name"))
    if not tool.name:
        raise _bad(f"{param}.name", "a function declaration needs a name")
    tool.description = _str(get(d, "description") or "", f"{param}.description")
    schema = get(d, "parametersJsonSchema")
    if schema is None and (gemini := get(d, "parameters")) is not None:
        schema = to_json_schema(_obj(gemini, f"{param}.parameters"))
    tool.parameters_json = (orjson.dumps(_obj(schema, f"{param}.parameters_json_schema"))
                            .decode() if schema is not None else _EMPTY_OBJECT_SCHEMA)
    tool.extra_json = dumps_extra(rest(d, _K_DECL))
    return tool


def _decode_tool_config(config: dict[str, Any], req: chat_pb2.ChatRequest,
                        extra: dict[str, Any]) -> None:
    unnamed = rest(config, _K_TOOL_CONFIG)
    calling = get(config, "functionCallingConfig")
    if calling is not None:
        calling = _obj(calling, "tool_config.function_calling_config")
        param = "tool_config.function_calling_config.mode"
        mode_name = get(calling, "mode") or "AUTO"
        mode = (mappings.GEMINI_TOOL_CHOICE.get(mode_name.upper())
                if isinstance(mode_name, str) else None)
        if mode is None:
            raise _bad(param, f"'{echo(str(mode_name))}' is not a mode: use AUTO, ANY, NONE "
                              "or VALIDATED")
        req.tool_choice.mode = mode
        names = get(calling, "allowedFunctionNames")
        if names is not None:
            names = _list(names, "tool_config.function_calling_config.allowed_function_names")
            if mode == chat_pb2.ToolChoice.MODE_REQUIRED and len(names) == 1:
                req.tool_choice.mode = chat_pb2.ToolChoice.MODE_NAMED
                req.tool_choice.name = _str(names[0], "allowed_function_names[0]")
            else:   # several names: no canonical counterpart, kept for a Gemini upstream
                unnamed["functionCallingConfig"] = {"allowedFunctionNames": names}
        more = rest(calling, _K_CALLING)
        if more:
            unnamed.setdefault("functionCallingConfig", {}).update(more)
    if unnamed:
        extra["toolConfig"] = unnamed


# ---- generationConfig --------------------------------------------------------------------
def _decode_generation(gen: dict[str, Any], req: chat_pb2.ChatRequest,
                       extra: dict[str, Any]) -> None:
    unnamed = rest(gen, _K_GEN)
    for camel, attr, hi in (("temperature", "temperature", 2.0), ("topP", "top_p", 1.0)):
        v = get(gen, camel)
        if v is None:
            continue
        param = f"generation_config.{snake(camel)}"
        if not is_num(v):
            raise _bad(param, "expected a number")
        if not 0.0 <= v <= hi:
            raise _bad(param, f"must be between 0 and {hi:g}")
        setattr(req, attr, float(v))
    top_k = get(gen, "topK")
    if top_k is not None:   # a float on Google's wire; the canonical model counts in ints
        if not is_num(top_k) or top_k < 1 or int(top_k) != top_k or top_k >= 2**31:
            raise _bad("generation_config.top_k", "expected a whole number of at least 1")
        req.top_k = int(top_k)
    max_out = get(gen, "maxOutputTokens")
    if max_out is not None:
        if not is_int(max_out) or max_out < 1:
            raise _bad("generation_config.max_output_tokens", "expected a positive integer")
        req.max_tokens = max_out
    stops = get(gen, "stopSequences")
    if stops is not None:
        for i, s in enumerate(_list(stops, "generation_config.stop_sequences")):
            req.stop.append(_str(s, f"generation_config.stop_sequences[{i}]"))
    count = get(gen, "candidateCount")
    if count is not None and count != 1:
        raise _bad("generation_config.candidate_count",
                   "the gateway answers with one candidate; send 1 or leave it out")
    _decode_output_format(gen, req, unnamed)
    thinking = get(gen, "thinkingConfig")
    if thinking is not None:
        _decode_thinking(_obj(thinking, "generation_config.thinking_config"), req, unnamed)
    if unnamed:
        extra["generationConfig"] = unnamed


def _decode_output_format(gen: dict[str, Any], req: chat_pb2.ChatRequest,
                          unnamed: dict[str, Any]) -> None:
    """responseMimeType + responseSchema / responseJsonSchema -> Chat Completions'
    `response_format` shape in `response_format_json` (as the Responses codec does)."""
    mime = get(gen, "responseMimeType")
    gemini_schema = get(gen, "responseSchema")
    schema = get(gen, "responseJsonSchema")
    if schema is None:
        schema = gen.get("_responseJsonSchema")
    if mime is not None:
        mime = _str(mime, "generation_config.response_mime_type")
    if mime not in (None, "text/plain", "application/json"):
        # text/x.enum and friends: no canonical counterpart; a Gemini upstream keeps them.
        unnamed["responseMimeType"] = mime
        if gemini_schema is not None:
            unnamed["responseSchema"] = gemini_schema
        if schema is not None:
            unnamed["responseJsonSchema"] = schema
        return
    if (gemini_schema is not None or schema is not None) and mime != "application/json":
        raise _bad("generation_config.response_mime_type",
                   "a response schema needs response_mime_type 'application/json'")
    if mime != "application/json":
        return
    if schema is None and gemini_schema is not None:
        schema = to_json_schema(_obj(gemini_schema, "generation_config.response_schema"))
    if schema is None:
        req.response_format_json = orjson.dumps({"type": "json_object"})
        return
    schema = _obj(schema, "generation_config.response_json_schema")
    title = schema.get("title")
    name = title if isinstance(title, str) and _SCHEMA_NAME.fullmatch(title) else "response"
    req.response_format_json = orjson.dumps(
        {"type": "json_schema", "json_schema": {"name": name, "schema": schema}})


def _decode_thinking(thinking: dict[str, Any], req: chat_pb2.ChatRequest,
                     unnamed: dict[str, Any]) -> None:
    """thinkingBudget (-1 dynamic, 0 off) or thinkingLevel -> canonical reasoning;
    includeThoughts has no counterpart (thoughts are always shown) and rides along."""
    kept = rest(thinking, _K_THINKING)
    budget = get(thinking, "thinkingBudget")
    if budget is not None:
        if not is_int(budget) or budget < -1:
            raise _bad("generation_config.thinking_config.thinking_budget",
                       "expected -1 (dynamic), 0 (off) or a positive integer")
        if budget == 0:
            kept["thinkingBudget"] = 0   # thinking off: only a Gemini upstream has the switch
        elif budget == -1:
            req.reasoning.enabled = True
            req.reasoning.effort = "medium"
        else:
            req.reasoning.enabled = True
            req.reasoning.budget_tokens = budget
    level = get(thinking, "thinkingLevel")
    if level is not None:
        effort = (mappings.GEMINI_THINKING_LEVEL.get(level.upper())
                  if isinstance(level, str) else None)
        if effort is None:
            raise _bad("generation_config.thinking_config.thinking_level",
                       "expected MINIMAL, LOW, MEDIUM or HIGH")
        req.reasoning.enabled = True
        req.reasoning.effort = effort
    if kept:
        unnamed["thinkingConfig"] = kept
