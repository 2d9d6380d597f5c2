"""Canonical ChatRequest -> Amazon Bedrock Converse request body (`modelId` is in the URL).

System and developer messages become top-level `system` blocks; user/assistant turns become
`messages` (adjacent same-role turns merged, tool results first, a user turn "." before an
opening assistant turn, as Bedrock requires). What Converse does not name per model goes in
`additionalModelRequestFields` in the model family's own shape (Claude's `thinking` and
`top_k`, Nova's `reasoningConfig`). Client fields named as Converse names them
(`guardrailConfig`, `additionalModelRequestFields`, ...) pass through from any client.
"""
from __future__ import annotations

import hashlib
import mimetypes
import re

import orjson

from switchyard.common.canonical.mappings import (
    BEDROCK_DOCUMENT_FORMATS,
    BEDROCK_IMAGE_FORMATS,
    BEDROCK_REASONING_EFFORT,
    BEDROCK_VIDEO_FORMATS,
    budget_to_effort,
    default_max_tokens,
)
from switchyard.common.config.model import ProviderEntry
from switchyard.common.data_urls import split_data_url
from switchyard.common.json_object import JsonObject, parse_json_object
from switchyard.common.proto import chat_pb2

from .anthropic_request import _fit_budget, _thinking, _unsigned_tool_turn
from .common import TRANSLATED_EXTRA, merge_missing
from .openai_responses_signatures import is_openai_signature

WIRE = chat_pb2.WIRE_FORMAT_BEDROCK_CONVERSE
_TM = chat_pb2.ToolChoice

# Converse's own top-level fields: a client that names one (an OpenAI SDK's `extra_body`,
# say) means Bedrock's field, so it is sent as given (merged under what the codec made).
PASSTHROUGH = frozenset({"additionalModelRequestFields", "additionalModelResponseFieldPaths",
                         "guardrailConfig", "performanceConfig", "promptVariables",
                         "requestMetadata", "serviceTier", "outputConfig"})
_TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_.:-]{1,64}$")
# DocumentBlock.name: alphanumerics, single whitespace, hyphens, parentheses, brackets.
_DOC_NAME_BAD = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")
_SPACES = re.compile(r"\s+")


def model_family(model_id: str) -> str:
    """The vendor family of a Bedrock model id, inference profile or ARN ("" when the id
    does not say, e.g. an application inference profile ARN)."""
    low = model_id.lower()
    if "anthropic." in low or "claude" in low:
        return "anthropic"
    if "amazon.nova" in low:
        return "nova"
    if "openai." in low:
        return "openai"
    if "deepseek" in low:
        return "deepseek"
    return ""


def claude_name(model_id: str) -> str:
    """`us.anthropic.claude-sonnet-4-20250514-v1:0` -> `claude-sonnet-4-20250514-v1:0`, the
    name the shared max_tokens table knows."""
    at = model_id.find("claude")
    return model_id[at:] if at >= 0 else model_id


def safe_tool_id(tool_id: str) -> str:
    """A toolUseId Bedrock accepts (`[a-zA-Z0-9_.:-]{1,64}`): the id itself when it fits,
    else a digest of it, so a call and its result still pair up (ids from other upstreams,
    e.g. Gemini's with a signature folded in, can be longer)."""
    if _TOOL_USE_ID.match(tool_id):
        return tool_id
    return "tooluse_" + hashlib.sha256(tool_id.encode()).hexdigest()[:40]


def encode_body(req: chat_pb2.ChatRequest, entry: ProviderEntry,
                upstream_model: str) -> tuple[JsonObject, list[str]]:
    """`encode_request` before serialisation (tests and debugging read the dict)."""
    enc = _Encoder(req, upstream_model)
    body: JsonObject = {"messages": enc.messages()}
    system = enc.system()
    if system:
        body["system"] = system
    extra_fields: JsonObject = {}
    inference = enc.inference(entry, extra_fields)
    if inference:
        body["inferenceConfig"] = inference
    tools = enc.tool_config()
    if tools is not None:
        body["toolConfig"] = tools
    if req.response_format_json:
        enc.output_config(body, parse_json_object(req.response_format_json))
    if req.stop and enc.family == "anthropic":
        body["additionalModelResponseFieldPaths"] = ["/stop_sequence"]   # which one matched
    if req.user:
        enc.drop("user")   # requestMetadata is for log filters, with a narrow alphabet
    if extra_fields:
        body["additionalModelRequestFields"] = extra_fields
    extra = parse_json_object(req.extra_json)
    for key, value in extra.items():
        if key in PASSTHROUGH:
            if isinstance(body.get(key), dict) and isinstance(value, dict):
                merge_missing(body[key], value)
            elif key not in body:
                body[key] = value
        elif key not in TRANSLATED_EXTRA:
            enc.drop(key)
    return body, enc.dropped


class _Encoder:
    """Per-request state: the model family and the list of what had no counterpart."""

    def __init__(self, req: chat_pb2.ChatRequest, model: str) -> None:
        self.req = req
        self.model = model
        self.family = model_family(model)
        self.dropped: list[str] = []
        self._documents = 0
        thinking = _thinking(req.reasoning)
        if thinking is not None and self.family == "anthropic" and _unsigned_tool_turn(req):
            # Claude refuses thinking when the tool turn answered carries no signed thinking,
            # and a client of another format cannot send one back (as on Anthropic's API).
            thinking = None
            self.drop("reasoning_effort" if req.reasoning.effort else "thinking")
        self.thinking = thinking

    def drop(self, name: str) -> None:
        if name not in self.dropped:
            self.dropped.append(name)

    # ---- inference settings ----------------------------------------------------------
    def inference(self, entry: ProviderEntry, fields: JsonObject) -> JsonObject:
        req = self.req
        cfg: JsonObject = {}
        claude_thinking = self.thinking is not None and self.family == "anthropic"
        if req.HasField("max_tokens"):
            cfg["maxTokens"] = req.max_tokens
        elif claude_thinking:   # thinking needs a budget below maxTokens
            cfg["maxTokens"] = entry.default_max_tokens or \
                default_max_tokens(claude_name(self.model))
        if req.HasField("temperature"):
            if claude_thinking:
                self.drop("temperature")   # Claude takes no temperature with thinking
            else:
                cfg["temperature"] = min(max(req.temperature, 0.0), 1.0)
        if req.HasField("top_p"):
            cfg["topP"] = min(max(req.top_p, 0.0), 1.0)
        if req.stop:
            cfg["stopSequences"] = [s for s in req.stop if s]
        if req.HasField("top_k"):
            self._top_k(fields, claude_thinking)
        self._reasoning(cfg, fields)
        return cfg

    def _top_k(self, fields: JsonObject, claude_thinking: bool) -> None:
        if self.family == "anthropic" and not claude_thinking:
            fields["top_k"] = self.req.top_k
        elif self.family == "nova":
            fields.setdefault("inferenceConfig", {})["topK"] = self.req.top_k
        else:
            self.drop("top_k")

    def _reasoning(self, cfg: JsonObject, fields: JsonObject) -> None:
        r = self.req.reasoning
        if self.thinking is None or r.effort == "none":
            return
        if self.family == "anthropic":
            budget, max_tokens = _fit_budget(self.thinking, cfg["maxTokens"])
            cfg["maxTokens"] = max_tokens
            fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
            return
        effort = r.effort or budget_to_effort(self.thinking)
        if self.family == "nova":
            fields["reasoningConfig"] = {
                "type": "enabled",
                "maxReasoningEffort": BEDROCK_REASONING_EFFORT.get(effort, "medium")}
        elif self.family == "openai":
            fields["reasoning_effort"] = BEDROCK_REASONING_EFFORT.get(effort, "medium")
        elif self.family != "deepseek":   # DeepSeek R1 always reasons, unasked
            self.drop("reasoning_effort" if r.effort else "thinking")

    # ---- system ----------------------------------------------------------------------
    def system(self) -> list[JsonObject]:
        out: list[JsonObject] = []
        for msg in self.req.messages:
            if msg.role not in (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER):
                continue
            for p in msg.parts:
                if p.WhichOneof("kind") == "text" and p.text.text:
                    out.append({"text": p.text.text})
                    self._cache_point(p, out)
        return out

    # ---- messages --------------------------------------------------------------------
    def messages(self) -> list[JsonObject]:
        out: list[JsonObject] = []
        for msg in self.req.messages:
            if msg.role == chat_pb2.ROLE_USER:
                role = "user"
            elif msg.role == chat_pb2.ROLE_ASSISTANT:
                role = "assistant"
            else:
                continue
            blocks: list[JsonObject] = []
            for p in msg.parts:
                self._block(p, blocks)
            if not blocks:
                continue
            if out and out[-1]["role"] == role:   # Bedrock requires alternating roles
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": role, "content": blocks})
        for m in out:
            if m["role"] == "user":   # tool results open the turn, as Claude requires
                m["content"].sort(key=lambda b: "toolResult" not in b)
        if out and out[0]["role"] == "assistant":
            out.insert(0, {"role": "user", "content": [{"text": "."}]})
        return out

    def _block(self, p: chat_pb2.ContentPart, out: list[JsonObject]) -> None:
        kind = p.WhichOneof("kind")
        block: JsonObject | None = None
        if kind == "text":
            if p.text.text:   # Bedrock refuses blank text blocks
                block = {"text": p.text.text}
        elif kind == "image":
            block = self._image(p.image)
        elif kind == "document":
            block = self._document(p.document)
        elif kind == "tool_call":
            tc = p.tool_call
            block = {"toolUse": {"toolUseId": safe_tool_id(tc.id), "name": tc.name,
                                 "input": parse_json_object(tc.arguments_json)}}
        elif kind == "tool_result":
            block = self._tool_result(p.tool_result)
        elif kind == "reasoning":
            block = _reasoning(p.reasoning)
        if block is not None:
            out.append(block)
            self._cache_point(p, out)

    def _cache_point(self, p: chat_pb2.ContentPart, out: list[JsonObject]) -> None:
        """Anthropic's `cache_control` on a block means a Bedrock cachePoint after it."""
        if not p.extra_json or b"cache_control" not in p.extra_json:
            return
        control = parse_json_object(p.extra_json).get("cache_control")
        if isinstance(control, dict):
            point: JsonObject = {"type": "default"}
            if control.get("ttl") in ("5m", "1h"):
                point["ttl"] = control["ttl"]
            out.append({"cachePoint": point})

    def _image(self, img: chat_pb2.ImagePart) -> JsonObject | None:
        media, data = img.media_type, img.data_base64
        if not data:
            split = split_data_url(img.url)
            if split is not None:
                media, data = split
        if not data:
            if img.url.startswith("s3://"):
                guessed = mimetypes.guess_type(img.url)[0] or ""
                fmt = BEDROCK_IMAGE_FORMATS.get(media.split(";")[0] or guessed)
                if fmt:
                    return {"image": {"format": fmt, "source": {"s3Location": {"uri": img.url}}}}
            self.drop("image_url")   # Converse takes image bytes or S3 objects, not URLs
            return None
        fmt = BEDROCK_IMAGE_FORMATS.get(media.split(";")[0].strip().lower())
        if fmt is None:
            self.drop("image")
            return None
        return {"image": {"format": fmt, "source": {"bytes": data}}}

    def _document(self, doc: chat_pb2.DocumentPart) -> JsonObject | None:
        media, data = doc.media_type, doc.data_base64
        if not data and doc.url:
            split = split_data_url(doc.url)
            if split is None:
                self.drop("document")   # by URL: Converse wants the bytes
                return None
            media, data = split
        media = media.split(";")[0].strip().lower()
        video = BEDROCK_VIDEO_FORMATS.get(media)
        if video is not None and data:
            return {"video": {"format": video, "source": {"bytes": data}}}
        self._documents += 1
        name = self._document_name(doc)
        if not data:
            if not doc.text:
                return None
            return {"document": {"format": "txt", "name": name, "source": {"text": doc.text}}}
        fmt = BEDROCK_DOCUMENT_FORMATS.get(media or "application/pdf")
        if fmt is None:
            self.drop("document")
            return None
        return {"document": {"format": fmt, "name": name, "source": {"bytes": data}}}

    def _document_name(self, doc: chat_pb2.DocumentPart) -> str:
        """A name Bedrock accepts, unique in the request (it names documents to the model)."""
        raw = doc.title or doc.filename.rsplit(".", 1)[0]
        name = _SPACES.sub(" ", _DOC_NAME_BAD.sub(" ", raw)).strip()[:190]
        return f"{name or 'document'}-{self._documents}"

    def _tool_result(self, tr: chat_pb2.ToolResultPart) -> JsonObject:
        content: list[JsonObject] = []
        for c in tr.content:
            kind = c.WhichOneof("kind")
            if kind == "text":
                if c.text.text:
                    content.append({"text": c.text.text})
            elif kind == "image":
                block = self._image(c.image)
                if block is not None:
                    content.append(block)
            elif kind == "document":
                block = self._document(c.document)
                if block is not None:
                    content.append(block)
        result: JsonObject = {"toolUseId": safe_tool_id(tr.tool_call_id), "content": content}
        if tr.is_error:
            result["status"] = "error"
        return {"toolResult": result}

    # ---- tools -----------------------------------------------------------------------
    def tool_config(self) -> JsonObject | None:
        req = self.req
        mode = req.tool_choice.mode
        history = _tool_names(req)
        if req.HasField("parallel_tool_calls") and not req.parallel_tool_calls and req.tools:
            self.drop("parallel_tool_calls")   # Converse cannot forbid parallel calls
        if mode == _TM.MODE_NONE and not history:
            return None   # no tools offered is Converse's "none"
        tools: list[JsonObject] = []
        for t in req.tools:
            if t.type not in ("", "function", "custom"):
                self.drop(f"tools[{t.name or t.type}]")   # provider-native tools
                continue
            spec: JsonObject = {"name": t.name}
            if t.description:
                spec["description"] = t.description
            schema = parse_json_object(t.parameters_json) or {"type": "object",
                                                              "properties": {}}
            spec["inputSchema"] = {"json": schema}
            tools.append({"toolSpec": spec})
            if t.extra_json and b"cache_control" in t.extra_json:
                tools.append({"cachePoint": {"type": "default"}})
        offered = {t["toolSpec"]["name"] for t in tools if "toolSpec" in t}
        # Converse refuses toolUse/toolResult blocks without a toolConfig: declare the tools
        # the history used (a client may stop sending the list once it is done with tools).
        for name in history:
            if name not in offered:
                tools.append({"toolSpec": {"name": name, "inputSchema": {
                    "json": {"type": "object", "properties": {}}}}})
        if not tools:
            return None
        config: JsonObject = {"tools": tools}
        if mode == _TM.MODE_AUTO:
            config["toolChoice"] = {"auto": {}}
        elif mode == _TM.MODE_REQUIRED:
            config["toolChoice"] = {"any": {}}
        elif mode == _TM.MODE_NAMED:
            config["toolChoice"] = {"tool": {"name": req.tool_choice.name}}
        elif mode == _TM.MODE_NONE:
            self.drop("tool_choice")   # the history needs the tools declared; none cannot be said
        return config

    def output_config(self, body: JsonObject, fmt: JsonObject) -> None:
        """Chat Completions `response_format` json_schema -> Converse `outputConfig`."""
        spec = fmt.get("json_schema") if fmt.get("type") == "json_schema" else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            self.drop("response_format")   # JSON mode without a schema has no counterpart
            return
        definition: JsonObject = {"schema": orjson.dumps(schema).decode()}
        assert isinstance(spec, dict)
        for key in ("name", "description"):
            if isinstance(spec.get(key), str) and spec[key]:
                definition[key] = spec[key]
        body["outputConfig"] = {"textFormat": {"type": "json_schema",
                                               "structure": {"jsonSchema": definition}}}


def _reasoning(r: chat_pb2.ReasoningPart) -> JsonObject | None:
    """Signed reasoning goes back as the model wrote it; unsigned reasoning, and reasoning
    an OpenAI Responses upstream encrypted, cannot."""
    if r.redacted:
        return {"reasoningContent": {"redactedContent": r.redacted_data}} \
            if r.redacted_data else None
    if not r.signature or is_openai_signature(r.signature):
        return None
    return {"reasoningContent": {"reasoningText": {"text": r.text, "signature": r.signature}}}


def _tool_names(req: chat_pb2.ChatRequest) -> list[str]:
    """Names of the tools the conversation's tool calls used, in order of first use."""
    names: dict[str, None] = {}
    for msg in req.messages:
        for p in msg.parts:
            if p.WhichOneof("kind") == "tool_call" and p.tool_call.name:
                names.setdefault(p.tool_call.name, None)
    return list(names)

