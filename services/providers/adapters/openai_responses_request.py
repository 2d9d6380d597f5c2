"""Canonical ChatRequest -> OpenAI Responses request body (`POST /v1/responses`).

Conversation state stays with the gateway, so every request is `store: false` with the whole
conversation as `input` items, and a conversation can move between providers. Leading
system/developer messages become `instructions`; later ones stay in place as input messages.
Reasoning items go back with the `encrypted_content` OpenAI gave them (carried as the
reasoning signature, `openai_responses_signatures`); reasoning from other upstreams cannot.
"""
from __future__ import annotations

from switchyard.common.canonical.mappings import (
    RESPONSES_MIN_OUTPUT_TOKENS,
    TOOL_CHOICE_TO_OPENAI,
    budget_to_effort,
    openai_reasoning_model,
)
from switchyard.common.config.model import ProviderEntry
from switchyard.common.data_urls import data_url
from switchyard.common.json_object import JsonObject, parse_json_object
from switchyard.common.proto import chat_pb2

from .common import carry_extra, is_function_tool, merge_extra, request_encoder
from .openai_responses_signatures import unpack

WIRE = chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES
ENCRYPTED_REASONING = "reasoning.encrypted_content"
_TM = chat_pb2.ToolChoice
_SYSTEM_ROLES = {chat_pb2.ROLE_SYSTEM: "system", chat_pb2.ROLE_DEVELOPER: "developer"}


def encode_body(req: chat_pb2.ChatRequest, entry: ProviderEntry,
                upstream_model: str) -> tuple[JsonObject, list[str]]:
    """`encode_request` before serialisation (tests and debugging read the dict)."""
    enc = _Encoder(req, upstream_model)
    instructions, items = enc.input()
    body: JsonObject = {"model": upstream_model}
    if instructions:
        body["instructions"] = instructions
    body["input"] = items
    body["store"] = False   # the gateway keeps the conversation (see module doc)
    body["stream"] = req.stream
    if req.tools:
        tools = enc.tools()
        if tools:
            body["tools"] = tools
    mode = req.tool_choice.mode
    if mode == _TM.MODE_NAMED:
        body["tool_choice"] = {"type": "function", "name": req.tool_choice.name}
    elif mode in TOOL_CHOICE_TO_OPENAI:
        body["tool_choice"] = TOOL_CHOICE_TO_OPENAI[mode]
    if req.HasField("parallel_tool_calls") and (enc.same or body.get("tools")):
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.HasField("max_tokens"):
        body["max_output_tokens"] = max(req.max_tokens, RESPONSES_MIN_OUTPUT_TOKENS)
        if req.max_tokens < RESPONSES_MIN_OUTPUT_TOKENS:
            enc.drop("max_tokens")   # below the API's minimum: raised to it, and said so
    enc.sampling(body)
    if req.user:
        body["user"] = req.user
    if req.prompt_cache_key:
        body["prompt_cache_key"] = req.prompt_cache_key
    enc.reasoning(body)
    if req.response_format_json:
        fmt = _text_format(parse_json_object(req.response_format_json))
        if fmt is not None:
            body["text"] = {"format": fmt}
    carry_extra(body, parse_json_object(req.extra_json), enc.same, enc.dropped)
    return body, enc.dropped


def _text_format(fmt: JsonObject) -> JsonObject | None:
    """Chat Completions `response_format` -> Responses `text.format`."""
    kind = fmt.get("type")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema" or not isinstance(fmt.get("json_schema"), dict):
        return None
    spec = fmt["json_schema"]
    out: JsonObject = {"type": "json_schema", "name": spec.get("name") or "response",
                       "schema": spec.get("schema") or {}}
    for key in ("strict", "description"):
        if key in spec:
            out[key] = spec[key]
    return out


class _Encoder:
    """Per-request state: route kind, model family and what had no counterpart."""

    def __init__(self, req: chat_pb2.ChatRequest, model: str) -> None:
        self.req = req
        self.same = req.source_format == WIRE
        self.reasons = openai_reasoning_model(model)
        self.dropped: list[str] = []

    def drop(self, name: str) -> None:
        if name not in self.dropped:
            self.dropped.append(name)

    # ---- settings --------------------------------------------------------------------
    def sampling(self, body: JsonObject) -> None:
        req = self.req
        for name in ("temperature", "top_p"):
            if req.HasField(name):
                if self.reasons and not self.same:
                    self.drop(name)   # reasoning models refuse sampling settings
                else:
                    body[name] = getattr(req, name)
        if req.HasField("top_k"):
            self.drop("top_k")
        if req.stop:
            self.drop("stop")   # the Responses API has no stop sequences

    def reasoning(self, body: JsonObject) -> None:
        """`reasoning` and, for reasoning models, the encrypted items kept for next turn. On
        a cross-format route a summary is asked for, so the client sees the reasoning."""
        r = self.req.reasoning
        effort = r.effort or (budget_to_effort(r.budget_tokens) if r.budget_tokens > 0
                              else "medium" if r.enabled else "")
        if not (effort or self.reasons):
            return
        reasoning: JsonObject = {}
        if effort:
            reasoning["effort"] = effort
        if not self.same:
            reasoning["summary"] = "auto"
        body["reasoning"] = reasoning
        body["include"] = [ENCRYPTED_REASONING]

    # ---- input -----------------------------------------------------------------------
    def input(self) -> tuple[str, list[JsonObject]]:
        """(instructions: the leading system text, input items)."""
        messages = list(self.req.messages)
        lead: list[str] = []
        while messages and messages[0].role in _SYSTEM_ROLES:
            lead += [p.text.text for p in messages.pop(0).parts
                     if p.WhichOneof("kind") == "text" and p.text.text]
        items: list[JsonObject] = []
        for msg in messages:
            if msg.role == chat_pb2.ROLE_USER:
                self._user(msg, items)
            elif msg.role == chat_pb2.ROLE_ASSISTANT:
                self._assistant(msg, items)
            elif msg.role in _SYSTEM_ROLES:
                content = [self._extra({"type": "input_text", "text": p.text.text}, p)
                           for p in msg.parts if p.WhichOneof("kind") == "text"]
                if content:
                    items.append(self._extra_msg({"type": "message",
                                                  "role": _SYSTEM_ROLES[msg.role],
                                                  "content": content}, msg))
        return "\n\n".join(lead), items

    def _extra(self, obj: JsonObject, p: chat_pb2.ContentPart) -> JsonObject:
        return merge_extra(obj, p.extra_json) if self.same else obj

    def _extra_msg(self, obj: JsonObject, msg: chat_pb2.Message) -> JsonObject:
        return merge_extra(obj, msg.extra_json) if self.same else obj

    def _user(self, msg: chat_pb2.Message, items: list[JsonObject]) -> None:
        content: list[JsonObject] = []
        for p in msg.parts:
            kind = p.WhichOneof("kind")
            if kind == "tool_result":
                items.append(self._extra(self._tool_output(p.tool_result), p))
                continue
            part = self._input_part(p)
            if part is not None:
                content.append(self._extra(part, p))
        if content:
            items.append(self._extra_msg({"type": "message", "role": "user",
                                          "content": content}, msg))

    def _assistant(self, msg: chat_pb2.Message, items: list[JsonObject]) -> None:
        text: list[JsonObject] = []

        def flush() -> None:
            if text:
                items.append(self._extra_msg({"type": "message", "role": "assistant",
                                              "content": list(text)}, msg))
                text.clear()

        for p in msg.parts:
            kind = p.WhichOneof("kind")
            if kind == "text":
                if p.text.text:
                    text.append(self._extra({"type": "output_text", "text": p.text.text,
                                             "annotations": []}, p))
            elif kind == "tool_call":
                flush()
                tc = p.tool_call
                items.append(self._extra({"type": "function_call", "call_id": tc.id,
                                          "name": tc.name,
                                          "arguments": tc.arguments_json or "{}"}, p))
            elif kind == "reasoning":
                item = _reasoning_item(p.reasoning)
                if item is not None:
                    flush()
                    items.append(item)
        flush()

    def _input_part(self, p: chat_pb2.ContentPart) -> JsonObject | None:
        kind = p.WhichOneof("kind")
        if kind == "text":
            return {"type": "input_text", "text": p.text.text}
        if kind == "image":
            img = p.image
            url = data_url(img.media_type, img.data_base64) if img.data_base64 else img.url
            return {"type": "input_image", "image_url": url, "detail": img.detail or "auto"}
        if kind == "document":
            doc = p.document
            if doc.data_base64:
                return {"type": "input_file", "filename": doc.filename or doc.title
                        or "document.pdf",
                        "file_data": data_url(doc.media_type or "application/pdf",
                                              doc.data_base64)}
            if doc.url:
                return {"type": "input_file", "file_url": doc.url}
            if doc.text:
                return {"type": "input_text", "text": doc.text}
            return None
        if kind is None and self.same and p.extra_json:
            return {}   # a part the client decoder could not name: carried whole
        return None

    def _tool_output(self, tr: chat_pb2.ToolResultPart) -> JsonObject:
        parts = [part for part in (self._input_part(c) for c in tr.content) if part]
        output: str | list[JsonObject]
        if all(part.get("type") == "input_text" for part in parts):
            output = "".join(part["text"] for part in parts)
        else:
            output = parts
        return {"type": "function_call_output", "call_id": tr.tool_call_id, "output": output}

    # ---- tools -----------------------------------------------------------------------
    def tools(self) -> list[JsonObject]:
        out: list[JsonObject] = []
        for t in self.req.tools:
            if not is_function_tool(t, self.req):
                if self.same:   # a hosted tool (web_search, file_search, mcp, ...) as sent
                    out.append(merge_extra({"type": t.type}, t.extra_json))
                else:
                    self.drop(f"tools[{t.name or t.type}]")
                continue
            tool: JsonObject = {"type": "function", "name": t.name}
            if t.description:
                tool["description"] = t.description
            tool["parameters"] = parse_json_object(t.parameters_json) or {
                "type": "object", "properties": {}}
            if self.same:   # `strict` as the client sent it, or the API's default
                merge_extra(tool, t.extra_json)
            else:
                # The Responses API makes function tools strict unless told otherwise, and
                # tools written for other formats do not meet strict mode's schema rules.
                tool["strict"] = False
            out.append(tool)
        return out


def _reasoning_item(r: chat_pb2.ReasoningPart) -> JsonObject | None:
    """A reasoning item OpenAI can verify: only one it encrypted (see module doc)."""
    encrypted = unpack(r.signature) if not r.redacted else None
    if encrypted is None:
        return None
    summary = [{"type": "summary_text", "text": r.text}] if r.text else []
    return {"type": "reasoning", "summary": summary, "encrypted_content": encrypted}


encode_request = request_encoder(encode_body)
