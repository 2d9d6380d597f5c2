"""Render a Plan as OpenAI Responses answers: the Response object, or its SSE events in the
API's order (response.created, response.in_progress; per output item: output_item.added,
its part/summary events and deltas, their .done events, output_item.done; then
response.completed or response.incomplete), each with its `sequence_number`, item ids
(`rs_`, `msg_`, `fc_`) and the fields openai-python's event types require."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.emulator.plan import Plan, Usage
from tests.emulator.responses_upstream_check import encrypt
from tests.emulator.text import fragments, text_chunks


@dataclass
class ResponsesContext:
    id: str
    body: dict                       # the request, echoed in the Response object
    chunks: int | None = None
    created: int = field(default_factory=lambda: int(time.time()))


def _id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(16).hex()}"


def usage(u: Usage) -> dict:
    """input_tokens counts cached and cache-written tokens; output includes reasoning."""
    inp = u.input + u.cache_read + u.cache_creation
    return {"input_tokens": inp,
            "input_tokens_details": {"cached_tokens": u.cache_read,
                                     "cache_write_tokens": u.cache_creation},
            "output_tokens": u.output,
            "output_tokens_details": {"reasoning_tokens": u.reasoning},
            "total_tokens": inp + u.output}


def _status(plan: Plan) -> tuple[str, dict | None]:
    if plan.stop == "max_tokens":
        return "incomplete", {"reason": "max_output_tokens"}
    return "completed", None


def _summary_on(ctx: ResponsesContext) -> bool:
    return (ctx.body.get("reasoning") or {}).get("summary") is not None


def items(plan: Plan, ctx: ResponsesContext) -> list[dict]:
    """The finished output items, in order: reasoning, message, function calls."""
    out: list[dict] = []
    if plan.thinking:
        out.append({"id": _id("rs"), "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": plan.thinking}]
                    if _summary_on(ctx) else [],
                    "encrypted_content": encrypt(plan.thinking)})
    if plan.refusal and not plan.text:
        out.append({"id": _id("msg"), "type": "message", "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "refusal", "refusal": plan.refusal}]})
    elif plan.text:
        out.append({"id": _id("msg"), "type": "message",
                    "status": "incomplete" if plan.stop == "max_tokens" else "completed",
                    "role": "assistant", "content": [
                        {"type": "output_text", "text": plan.text, "annotations": [],
                         "logprobs": []}]})
    for c in plan.tool_calls:
        out.append({"id": _id("fc"), "type": "function_call", "status": "completed",
                    "arguments": c.arguments, "call_id": c.id, "name": c.name})
    return out


def response(plan: Plan | None, ctx: ResponsesContext, output: list[dict],
             status: str) -> dict:
    """The Response object (`plan` None: the in-progress snapshot)."""
    b = ctx.body
    incomplete = _status(plan)[1] if plan is not None and status == "incomplete" else None
    reasoning = b.get("reasoning") or {}
    return {
        "id": ctx.id, "object": "response", "created_at": ctx.created, "status": status,
        "background": False, "error": None, "incomplete_details": incomplete,
        "instructions": b.get("instructions"), "max_output_tokens": b.get("max_output_tokens"),
        "model": b["model"], "output": output,
        "parallel_tool_calls": b.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": b.get("store", True), "temperature": b.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium", **(b.get("text") or {})},
        "tool_choice": b.get("tool_choice", "auto"), "tools": b.get("tools") or [],
        "top_p": b.get("top_p", 1.0), "truncation": b.get("truncation", "disabled"),
        "usage": usage(plan.usage) if plan is not None else None, "user": b.get("user"),
        "metadata": b.get("metadata") or {}}


def response_body(plan: Plan, ctx: ResponsesContext) -> dict:
    return response(plan, ctx, items(plan, ctx), _status(plan)[0])


class _Events:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def add(self, kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(self.frames), **fields}
        self.frames.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data)
                           + b"\n\n")


def _obfuscation(text: str) -> str:
    return "x" * (16 - len(text) % 16)   # the API pads deltas to hide token lengths


def stream_frames(plan: Plan, ctx: ResponsesContext) -> list[bytes]:
    """The SSE frames of the streamed response (one event per frame)."""
    ev = _Events()
    ev.add("response.created", response=response(None, ctx, [], "in_progress"))
    ev.add("response.in_progress", response=response(None, ctx, [], "in_progress"))
    done = items(plan, ctx)
    for n, item in enumerate(done):
        where = {"item_id": item["id"], "output_index": n}
        kind = item["type"]
        if kind == "reasoning":
            ev.add("response.output_item.added", output_index=n,
                   item={"id": item["id"], "type": "reasoning", "summary": []})
            if item["summary"]:
                text = item["summary"][0]["text"]
                ev.add("response.reasoning_summary_part.added", **where, summary_index=0,
                       part={"type": "summary_text", "text": ""})
                for piece in text_chunks(text, ctx.chunks):
                    ev.add("response.reasoning_summary_text.delta", **where, summary_index=0,
                           delta=piece, obfuscation=_obfuscation(piece))
                ev.add("response.reasoning_summary_text.done", **where, summary_index=0,
                       text=text)
                ev.add("response.reasoning_summary_part.done", **where, summary_index=0,
                       part={"type": "summary_text", "text": text})
        elif kind == "message":
            ev.add("response.output_item.added", output_index=n,
                   item={**item, "status": "in_progress", "content": []})
            part = item["content"][0]
            if part["type"] == "refusal":
                ev.add("response.content_part.added", **where, content_index=0,
                       part={"type": "refusal", "refusal": ""})
                ev.add("response.refusal.delta", **where, content_index=0,
                       delta=part["refusal"])
                ev.add("response.refusal.done", **where, content_index=0,
                       refusal=part["refusal"])
            else:
                ev.add("response.content_part.added", **where, content_index=0,
                       part={"type": "output_text", "text": "", "annotations": [],
                             "logprobs": []})
                for piece in text_chunks(part["text"], ctx.chunks):
                    ev.add("response.output_text.delta", **where, content_index=0, delta=piece,
                           logprobs=[], obfuscation=_obfuscation(piece))
                ev.add("response.output_text.done", **where, content_index=0,
                       text=part["text"], logprobs=[])
            ev.add("response.content_part.done", **where, content_index=0, part=part)
        else:
            ev.add("response.output_item.added", output_index=n,
                   item={**item, "status": "in_progress", "arguments": ""})
            for piece in fragments(item["arguments"]):
                ev.add("response.function_call_arguments.delta", **where, delta=piece,
                       obfuscation=_obfuscation(piece))
            ev.add("response.function_call_arguments.done", **where, name=item["name"],
                   arguments=item["arguments"])
        ev.add("response.output_item.done", output_index=n, item=item)
    status = _status(plan)[0]
    final = response(plan, ctx, done, status)
    ev.add("response.incomplete" if status == "incomplete" else "response.completed",
           response=final)
    return ev.frames


def failed_frame(ctx: ResponsesContext, message: str, code: str, seq: int) -> bytes:
    """`response.failed` with the error, how a response that fails mid-stream ends."""
    failed = response(None, ctx, [], "failed")
    failed["error"] = {"code": code, "message": message}
    data = {"type": "response.failed", "sequence_number": seq, "response": failed}
    return b"event: response.failed\ndata: " + orjson.dumps(data) + b"\n\n"
