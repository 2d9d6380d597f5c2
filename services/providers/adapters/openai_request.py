"""Canonical ChatRequest -> OpenAI Chat Completions request body (any OpenAI-compatible server)."""
from __future__ import annotations

import orjson

from switchyard.common.canonical.mappings import (
    TOOL_CHOICE_TO_OPENAI,
    budget_to_effort,
    takes_reasoning_effort,
)
from switchyard.common.config.model import ProviderEntry
from switchyard.common.config.providers_table import OPENAI_NATIVE, REJECTS_TOP_K
from switchyard.common.data_urls import data_url
from switchyard.common.json_object import JsonObject, parse_json_object
from switchyard.common.proto import chat_pb2

from .common import carry_extra, is_function_tool, merge_extra, merge_missing, request_encoder

WIRE = chat_pb2.WIRE_FORMAT_OPENAI_CHAT

_ROLE = {chat_pb2.ROLE_USER: "user", chat_pb2.ROLE_ASSISTANT: "assistant",
         chat_pb2.ROLE_SYSTEM: "system"}


def encode_body(req: chat_pb2.ChatRequest, entry: ProviderEntry,
                upstream_model: str) -> tuple[JsonObject, list[str]]:
    """`encode_request` before serialisation (tests and debugging read the dict)."""
    enc = _Encoder(req, entry)
    body: JsonObject = {"model": upstream_model, "messages": enc.messages()}
    extra = parse_json_object(req.extra_json)
    if req.tools:
        tools = enc.tools()
        if tools:
            body["tools"] = tools
    mode = req.tool_choice.mode
    if mode == chat_pb2.ToolChoice.MODE_NAMED:
        body["tool_choice"] = {"type": "function", "function": {"name": req.tool_choice.name}}
    elif mode in TOOL_CHOICE_TO_OPENAI:
        body["tool_choice"] = TOOL_CHOICE_TO_OPENAI[mode]
    if req.HasField("parallel_tool_calls") and (enc.same or body.get("tools")):
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.HasField("max_tokens"):
        if enc.same and "max_completion_tokens" in extra:
            pass  # the client used max_completion_tokens; extra carries it back
        elif enc.native and not enc.same:
            body["max_completion_tokens"] = req.max_tokens
        else:
            body["max_tokens"] = req.max_tokens
    if req.HasField("temperature"):
        body["temperature"] = req.temperature
    if req.HasField("top_p"):
        body["top_p"] = req.top_p
    if req.HasField("top_k"):
        if entry.provider in REJECTS_TOP_K:
            enc.dropped.append("top_k")
        else:
            body["top_k"] = req.top_k
    if req.stop:
        body["stop"] = list(req.stop)
    body["stream"] = req.stream
    if req.stream:
        body["stream_options"] = {"include_usage": True}
    if req.user:
        body["user"] = req.user
    _reasoning(req, body, enc, upstream_model)
    if req.prompt_cache_key:
        if enc.same or enc.native:
            body["prompt_cache_key"] = req.prompt_cache_key
        else:
            enc.dropped.append("prompt_cache_key")  # OpenAI's own API is the one that takes it
    if req.response_format_json:
        body["response_format"] = orjson.loads(req.response_format_json)
    carry_extra(body, extra, enc.same, enc.dropped)
    return body, enc.dropped


def _reasoning(req: chat_pb2.ChatRequest, body: JsonObject, enc: _Encoder, model: str) -> None:
    """reasoning_effort: the client's own on a same-format route; from another format's
    effort or thinking budget otherwise, except to an OpenAI model that takes none."""
    r = req.reasoning
    if enc.same:
        if r.effort:
            body["reasoning_effort"] = r.effort   # a `thinking` extra field rides in extra
        return
    effort = r.effort or (budget_to_effort(r.budget_tokens) if r.budget_tokens > 0 else "")
    if not effort:
        return   # adaptive thinking without an effort: the model's own default
    if enc.native and not takes_reasoning_effort(model):
        enc.dropped.append("reasoning_effort")
        return
    body["reasoning_effort"] = effort


class _Encoder:
    """Per-request state: route kind and the list of what had no counterpart."""

    def __init__(self, req: chat_pb2.ChatRequest, entry: ProviderEntry) -> None:
        self.req = req
        self.same = req.source_format == WIRE
        self.native = entry.provider in OPENAI_NATIVE
        self.dropped: list[str] = []

    def _drop(self, name: str) -> None:
        if name not in self.dropped:
            self.dropped.append(name)

    # ---- messages --------------------------------------------------------------------
    def messages(self) -> list[JsonObject]:
        out: list[JsonObject] = []
        for msg in self.req.messages:
            if msg.role == chat_pb2.ROLE_USER:
                self._user(msg, out)
            elif msg.role == chat_pb2.ROLE_ASSISTANT:
                out.append(self._assistant(msg))
            else:
                out.append(self._system(msg))
        return out

    def _finish_message(self, m: JsonObject, msg: chat_pb2.Message) -> JsonObject:
        if msg.name:
            m["name"] = msg.name
        if self.same:
            merge_extra(m, msg.extra_json)
        return m

    def _system(self, msg: chat_pb2.Message) -> JsonObject:
        role = "system"
        if msg.role == chat_pb2.ROLE_DEVELOPER and self.native:
            role = "developer"
        parts = [p for p in msg.parts if p.WhichOneof("kind") == "text"]
        return self._finish_message({"role": role, "content": self._content(parts)}, msg)

    def _user(self, msg: chat_pb2.Message, out: list[JsonObject]) -> None:
        results = [p for p in msg.parts if p.WhichOneof("kind") == "tool_result"]
        rest = [p for p in msg.parts if p.WhichOneof("kind") != "tool_result"]
        for p in results:
            out.append(self._tool_message(p, msg if len(msg.parts) == 1 else None))
        if rest or not results:
            out.append(self._finish_message({"role": "user", "content": self._content(rest)}, msg))

    def _tool_message(self, part: chat_pb2.ContentPart,
                      msg: chat_pb2.Message | None) -> JsonObject:
        tr = part.tool_result
        texts = [c for c in tr.content if c.WhichOneof("kind") == "text"]
        if len(texts) != len(tr.content):
            self._drop("tool_result.image")  # tool messages carry text only
        if self.same:
            content = self._content(texts)
        else:
            content = "\n".join(c.text.text for c in texts)
        m: JsonObject = {"role": "tool", "tool_call_id": tr.tool_call_id, "content": content}
        if self.same:
            merge_extra(m, part.extra_json)
            if msg is not None:
                merge_extra(m, msg.extra_json)
        return m

    def _assistant(self, msg: chat_pb2.Message) -> JsonObject:
        content_parts: list[chat_pb2.ContentPart] = []
        calls: list[JsonObject] = []
        for p in msg.parts:
            kind = p.WhichOneof("kind")
            if kind == "tool_call":
                tc = p.tool_call
                call: JsonObject = {"id": tc.id, "type": "function",
                        "function": {"name": tc.name, "arguments": tc.arguments_json or "{}"}}
                if self.same:
                    merge_extra(call, p.extra_json)
                calls.append(call)
            elif kind in ("text", "image", "document"):
                content_parts.append(p)
            # reasoning is never sent back to an OpenAI-compatible upstream
        m: JsonObject = {"role": "assistant",
                   "content": self._content(content_parts) if content_parts else None}
        if calls:
            m["tool_calls"] = calls
        return self._finish_message(m, msg)

    # ---- content ---------------------------------------------------------------------
    def _content(self, parts: list[chat_pb2.ContentPart]) -> str | list[JsonObject]:
        """A plain string for one bare text part (how clients usually send it), else a list."""
        out: list[JsonObject] = []
        for p in parts:
            block = self._part(p)
            if block is not None:
                if self.same:
                    merge_extra(block, p.extra_json)
                out.append(block)
        if not out:
            return ""
        if len(out) == 1 and out[0].get("type") == "text" and len(out[0]) == 2:
            text: str = out[0]["text"]
            return text
        return out

    def _part(self, p: chat_pb2.ContentPart) -> JsonObject | None:
        kind = p.WhichOneof("kind")
        if kind == "text":
            refusal = (self.same and p.extra_json
                       and parse_json_object(p.extra_json).get("type") == "refusal")
            if refusal:
                return {"type": "refusal", "refusal": p.text.text}
            return {"type": "text", "text": p.text.text}
        if kind == "image":
            img = p.image
            url = data_url(img.media_type, img.data_base64) if img.data_base64 else img.url
            image_url: JsonObject = {"url": url}
            if img.detail:
                image_url["detail"] = img.detail
            return {"type": "image_url", "image_url": image_url}
        if kind == "document":
            return self._document(p.document)
        if kind is None and self.same and p.extra_json:
            return {}  # a part the client decoder could not name: carried whole in extra_json
        return None

    def _document(self, doc: chat_pb2.DocumentPart) -> JsonObject | None:
        if self.same:  # a `file` part as the client sent it (file_id rides in extra_json)
            f: JsonObject = {}
            if doc.data_base64 or doc.url:
                f["file_data"] = (data_url(doc.media_type, doc.data_base64)
                                  if doc.data_base64 else doc.url)
            if doc.filename:
                f["filename"] = doc.filename
            return {"type": "file", "file": f}
        if doc.text and not doc.data_base64:
            return {"type": "text", "text": doc.text}
        if self.native and doc.data_base64:
            return {"type": "file", "file": {
                "file_data": data_url(doc.media_type or "application/pdf", doc.data_base64),
                "filename": doc.filename or doc.title or "document.pdf"}}
        self._drop("document")  # URL documents, or a server without file parts
        return None

    # ---- tools -----------------------------------------------------------------------
    def tools(self) -> list[JsonObject]:
        out: list[JsonObject] = []
        for t in self.req.tools:
            if not is_function_tool(t, self.req):
                if self.same:
                    out.append(merge_extra({"type": t.type}, t.extra_json))
                else:
                    self._drop(f"tools[{t.name or t.type}]")
                continue
            fn: JsonObject = {"name": t.name}
            if t.description:
                fn["description"] = t.description
            if t.parameters_json:
                fn["parameters"] = parse_json_object(t.parameters_json)
            tool: JsonObject = {"type": "function", "function": fn}
            if self.same and t.extra_json:
                extra = parse_json_object(t.extra_json)
                # Either the whole tool object's unknown keys or the function object's.
                merge_missing(tool if "function" in extra else fn, extra)
            out.append(tool)
        return out


encode_request = request_encoder(encode_body)
