"""Render a Plan as Bedrock Converse answers: the ConverseResponse JSON, or the event-stream
messages of ConverseStream (messageStart; per block its deltas, toolUse blocks opened by a
contentBlockStart; contentBlockStop; messageStop; metadata with the usage last). Every event
payload carries Bedrock's `p` padding field, which clients must ignore."""
from __future__ import annotations

import string
from dataclasses import dataclass

import orjson

from tests.emulator.bedrock_eventstream import event
from tests.emulator.plan import Plan, Usage
from tests.emulator.text import fragments, sign_thinking, text_chunks

_STOP = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
         "stop_sequence": "stop_sequence", "refusal": "guardrail_intervened"}
_PAD = string.ascii_letters + string.digits


@dataclass
class BedrockContext:
    latency_ms: int = 123
    chunks: int | None = None
    stop_sequence_field: bool = False   # additionalModelResponseFieldPaths asked for it


def usage(u: Usage) -> dict:
    """TokenUsage: inputTokens excludes the cache; totalTokens counts everything."""
    out = {"inputTokens": u.input, "outputTokens": u.output,
           "totalTokens": u.input + u.output + u.cache_read + u.cache_creation}
    if u.cache_read or u.cache_creation:
        out["cacheReadInputTokens"] = u.cache_read
        out["cacheWriteInputTokens"] = u.cache_creation
    return out


def stop_reason(plan: Plan) -> str:
    return plan.stop_reason or _STOP.get(plan.stop, "end_turn")


def _input(arguments: str) -> dict:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _blocks(plan: Plan) -> list[dict]:
    out: list[dict] = []
    if plan.thinking:
        out.append({"reasoningContent": {"reasoningText": {
            "text": plan.thinking, "signature": sign_thinking(plan.thinking)}}})
    text = plan.text or plan.refusal or ""
    if text:
        out.append({"text": text})
    for c in plan.tool_calls:
        out.append({"toolUse": {"toolUseId": c.id, "name": c.name, "input": _input(c.arguments)}})
    return out


def _extra(plan: Plan, ctx: BedrockContext) -> dict:
    if ctx.stop_sequence_field and plan.stop_sequence:
        return {"additionalModelResponseFields": {"stop_sequence": plan.stop_sequence}}
    return {}


def response_body(plan: Plan, ctx: BedrockContext) -> dict:
    """The ConverseResponse."""
    return {"output": {"message": {"role": "assistant", "content": _blocks(plan)}},
            "stopReason": stop_reason(plan), "usage": usage(plan.usage),
            "metrics": {"latencyMs": ctx.latency_ms}, **_extra(plan, ctx)}


def _event(name: str, payload: dict, n: int) -> bytes:
    payload["p"] = _PAD[: 1 + n % len(_PAD)]   # Bedrock pads payloads to hide their lengths
    return event(name, orjson.dumps(payload))


def stream_frames(plan: Plan, ctx: BedrockContext) -> list[bytes]:
    """The ConverseStream messages, one per list item."""
    out = [_event("messageStart", {"role": "assistant"}, 0)]
    index = 0

    def delta(value: dict) -> None:
        out.append(_event("contentBlockDelta", {"contentBlockIndex": index, "delta": value},
                          len(out)))

    def stop() -> None:
        out.append(_event("contentBlockStop", {"contentBlockIndex": index}, len(out)))

    if plan.thinking:
        for piece in text_chunks(plan.thinking, ctx.chunks):
            delta({"reasoningContent": {"text": piece}})
        delta({"reasoningContent": {"signature": sign_thinking(plan.thinking)}})
        stop()
        index += 1
    text = plan.text or plan.refusal or ""
    if text:
        for piece in text_chunks(text, ctx.chunks):
            delta({"text": piece})
        stop()
        index += 1
    for c in plan.tool_calls:
        out.append(_event("contentBlockStart", {"contentBlockIndex": index, "start": {
            "toolUse": {"toolUseId": c.id, "name": c.name}}}, len(out)))
        for piece in fragments(orjson.dumps(_input(c.arguments)).decode()):
            delta({"toolUse": {"input": piece}})
        stop()
        index += 1
    out.append(_event("messageStop", {"stopReason": stop_reason(plan), **_extra(plan, ctx)},
                      len(out)))
    out.append(_event("metadata", {"usage": usage(plan.usage),
                                   "metrics": {"latencyMs": ctx.latency_ms}}, len(out)))
    return out
