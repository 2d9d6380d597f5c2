"""Render a Plan as a Gemini GenerateContentResponse: one JSON body, or the chunks of a stream
(each chunk a whole GenerateContentResponse; SSE frames are `data: {json}\\r\\n\\r\\n`)."""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from tests.emulator.gemini_check import call_signature
from tests.emulator.plan import Plan, Usage
from tests.emulator.text import sign_gemini, text_chunks

_FINISH = {"end_turn": "STOP", "tool_use": "STOP", "stop_sequence": "STOP",
           "max_tokens": "MAX_TOKENS", "refusal": "SAFETY"}


@dataclass
class GeminiContext:
    response_id: str
    model: str
    sign_calls: bool          # a thinking model: the first functionCall carries a signature
    chunks: int | None = None


def usage_metadata(u: Usage, final: bool = True) -> dict:
    """promptTokenCount includes cached tokens; candidatesTokenCount excludes thoughts."""
    prompt = u.input + u.cache_read + u.cache_creation
    out: dict = {"promptTokenCount": prompt}
    if final:
        candidates = max(u.output - u.reasoning, 0)
        out["candidatesTokenCount"] = candidates
        out["totalTokenCount"] = prompt + candidates + u.reasoning
        if u.reasoning:
            out["thoughtsTokenCount"] = u.reasoning
    else:
        out["totalTokenCount"] = prompt
    if u.cache_read:
        out["cachedContentTokenCount"] = u.cache_read
    out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return out


def finish_reason(plan: Plan) -> str:
    """A scripted Gemini name (upper case) wins; else the plan's stop in Gemini's words."""
    if plan.finish_reason and plan.finish_reason.isupper():
        return plan.finish_reason
    return _FINISH.get(plan.stop, "STOP")


def _args(arguments: str) -> dict:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _call_parts(plan: Plan, ctx: GeminiContext) -> list[dict]:
    """Parallel calls; a scripted id is sent (newer models send ids), else none, like the API."""
    out = []
    for i, c in enumerate(plan.tool_calls):
        call: dict = {"name": c.name, "args": _args(c.arguments)}
        if c.id:
            call = {"id": c.id, **call}
        part: dict = {"functionCall": call}
        if i == 0 and ctx.sign_calls:
            part["thoughtSignature"] = call_signature(c.name, call["args"])
        out.append(part)
    return out


def _thought(text: str) -> dict:
    return {"text": text, "thought": True, "thoughtSignature": sign_gemini(text)}


def _parts(plan: Plan, ctx: GeminiContext) -> list[dict]:
    parts: list[dict] = []
    if plan.thinking:
        parts.append(_thought(plan.thinking))
    if plan.text and plan.stop != "refusal":
        parts.append({"text": plan.text})
    parts += _call_parts(plan, ctx)
    return parts


def _chunk(ctx: GeminiContext, parts: list[dict] | None, usage: dict,
           finish: str | None = None) -> dict:
    cand: dict = {}
    if parts is not None:
        cand["content"] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
    if finish is not None:
        cand["finishReason"] = finish
    cand["index"] = 0
    return {"candidates": [cand], "usageMetadata": usage, "modelVersion": ctx.model,
            "responseId": ctx.response_id}


def response_body(plan: Plan, ctx: GeminiContext) -> dict:
    """The non-streaming GenerateContentResponse."""
    finish = finish_reason(plan)
    parts = None if finish == "SAFETY" else _parts(plan, ctx)
    return _chunk(ctx, parts, usage_metadata(plan.usage), finish)


def stream_chunks(plan: Plan, ctx: GeminiContext) -> list[dict]:
    """Thought, text fragments, then the function calls together; the last chunk carries
    finishReason and the full usage, earlier ones only the prompt count."""
    partial = usage_metadata(plan.usage, final=False)
    pieces: list[list[dict]] = []
    finish = finish_reason(plan)
    if finish != "SAFETY":
        if plan.thinking:
            pieces.append([_thought(plan.thinking)])
        pieces += [[{"text": f}] for f in text_chunks(plan.text, ctx.chunks)]
        calls = _call_parts(plan, ctx)
        if calls:
            pieces.append(calls)
    if not pieces:
        return [_chunk(ctx, None if finish == "SAFETY" else [], usage_metadata(plan.usage), finish)]
    out = [_chunk(ctx, p, partial) for p in pieces[:-1]]
    out.append(_chunk(ctx, pieces[-1], usage_metadata(plan.usage), finish))
    return out


def frame(obj: dict) -> bytes:
    """One SSE event as Google frames it (CRLF line ends)."""
    return b"data: " + orjson.dumps(obj) + b"\r\n\r\n"
