"""Canonical ChatRequest -> Gemini generateContent request body.

System and developer messages become `systemInstruction`; user/assistant turns become
`contents` with roles user/model (adjacent same-role messages merged, function responses
first). A tool result names its function, which Gemini requires, by the matching tool call
earlier in the conversation.
"""
from __future__ import annotations

import mimetypes

import orjson

from switchyard.common.canonical.mappings import EFFORT_TO_BUDGET, TOOL_CHOICE_TO_GEMINI
from switchyard.common.config.model import ProviderEntry
from switchyard.common.data_urls import split_data_url
from switchyard.common.errors import invalid_request
from switchyard.common.json_object import JsonObject, parse_json_object
from switchyard.common.proto import chat_pb2

from .common import carry_extra, merge_extra, request_encoder
from .gemini_ids import unpack_call_id
from .openai_responses_signatures import is_openai_signature

WIRE = chat_pb2.WIRE_FORMAT_GEMINI
DYNAMIC_BUDGET = -1   # Gemini: the model decides how long to think
_TM = chat_pb2.ToolChoice


def encode_body(req: chat_pb2.ChatRequest, entry: ProviderEntry,
                upstream_model: str) -> tuple[JsonObject, list[str]]:
    """`encode_request` before serialisation (tests and debugging read the dict)."""
    enc = _Encoder(req)
    body: JsonObject = {"contents": enc.contents()}
    system = enc.system()
    if system:
        body["systemInstruction"] = {"parts": system}
    if req.tools:
        tools = enc.tools()
        if tools:
            body["tools"] = tools
    config = _tool_config(req, enc.dropped)
    if config is not None:
        body["toolConfig"] = config
    gen = _generation(req, upstream_model, enc.dropped)
    if gen:
        body["generationConfig"] = gen
    if req.user:
        enc.dropped.append("user")   # Gemini has no end-user field
    if req.prompt_cache_key:
        enc.dropped.append("prompt_cache_key")   # Gemini caches by cachedContent
    carry_extra(body, parse_json_object(req.extra_json), enc.same, enc.dropped)
    return body, enc.dropped


def _generation(req: chat_pb2.ChatRequest, model: str, dropped: list[str]) -> JsonObject:
    gen: JsonObject = {}
    if req.HasField("temperature"):
        gen["temperature"] = req.temperature
    if req.HasField("top_p"):
        gen["topP"] = req.top_p
    if req.HasField("top_k"):
        gen["topK"] = req.top_k
    if req.HasField("max_tokens"):
        gen["maxOutputTokens"] = req.max_tokens
    if req.stop:
        gen["stopSequences"] = list(req.stop)
    if req.response_format_json:
        _response_format(gen, parse_json_object(req.response_format_json))
    thinking = _thinking(req.reasoning, model, dropped)
    if thinking is not None:
        gen["thinkingConfig"] = thinking
    return gen


def _response_format(gen: JsonObject, fmt: JsonObject) -> None:
    """Chat Completions `response_format` -> responseMimeType (+ responseJsonSchema)."""
    kind = fmt.get("type")
    if kind == "json_schema":
        gen["responseMimeType"] = "application/json"
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            gen["responseJsonSchema"] = schema
    elif kind == "json_object":
        gen["responseMimeType"] = "application/json"


def _thinking(r: chat_pb2.Reasoning, model: str, dropped: list[str]) -> JsonObject | None:
    """thinkingConfig: the budget asked for (effort through the shared table), thoughts shown."""
    if r.budget_tokens > 0:
        return {"thinkingBudget": r.budget_tokens, "includeThoughts": True}
    if r.effort == "none":
        if "gemini-3" in model:   # Gemini 3 cannot switch thinking off
            dropped.append("reasoning_effort")
            return None
        return {"thinkingBudget": 0}
    if r.effort:
        budget = EFFORT_TO_BUDGET.get(r.effort, EFFORT_TO_BUDGET["medium"])
        return {"thinkingBudget": budget, "includeThoughts": True}
    if r.enabled:
        return {"thinkingBudget": DYNAMIC_BUDGET, "includeThoughts": True}
    return None


def _tool_config(req: chat_pb2.ChatRequest, dropped: list[str]) -> JsonObject | None:
    if req.HasField("parallel_tool_calls") and not req.parallel_tool_calls:
        dropped.append("parallel_tool_calls")   # Gemini cannot forbid parallel calls
    mode = req.tool_choice.mode
    if mode == _TM.MODE_UNSPECIFIED:
        return None
    fc: JsonObject = {"mode": TOOL_CHOICE_TO_GEMINI[mode]}
    if mode == _TM.MODE_NAMED:
        fc["allowedFunctionNames"] = [req.tool_choice.name]
    return {"functionCallingConfig": fc}


class _Encoder:
    """Per-request state: route kind, tool-call names by id, what had no counterpart."""

    def __init__(self, req: chat_pb2.ChatRequest) -> None:
        self.req = req
        self.same = req.source_format == WIRE
        self.dropped: list[str] = []
        self.names = {p.tool_call.id: p.tool_call.name for m in req.messages for p in m.parts
                      if p.WhichOneof("kind") == "tool_call"}

    def _drop(self, name: str) -> None:
        if name not in self.dropped:
            self.dropped.append(name)

    def system(self) -> list[JsonObject]:
        out: list[JsonObject] = []
        for msg in self.req.messages:
            if msg.role in (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER):
                out += [self._extra({"text": p.text.text}, p) for p in msg.parts
                        if p.WhichOneof("kind") == "text" and p.text.text]
        return out

    def contents(self) -> list[JsonObject]:
        out: list[JsonObject] = []
        for msg in self.req.messages:
            if msg.role == chat_pb2.ROLE_USER:
                role = "user"
            elif msg.role == chat_pb2.ROLE_ASSISTANT:
                role = "model"
            else:
                continue
            parts = [q for p in msg.parts for q in self._parts(p)]
            if not parts:
                continue
            if out and out[-1]["role"] == role:   # parallel results must share one turn
                out[-1]["parts"].extend(parts)
            else:
                content: JsonObject = {"role": role, "parts": parts}
                if self.same:
                    merge_extra(content, msg.extra_json)
                out.append(content)
        for content in out:
            if content["role"] == "user":
                content["parts"].sort(key=lambda q: "functionResponse" not in q)
        return out

    def _extra(self, part: JsonObject, p: chat_pb2.ContentPart) -> JsonObject:
        return merge_extra(part, p.extra_json) if self.same else part

    def _parts(self, p: chat_pb2.ContentPart) -> list[JsonObject]:
        kind = p.WhichOneof("kind")
        if kind == "text":
            if not p.text.text and not (self.same and p.extra_json):
                return []   # Gemini refuses a part with no data
            return [self._extra({"text": p.text.text}, p)]
        if kind == "image":
            return [self._extra(_media(p.image.url, p.image.media_type, p.image.data_base64,
                                       "image/jpeg"), p)]
        if kind == "document":
            d = p.document
            if d.data_base64 or d.url:
                return [self._extra(_media(d.url, d.media_type, d.data_base64,
                                           "application/pdf"), p)]
            return [self._extra({"text": d.text}, p)] if d.text else []
        if kind == "tool_call":
            return [self._extra(_call(p.tool_call), p)]
        if kind == "tool_result":
            return [self._extra(self._result(p.tool_result), p)]
        if kind == "reasoning":
            r = p.reasoning
            if r.redacted or not r.signature or is_openai_signature(r.signature):
                return []   # Gemini takes thoughts back only with their signature
            return [self._extra({"text": r.text, "thought": True, "thoughtSignature": r.signature},
                                p)]
        if kind is None and self.same and p.extra_json:
            return [merge_extra({}, p.extra_json)]   # a part the client decoder did not name
        return []

    def _result(self, tr: chat_pb2.ToolResultPart) -> JsonObject:
        name = self.names.get(tr.tool_call_id)
        if name is None:
            raise invalid_request("a tool result answers no tool call earlier in the "
                                  "conversation; Gemini needs the function name it answers")
        text = "".join(c.text.text for c in tr.content if c.WhichOneof("kind") == "text")
        response: JsonObject
        if tr.is_error:
            response = {"error": text}
        else:
            parsed = _json_object(text)
            response = parsed if parsed is not None else {"result": text}
        fr: JsonObject = {"name": name, "response": response}
        call_id, _ = unpack_call_id(tr.tool_call_id)
        if call_id:
            fr = {"id": call_id, **fr}
        images = [_media(c.image.url, c.image.media_type, c.image.data_base64, "image/jpeg")
                  for c in tr.content if c.WhichOneof("kind") == "image"]
        if images:
            fr["parts"] = images
        return {"functionResponse": fr}

    def tools(self) -> list[JsonObject]:
        decls: list[JsonObject] = []
        native: list[JsonObject] = []
        for t in self.req.tools:
            if t.type not in ("", "function"):
                if self.same and t.extra_json:
                    native.append(merge_extra({}, t.extra_json))
                else:
                    self._drop(f"tools[{t.name or t.type}]")
                continue
            decl: JsonObject = {"name": t.name}
            if t.description:
                decl["description"] = t.description
            schema = parse_json_object(t.parameters_json)
            if schema:
                decl["parametersJsonSchema"] = schema   # full JSON Schema, as clients write it
            decls.append(merge_extra(decl, t.extra_json) if self.same else decl)
        return ([{"functionDeclarations": decls}] if decls else []) + native


def _call(tc: chat_pb2.ToolCallPart) -> JsonObject:
    call_id, signature = unpack_call_id(tc.id)
    call: JsonObject = {"name": tc.name, "args": parse_json_object(tc.arguments_json)}
    if call_id:
        call = {"id": call_id, **call}
    part: JsonObject = {"functionCall": call}
    if signature:
        part["thoughtSignature"] = signature
    return part


def _json_object(text: str) -> JsonObject | None:
    if not text.startswith("{"):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _media(url: str, media_type: str, data_b64: str, default_type: str) -> JsonObject:
    """inlineData for base64 (or a data: URL), fileData for a URL."""
    if data_b64:
        return {"inlineData": {"mimeType": media_type or default_type, "data": data_b64}}
    split = split_data_url(url)
    if split is not None:
        return {"inlineData": {"mimeType": split[0], "data": split[1]}}
    guessed = mimetypes.guess_type(url)[0]
    return {"fileData": {"mimeType": media_type or guessed or default_type, "fileUri": url}}


encode_request = request_encoder(encode_body)
