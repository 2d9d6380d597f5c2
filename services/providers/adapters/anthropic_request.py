"""Canonical ChatRequest -> Anthropic Messages request body.

Anthropic requires the conversation to open with a user turn: when the first non-system
message is an assistant one, a user message with the text "." is inserted before it.
"""
from __future__ import annotations

from switchyard.common.canonical.mappings import (
    EFFORT_TO_BUDGET,
    STRUCTURED_OUTPUT_TOOL,
    TOOL_CHOICE_TO_ANTHROPIC,
    default_max_tokens,
)
from switchyard.common.config.model import ProviderEntry
from switchyard.common.data_urls import split_data_url
from switchyard.common.json_object import JsonObject, parse_json_object
from switchyard.common.proto import chat_pb2

from .anthropic_output import native_format, output_tool, requested_schema, tool_schema
from .common import carry_extra, merge_extra, request_encoder
from .openai_responses_signatures import is_openai_signature

WIRE = chat_pb2.WIRE_FORMAT_ANTHROPIC
MIN_THINKING_BUDGET = 1024  # Anthropic rejects smaller budgets

_TM = chat_pb2.ToolChoice


def encode_body(req: chat_pb2.ChatRequest, entry: ProviderEntry,
                upstream_model: str) -> tuple[JsonObject, list[str]]:
    """`encode_request` before serialisation (tests and debugging read the dict)."""
    enc = _Encoder(req)
    max_tokens = req.max_tokens if req.HasField("max_tokens") else (
        entry.default_max_tokens or default_max_tokens(upstream_model))
    body: JsonObject = {"model": upstream_model, "max_tokens": max_tokens}
    system = enc.system()
    if system is not None:
        body["system"] = system
    body["messages"] = enc.messages()
    extra = parse_json_object(req.extra_json)
    forced = _structured_output(req, body, enc, upstream_model, extra)

    # Same-format: only an explicit `thinking.enabled` budget is canonical; adaptive
    # thinking and `output_config.effort` ride in extra_json as the client sent them.
    thinking = (req.reasoning.budget_tokens or None) if enc.same else _thinking(req.reasoning)
    if thinking is not None and forced:
        thinking = None   # Anthropic refuses thinking with a forced tool_choice
        enc.dropped.append("reasoning_effort" if req.reasoning.effort else "thinking")
    if thinking is not None and not enc.same and _unsigned_tool_turn(req):
        # Anthropic refuses thinking when the tool turn being answered has no signed thinking
        # block, and a client of another format cannot send one back: answer without it.
        thinking = None
        enc.dropped.append("reasoning_effort" if req.reasoning.effort else "thinking")
    if thinking is not None:
        budget, max_tokens = _fit_budget(thinking, max_tokens)
        body["max_tokens"] = max_tokens
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if req.HasField("temperature"):
        if thinking is not None:
            enc.dropped.append("temperature")  # not accepted with extended thinking
        else:
            t = req.temperature
            body["temperature"] = t if enc.same else min(max(t, 0.0), 1.0)
    if req.HasField("top_p"):
        body["top_p"] = req.top_p
    if req.HasField("top_k"):
        if thinking is not None:
            enc.dropped.append("top_k")
        else:
            body["top_k"] = req.top_k
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    body["stream"] = req.stream
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.tools and "tools" not in body:
        tools = enc.tools()
        if tools:
            body["tools"] = tools
    choice = _tool_choice(req)
    if choice is not None:
        body.setdefault("tool_choice", choice)
    if req.prompt_cache_key:
        enc.dropped.append("prompt_cache_key")  # Anthropic caches by cache_control blocks
    carry_extra(body, extra, enc.same, enc.dropped)
    return body, enc.dropped


def _structured_output(req: chat_pb2.ChatRequest, body: JsonObject, enc: _Encoder,
                       model: str, extra: JsonObject) -> bool:
    """Put the canonical `response_format` into the body: `output_config.format` where the
    model takes it, else the forced answer tool (True: tool_choice is forced)."""
    if not req.response_format_json:
        return False
    config = extra.get("output_config")
    if enc.same and ("output_format" in extra or (isinstance(config, dict)
                                                  and "format" in config)):
        return False   # the client's own output_config / output_format ride in extra_json
    wanted = requested_schema(req)
    if wanted is None:
        return False
    kind, schema = wanted
    native = native_format(kind, schema, model)
    if native is not None:
        body["output_config"] = {"format": native}
        return False
    input_schema = tool_schema(schema)
    if input_schema is None:
        enc.dropped.append("response_format")
        return False
    tools = enc.tools() if req.tools else []
    body["tools"] = [*tools, output_tool(input_schema)]
    mode = req.tool_choice.mode
    if tools and mode == _TM.MODE_NAMED:
        return False   # the client forces one of its own tools: that wins
    # With tools of its own the model may call them or answer; without, it answers.
    choice: JsonObject = ({"type": "any"} if tools and mode != _TM.MODE_NONE
                          else {"type": "tool", "name": STRUCTURED_OUTPUT_TOOL})
    if req.HasField("parallel_tool_calls") and choice["type"] == "any":
        choice["disable_parallel_tool_use"] = not req.parallel_tool_calls
    body["tool_choice"] = choice
    return True


def _thinking(r: chat_pb2.Reasoning) -> int | None:
    """The requested thinking budget, or None when thinking is off."""
    if r.budget_tokens > 0:
        return r.budget_tokens
    if r.effort:
        if r.effort == "none":
            return None
        return EFFORT_TO_BUDGET.get(r.effort, EFFORT_TO_BUDGET["medium"])
    if r.enabled:
        return EFFORT_TO_BUDGET["medium"]
    return None


def _own_signature(signature: str) -> bool:
    return bool(signature) and not is_openai_signature(signature)


def _unsigned_tool_turn(req: chat_pb2.ChatRequest) -> bool:
    """The last assistant message calls tools but carries no signed thinking block."""
    for msg in reversed(req.messages):
        if msg.role == chat_pb2.ROLE_ASSISTANT:
            kinds = [p.WhichOneof("kind") for p in msg.parts]
            signed = any(_own_signature(p.reasoning.signature) or p.reasoning.redacted
                         for p in msg.parts
                         if p.WhichOneof("kind") == "reasoning")
            return "tool_call" in kinds and not signed
    return False


def _fit_budget(budget: int, max_tokens: int) -> tuple[int, int]:
    """Clamp so MIN <= budget < max_tokens: shrink the budget first, raise max_tokens if needed."""
    budget = max(budget, MIN_THINKING_BUDGET)
    if budget >= max_tokens:
        if max_tokens - 1 >= MIN_THINKING_BUDGET:
            budget = max_tokens - 1
        else:
            budget = MIN_THINKING_BUDGET
            max_tokens = MIN_THINKING_BUDGET + max_tokens  # keep the client's visible allowance
    return budget, max_tokens


def _tool_choice(req: chat_pb2.ChatRequest) -> JsonObject | None:
    mode = req.tool_choice.mode
    parallel = req.parallel_tool_calls if req.HasField("parallel_tool_calls") else None
    if mode == _TM.MODE_UNSPECIFIED:
        if parallel is False and req.tools:
            return {"type": "auto", "disable_parallel_tool_use": True}
        return None
    choice: JsonObject = {"type": TOOL_CHOICE_TO_ANTHROPIC[mode]}
    if mode == _TM.MODE_NAMED:
        choice["name"] = req.tool_choice.name
    if parallel is not None and mode != _TM.MODE_NONE:
        choice["disable_parallel_tool_use"] = not parallel
    return choice


class _Encoder:
    """Per-request state: route kind and the list of what had no counterpart."""

    def __init__(self, req: chat_pb2.ChatRequest) -> None:
        self.req = req
        self.same = req.source_format == WIRE
        self.dropped: list[str] = []

    def _drop(self, name: str) -> None:
        if name not in self.dropped:
            self.dropped.append(name)

    # ---- system ----------------------------------------------------------------------
    def _in_place(self) -> set[int]:
        """Positions of system messages sent where they are (`{"role": "system"}`): on a
        same-format route every one after the first user or assistant message, as the
        client sent it; elsewhere none (each is hoisted into the top-level system)."""
        if not self.same:
            return set()
        out: set[int] = set()
        seen_turn = False
        for i, msg in enumerate(self.req.messages):
            if msg.role in (chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT):
                seen_turn = True
            elif seen_turn:
                out.add(i)
        return out

    def system(self) -> str | list[JsonObject] | None:
        blocks: list[JsonObject] = []
        in_place = self._in_place()
        for i, msg in enumerate(self.req.messages):
            if msg.role not in (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER) or i in in_place:
                continue
            for p in msg.parts:
                if p.WhichOneof("kind") != "text":
                    continue
                block: JsonObject = {"type": "text", "text": p.text.text}
                if self.same:
                    merge_extra(block, p.extra_json)
                    if len(msg.parts) == 1:
                        merge_extra(block, msg.extra_json)
                blocks.append(block)
        if not blocks:
            return None
        if self.req.system_as_string and len(blocks) == 1 and len(blocks[0]) == 2:
            text: str = blocks[0]["text"]
            return text
        return blocks

    # ---- messages --------------------------------------------------------------------
    def messages(self) -> list[JsonObject]:
        turns: list[tuple[str, list[JsonObject], chat_pb2.Message]] = []
        in_place = self._in_place()
        for i, msg in enumerate(self.req.messages):
            if msg.role == chat_pb2.ROLE_USER:
                role = "user"
            elif msg.role == chat_pb2.ROLE_ASSISTANT:
                role = "assistant"
            elif i in in_place:
                role = "system"
            else:
                continue
            blocks = [b for b in (self._block(p, role) for p in msg.parts) if b is not None]
            if role == "user":  # tool results first, as Anthropic requires
                blocks.sort(key=lambda b: b.get("type") != "tool_result")
            if blocks:
                turns.append((role, blocks, msg))
        out: list[JsonObject] = []
        if turns and turns[0][0] == "assistant":
            out.append({"role": "user", "content": "."})
        for role, blocks, msg in turns:
            if out and out[-1]["role"] == role:  # merge adjacent same-role messages
                prev = out[-1]
                if isinstance(prev["content"], str):
                    prev["content"] = [{"type": "text", "text": prev["content"]}]
                prev["content"].extend(blocks)
                if role == "user":
                    prev["content"].sort(key=lambda b: b.get("type") != "tool_result")
                continue
            m: JsonObject = {"role": role, "content": self._content(blocks, msg)}
            if self.same:
                merge_extra(m, msg.extra_json)
            out.append(m)
        return out

    def _content(self, blocks: list[JsonObject], msg: chat_pb2.Message) -> str | list[JsonObject]:
        """A plain string for one bare text block (how clients usually send it), else blocks."""
        if len(blocks) == 1 and blocks[0].get("type") == "text" and len(blocks[0]) == 2:
            text: str = blocks[0]["text"]
            return text
        return blocks

    def _block(self, p: chat_pb2.ContentPart, role: str) -> JsonObject | None:
        kind = p.WhichOneof("kind")
        block: JsonObject | None
        if kind == "text":
            if not p.text.text and not self.same:
                return None  # Anthropic rejects empty text blocks
            block = {"type": "text", "text": p.text.text}
        elif kind == "image":
            img = p.image
            block = {"type": "image"}
            if img.url or img.data_base64:  # else a file source rides in extra_json
                block["source"] = _source(img.url, img.media_type, img.data_base64)
        elif kind == "document":
            block = self._document(p.document)
        elif kind == "tool_call":
            tc = p.tool_call
            block = {"type": "tool_use", "id": tc.id, "name": tc.name,
                     "input": parse_json_object(tc.arguments_json)}
        elif kind == "tool_result":
            block = self._tool_result(p.tool_result)
        elif kind == "reasoning":
            block = self._reasoning(p.reasoning)
        elif kind is None and self.same and p.extra_json:
            block = {}  # a block the client decoder could not name: carried whole in extra_json
        else:
            block = None
        if block is not None and self.same:
            merge_extra(block, p.extra_json)
        return block

    def _document(self, doc: chat_pb2.DocumentPart) -> JsonObject:
        block: JsonObject = {"type": "document"}
        if doc.data_base64 or doc.url:
            block["source"] = _source(doc.url, doc.media_type or "application/pdf",
                                      doc.data_base64)
        elif doc.text or not self.same:  # else a content/file source rides in extra_json
            block["source"] = {"type": "text", "media_type": doc.media_type or "text/plain",
                               "data": doc.text}
        if doc.title or (doc.filename and not self.same):
            block["title"] = doc.title or doc.filename
        return block

    def _tool_result(self, tr: chat_pb2.ToolResultPart) -> JsonObject:
        block: JsonObject = {"type": "tool_result", "tool_use_id": tr.tool_call_id}
        inner = [b for b in (self._block(c, "user") for c in tr.content) if b is not None]
        if inner:
            bare = len(inner) == 1 and inner[0].get("type") == "text" and len(inner[0]) == 2
            block["content"] = inner[0]["text"] if bare else inner
        if tr.is_error:
            block["is_error"] = True
        return block

    def _reasoning(self, r: chat_pb2.ReasoningPart) -> JsonObject | None:
        if r.redacted:
            if not r.redacted_data:
                return None
            return {"type": "redacted_thinking", "data": r.redacted_data}
        if _own_signature(r.signature):
            return {"type": "thinking", "thinking": r.text, "signature": r.signature}
        return None  # unsigned thinking, or OpenAI's encrypted blob: Anthropic would refuse it

    # ---- tools -----------------------------------------------------------------------
    def tools(self) -> list[JsonObject]:
        out: list[JsonObject] = []
        for t in self.req.tools:
            if t.type not in ("", "function", "custom") or (t.type == "custom" and not self.same):
                if self.same:
                    native = {"type": t.type, "name": t.name} if t.name else {"type": t.type}
                    out.append(merge_extra(native, t.extra_json))
                else:
                    self._drop(f"tools[{t.name or t.type}]")
                continue
            tool: JsonObject = {"name": t.name}
            if t.type == "custom":
                tool["type"] = "custom"
            if t.description:
                tool["description"] = t.description
            schema = parse_json_object(t.parameters_json)
            tool["input_schema"] = schema or {"type": "object", "properties": {}}
            if self.same:
                merge_extra(tool, t.extra_json)
            out.append(tool)
        return out


def _source(url: str, media_type: str, data_b64: str) -> JsonObject:
    """An Anthropic image/document source: base64 inline, a data: URL split, or a URL."""
    if data_b64:
        return {"type": "base64", "media_type": media_type, "data": data_b64}
    split = split_data_url(url)
    if split is not None:
        return {"type": "base64", "media_type": split[0], "data": split[1]}
    return {"type": "url", "url": url}


encode_request = request_encoder(encode_body)
