"""Validate a Gemini generateContent request the way generativelanguage.googleapis.com does.

Google's JSON parser accepts a field by its lowerCamel JSON name or its proto (snake_case)
name and refuses any other with "Unknown name"; the checks below follow the API's rules for
roles, function-call pairing and (on thinking models) thought signatures.
"""
from __future__ import annotations

import re
from typing import Any

import orjson

from tests.emulator.errors import ApiError, gemini_invalid, gemini_unknown_field
from tests.emulator.plan import RequestInfo, count_json_tokens
from tests.emulator.text import sign_gemini, verify_gemini

_REQUEST = frozenset({"contents", "tools", "toolConfig", "safetySettings", "systemInstruction",
                      "generationConfig", "cachedContent"})
_COUNT = frozenset({"contents", "generateContentRequest"})
_CONTENT = frozenset({"role", "parts"})
_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
         "codeExecutionResult")
_PART = frozenset({*_DATA, "thought", "thoughtSignature", "videoMetadata", "partMetadata",
                   "mediaResolution"})
_BLOB = frozenset({"mimeType", "data", "displayName"})
_FILE = frozenset({"mimeType", "fileUri", "displayName"})
_CALL = frozenset({"id", "name", "args"})
_RESPONSE = frozenset({"id", "name", "response", "parts", "willContinue", "scheduling"})
_GEN = frozenset({"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
                  "_responseJsonSchema", "responseModalities", "candidateCount",
                  "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
                  "frequencyPenalty", "responseLogprobs", "logprobs",
                  "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "imageConfig",
                  "mediaResolution"})
_THINKING = frozenset({"includeThoughts", "thinkingBudget", "thinkingLevel"})
_TOOL = frozenset({"functionDeclarations", "googleSearchRetrieval", "codeExecution",
                   "googleSearch", "computerUse", "urlContext", "fileSearch", "googleMaps"})
_DECL = frozenset({"name", "description", "behavior", "parameters", "parametersJsonSchema",
                   "response", "responseJsonSchema"})
_TOOL_CONFIG = frozenset({"functionCallingConfig", "retrievalConfig"})
_CALLING = frozenset({"mode", "allowedFunctionNames"})
_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
_FN_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$")
# Google documents these values as "skip validation" for calls it did not issue.
SKIP_SIGNATURES = frozenset({"skip_thought_signature_validator",
                             "context_engineering_is_the_way_to_go"})
_SIG_DOCS = "https://ai.google.dev/gemini-api/docs/thought-signatures"
_SNAKE = re.compile(r"_([a-z])")


def _camel(key: str) -> str:
    return key if key.startswith("_") else _SNAKE.sub(lambda m: m.group(1).upper(), key)


def _norm(obj: dict, allowed: frozenset[str], where: str) -> dict:
    """`obj` with snake_case names read as lowerCamel; an unknown name is Google's 400."""
    out = {}
    for k, v in obj.items():
        name = _camel(k)
        if name not in allowed:
            raise gemini_unknown_field(k, where)
        out[name] = v
    return out


def _obj(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise gemini_invalid(f"Invalid value at '{where}', expected an object.")
    return value


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise gemini_invalid(f"Invalid value at '{where}', expected a list.")
    return value


def _call_text(name: str, args: Any) -> str:
    return f"functionCall:{name}:" + orjson.dumps(args or {}, option=orjson.OPT_SORT_KEYS).decode()


def call_signature(name: str, args: Any) -> str:
    """The signature the emulator issues on a model's functionCall part (HMAC of the call)."""
    return sign_gemini(_call_text(name, args))


def _check_part(part: Any, where: str, role: str) -> dict:
    p = _norm(_obj(part, where), _PART, where)
    data = [k for k in _DATA if k in p]
    if len(data) != 1 or (data == ["text"] and not p["text"] and not p.get("thoughtSignature")):
        raise gemini_invalid(f"* GenerateContentRequest.{where}.data: required oneof field 'data' "
                             "must have one initialized field")
    kind = data[0]
    if kind == "text" and not isinstance(p["text"], str):
        raise gemini_invalid(f"Invalid value at '{where}.text' (TYPE_STRING)")
    if kind == "inlineData":
        blob = _norm(_obj(p["inlineData"], f"{where}.inline_data"), _BLOB, f"{where}.inline_data")
        if not blob.get("mimeType") or not isinstance(blob.get("data"), str):
            raise gemini_invalid(f"* GenerateContentRequest.{where}.inline_data.mime_type and data "
                                 "are required")
    elif kind == "fileData":
        f = _norm(_obj(p["fileData"], f"{where}.file_data"), _FILE, f"{where}.file_data")
        if not f.get("fileUri"):
            raise gemini_invalid(f"* GenerateContentRequest.{where}.file_data.file_uri: "
                                 "file_uri is required")
    elif kind == "functionCall":
        if role != "model":
            raise gemini_invalid("Please ensure that function call turns come from the model.")
        call = _norm(_obj(p["functionCall"], f"{where}.function_call"), _CALL,
                     f"{where}.function_call")
        if not call.get("name"):
            raise gemini_invalid(f"* GenerateContentRequest.{where}.function_call.name: "
                                 "Name cannot be empty.")
        if "args" in call and not isinstance(call["args"], dict):
            raise gemini_invalid(f"Invalid value at '{where}.function_call.args' "
                                 "(type.googleapis.com/google.protobuf.Struct)")
        p["functionCall"] = call
    elif kind == "functionResponse":
        if role != "user":
            raise gemini_invalid("Please ensure that function responses come from the user.")
        resp = _norm(_obj(p["functionResponse"], f"{where}.function_response"), _RESPONSE,
                     f"{where}.function_response")
        if not resp.get("name"):
            raise gemini_invalid(f"* GenerateContentRequest.{where}.function_response.name: "
                                 "Name cannot be empty.")
        if not isinstance(resp.get("response"), dict):
            raise gemini_invalid(f"Invalid value at '{where}.function_response.response' "
                                 "(type.googleapis.com/google.protobuf.Struct)")
        p["functionResponse"] = resp
    sig = p.get("thoughtSignature")
    if sig is not None and not isinstance(sig, str):
        raise gemini_invalid(f"Invalid value at '{where}.thought_signature' (TYPE_BYTES)")
    return p


def _check_content(content: Any, where: str, system: bool = False) -> dict:
    c = _norm(_obj(content, where), _CONTENT, where)
    role = c.get("role") or "user"
    if not system and role not in ("user", "model"):
        raise gemini_invalid("Please use a valid role: user, model.")
    parts = _list(c.get("parts", []), f"{where}.parts")
    if not parts:
        raise gemini_invalid(f"* GenerateContentRequest.{where}.parts: contents.parts must not "
                             "be empty.")
    c["role"] = role
    c["parts"] = [_check_part(p, f"{where}.parts[{j}]", role) for j, p in enumerate(parts)]
    return c


def _kinds(c: dict, kind: str) -> list[dict]:
    return [p[kind] for p in c["parts"] if kind in p]


def _check_pairing(contents: list[dict]) -> None:
    """A functionCall turn follows a user turn; the next turn answers each call by name."""
    for i, c in enumerate(contents):
        calls = _kinds(c, "functionCall")
        if calls and (i == 0 or contents[i - 1]["role"] != "user"):
            raise gemini_invalid("Please ensure that function call turn comes immediately after a "
                                 "user turn or after a function response turn.")
        responses = _kinds(c, "functionResponse")
        if not responses:
            continue
        prev = _kinds(contents[i - 1], "functionCall") if i > 0 and \
            contents[i - 1]["role"] == "model" else []
        if not prev:
            raise gemini_invalid("Please ensure that function response turn comes immediately "
                                 "after a function call turn.")
        if len(responses) != len(prev):
            raise gemini_invalid("Please ensure that the number of function response parts is "
                                 "equal to the number of function call parts of the function "
                                 "call turn.")
        names = {call["name"] for call in prev}
        for r in responses:
            if r["name"] not in names:
                raise gemini_invalid(f"Function response name '{r['name']}' does not match any "
                                     "function call in the previous turn.")


def _check_signatures(contents: list[dict], required: bool) -> None:
    """Every signature sent back must be one the emulator issued (or Google's documented skip
    values); on thinking models the first functionCall of each model turn of the current
    turn (since the last user text) must carry its signature."""
    for i, c in enumerate(contents):
        if c["role"] != "model":
            continue
        for j, p in enumerate(c["parts"]):
            sig = p.get("thoughtSignature")
            if sig is None or sig in SKIP_SIGNATURES:
                continue
            if "functionCall" in p:
                ok = verify_gemini(_call_text(p["functionCall"]["name"],
                                              p["functionCall"].get("args")), sig)
            else:
                ok = "text" in p and verify_gemini(p["text"], sig)
            if not ok:
                raise gemini_invalid(f"Corrupted thought signature at contents[{i}].parts[{j}].")
    if not required:
        return
    start = 0
    for i, c in enumerate(contents):
        if c["role"] == "user" and any("functionResponse" not in p for p in c["parts"]):
            start = i
    for c in contents[start:]:
        if c["role"] != "model":
            continue
        for j, p in enumerate(c["parts"]):
            if "functionCall" not in p:
                continue
            if not p.get("thoughtSignature"):
                raise gemini_invalid(
                    "Function call is missing a thought_signature in functionCall parts. This is "
                    "required for tools to work correctly, and missing thought_signature may lead "
                    "to degraded model performance. Additional data, function call "
                    f"`default_api:{p['functionCall']['name']}` , position {j + 1}. Please refer "
                    f"to {_SIG_DOCS} for more details.")
            break  # only the first call of a parallel set carries the signature


def _check_generation(raw: Any, model: str) -> dict:
    gen = _norm(_obj(raw, "generation_config"), _GEN, "generation_config")
    mt = gen.get("maxOutputTokens")
    if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool) or mt < 1):
        raise gemini_invalid("* GenerateContentRequest.generation_config.max_output_tokens: "
                             "max_output_tokens must be positive.")
    t = gen.get("temperature")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 2):
        raise gemini_invalid("* GenerateContentRequest.generation_config.temperature: "
                             "temperature must be in the range [0.0, 2.0].")
    stops = gen.get("stopSequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > 5
                              or not all(isinstance(s, str) for s in stops)):
        raise gemini_invalid("* GenerateContentRequest.generation_config.stop_sequences: "
                             "at most 5 stop sequences are allowed.")
    if (gen.get("responseSchema") is not None or gen.get("responseJsonSchema") is not None) \
            and gen.get("responseMimeType") not in ("application/json", "text/x.enum"):
        raise gemini_invalid("* GenerateContentRequest.generation_config.response_mime_type: "
                             "response_mime_type must be application/json when a response "
                             "schema is set.")
    if "thinkingConfig" in gen:
        th = _norm(_obj(gen["thinkingConfig"], "generation_config.thinking_config"), _THINKING,
                   "generation_config.thinking_config")
        if "thinkingBudget" in th and "thinkingLevel" in th:
            raise gemini_invalid("You can only set only one of thinking budget and thinking level.")
        if th.get("thinkingBudget") == 0 and "gemini-3" in model:
            raise gemini_invalid("Budget 0 is invalid. This model only works in thinking mode.")
        gen["thinkingConfig"] = th
    return gen


def _check_tools(body: dict) -> set[str]:
    names: set[str] = set()
    for i, tool in enumerate(_list(body.get("tools", []), "tools")):
        t = _norm(_obj(tool, f"tools[{i}]"), _TOOL, f"tools[{i}]")
        for j, decl in enumerate(_list(t.get("functionDeclarations", []),
                                       f"tools[{i}].function_declarations")):
            where = f"tools[{i}].function_declarations[{j}]"
            d = _norm(_obj(decl, where), _DECL, where)
            if not isinstance(d.get("name"), str) or not _FN_NAME.match(d["name"]):
                raise gemini_invalid(f"* GenerateContentRequest.{where}.name: Invalid function "
                                     "name. Must start with a letter or an underscore. Must be "
                                     "a-z, A-Z, 0-9, or contain underscores, dots, colons and "
                                     "dashes, with a maximum length of 128.")
            if "parameters" in d and "parametersJsonSchema" in d:
                raise gemini_invalid(f"* GenerateContentRequest.{where}: parameters and "
                                     "parameters_json_schema cannot both be set.")
            names.add(d["name"])
    if "toolConfig" in body:
        tc = _norm(_obj(body["toolConfig"], "tool_config"), _TOOL_CONFIG, "tool_config")
        fc = _norm(_obj(tc.get("functionCallingConfig", {}), "tool_config.function_calling_config"),
                   _CALLING, "tool_config.function_calling_config")
        mode = fc.get("mode", "MODE_UNSPECIFIED")
        if mode not in _MODES:
            raise gemini_invalid(f"Invalid value at 'tool_config.function_calling_config.mode' "
                                 f"(type.googleapis.com/google.ai.generativelanguage.v1beta."
                                 f"FunctionCallingConfig.Mode), \"{mode}\"")
        allowed = fc.get("allowedFunctionNames")
        if allowed and mode not in ("ANY", "VALIDATED"):
            raise gemini_invalid("* GenerateContentRequest.tool_config.function_calling_config."
                                 "allowed_function_names: allowed_function_names can only be set "
                                 "when mode is ANY.")
        for n in allowed or []:
            if n not in names:
                raise gemini_invalid("* GenerateContentRequest.tool_config.function_calling_config."
                                     f"allowed_function_names: function {n} is not declared.")
    return names


def thinking_model(model: str, gen: dict) -> bool:
    """Thinking models need thought signatures back: gemini-3, or thinking switched on."""
    th = gen.get("thinkingConfig") or {}
    return "gemini-3" in model or bool(th.get("includeThoughts") or th.get("thinkingLevel")
                                       or th.get("thinkingBudget", 0) not in (0, None))


def check_gemini(body: Any, model: str) -> dict:
    """The request with its names normalised, or `ApiError` (400, Google's words)."""
    if not isinstance(body, dict):
        raise gemini_invalid("Invalid JSON payload received. Unexpected token.")
    body = _norm(body, _REQUEST, "")
    contents = [_check_content(c, f"contents[{i}]")
                for i, c in enumerate(_list(body.get("contents", []), "contents"))]
    if not contents:
        raise gemini_invalid("* GenerateContentRequest.contents: contents is not specified")
    body["contents"] = contents
    if "systemInstruction" in body:
        body["systemInstruction"] = _check_content(body["systemInstruction"], "system_instruction",
                                                   system=True)
    gen = _check_generation(body.get("generationConfig", {}), model)
    body["generationConfig"] = gen
    _check_tools(body)
    _check_pairing(contents)
    _check_signatures(contents, thinking_model(model, gen))
    return body


def check_count(body: Any, model: str) -> dict:
    """countTokens takes `contents` or a whole `generateContentRequest`, not both."""
    if not isinstance(body, dict):
        raise gemini_invalid("Invalid JSON payload received. Unexpected token.")
    body = _norm(body, _COUNT, "")
    if "generateContentRequest" in body:
        if "contents" in body:
            raise gemini_invalid("contents and generate_content_request cannot both be set.")
        inner = dict(_obj(body["generateContentRequest"], "generate_content_request"))
        inner.pop("model", None)
        return check_gemini(inner, model)
    return check_gemini({"contents": body.get("contents", [])}, model)


def input_tokens(body: dict) -> int:
    """Rough prompt size: words in the system instruction, contents and tools."""
    return max(count_json_tokens(body.get("systemInstruction") or {})
               + count_json_tokens(body.get("contents") or [])
               + count_json_tokens(body.get("tools") or []), 1)


def gemini_info(body: dict) -> RequestInfo:
    """The reply-relevant facts of a (checked) request."""
    last_user = ""
    for c in reversed(body["contents"]):
        if c["role"] == "user":
            last_user = " ".join(p["text"] for p in c["parts"] if "text" in p)
            if last_user:
                break
    gen = body.get("generationConfig") or {}
    th = gen.get("thinkingConfig") or {}
    json_out = gen.get("responseMimeType") == "application/json"
    schema = gen.get("responseJsonSchema")   # responseSchema (OpenAPI subset): not checked
    info = RequestInfo(last_user_text=last_user, max_tokens=gen.get("maxOutputTokens"),
                       stop=list(gen.get("stopSequences") or []),
                       thinking=bool(th.get("includeThoughts")), input_tokens=input_tokens(body),
                       n=int(gen.get("candidateCount") or 1),
                       json_mode="text" if json_out else None,
                       json_schema=schema if json_out and isinstance(schema, dict) else None,
                       offered_tools=_offered(body))
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if calling.get("mode") in ("ANY", "VALIDATED"):   # a call is forced; of one function: it
        names = calling.get("allowedFunctionNames") or list(info.offered_tools)
        if len(names) == 1:
            info.force_tool(names[0])
    return info


def _offered(body: dict) -> dict[str, dict | None]:
    """Declared functions -> their JSON schema (`parameters` is OpenAPI's dialect: unchecked)."""
    return {d["name"]: d.get("parametersJsonSchema") for t in body.get("tools") or []
            for d in t.get("functionDeclarations") or [] if isinstance(d.get("name"), str)}


__all__ = ["ApiError", "SKIP_SIGNATURES", "call_signature", "check_count", "check_gemini",
           "gemini_info", "input_tokens", "thinking_model"]
