"""Render a Plan as an Anthropic message: JSON body or `event:`/`data:` SSE frames."""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from tests.emulator.plan import Plan, Usage
from tests.emulator.text import fragments, sign_omitted, sign_thinking, text_chunks


@dataclass
class AnthropicContext:
    id: str
    model: str
    chunks: int | None = None


def usage_body(u: Usage) -> dict:
    """Anthropic usage: input_tokens excludes cache reads and writes."""
    return {"input_tokens": u.input, "cache_creation_input_tokens": u.cache_creation,
            "cache_read_input_tokens": u.cache_read, "output_tokens": u.output,
            "service_tier": "standard"}


def _input(arguments: str) -> dict:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _blocks(plan: Plan) -> list[dict]:
    """The content blocks in order: thinking, text (or refusal text), tool_use."""
    out: list[dict] = []
    if plan.thinking and plan.thinking_omitted:  # `display: omitted`: empty text, still signed
        out.append({"type": "thinking", "thinking": "", "signature": sign_omitted(plan.thinking)})
    elif plan.thinking:
        out.append({"type": "thinking", "thinking": plan.thinking, "signature": sign_thinking(plan.thinking)})
    text = plan.text or plan.refusal or ""
    if text:
        out.append({"type": "text", "text": text})
    for c in plan.tool_calls:
        out.append({"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)})
    return out


def stop_reason(plan: Plan) -> str:
    return plan.stop_reason or plan.stop


def response_body(plan: Plan, ctx: AnthropicContext) -> dict:
    """The non-streaming `message` object."""
    return {"id": ctx.id, "type": "message", "role": "assistant", "model": ctx.model,
            "content": _blocks(plan), "stop_reason": stop_reason(plan),
            "stop_sequence": plan.stop_sequence, "usage": usage_body(plan.usage)}


def event(name: str, data: dict) -> bytes:
    """One SSE event in Anthropic's framing."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _block_frames(index: int, block: dict, chunks: int | None, arguments: str) -> list[bytes]:
    t = block["type"]
    if t == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": f} for f in text_chunks(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif t == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": f} for f in text_chunks(block["text"], chunks)]
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": ""}]
        deltas += [{"type": "input_json_delta", "partial_json": f}
                   for f in fragments(arguments) if f]
    frames = [event("content_block_start", {"type": "content_block_start", "index": index,
                                            "content_block": start})]
    frames += [event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
               for d in deltas]
    frames.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return frames


def stream_frames(plan: Plan, ctx: AnthropicContext) -> list[bytes]:
    """message_start, blocks one at a time (ping after the first start), message_delta, message_stop."""
    u = plan.usage
    message = {"id": ctx.id, "type": "message", "role": "assistant", "model": ctx.model, "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": u.input, "cache_creation_input_tokens": u.cache_creation,
                         "cache_read_input_tokens": u.cache_read, "output_tokens": 1,
                         "service_tier": "standard"}}
    frames = [event("message_start", {"type": "message_start", "message": message})]
    ping = event("ping", {"type": "ping"})
    args = iter([c.arguments for c in plan.tool_calls])
    blocks = _blocks(plan)
    for index, block in enumerate(blocks):
        block_frames = _block_frames(index, block, ctx.chunks,
                                     next(args) if block["type"] == "tool_use" else "")
        frames += block_frames[:1]
        if index == 0:
            frames.append(ping)
        frames += block_frames[1:]
    if not blocks:
        frames.append(ping)
    frames.append(event("message_delta", {"type": "message_delta",
                                          "delta": {"stop_reason": stop_reason(plan),
                                                    "stop_sequence": plan.stop_sequence},
                                          "usage": {"output_tokens": u.output}}))
    frames.append(event("message_stop", {"type": "message_stop"}))
    return frames


def error_frame(error: dict) -> bytes:
    """A mid-stream error: `event: error` with Anthropic's error envelope."""
    return event("error", {"type": "error", "error": error})
