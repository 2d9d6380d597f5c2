"""OpenAI Responses non-streaming encoding: the Responses object for a finished Turn, the
error body, and the input_items list page."""
from __future__ import annotations

from typing import Any

from switchyard.common.canonical import mappings
from switchyard.common.canonical.aggregate import Choice, Turn
from switchyard.common.errors import echo, invalid_request
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.errors import openai_error_body as error_body
from switchyard.edge.formats.openai_responses.context import REDACTED, ResponsesContext
from switchyard.edge.formats.openai_responses.tools import ToolMap, call_item, item_prefix

__all__ = ["encode_response", "error_body", "input_items_page"]

_SR = chat_pb2.StopReason
# Stop reasons that end a Responses object as `incomplete`, with the reason it names.
_INCOMPLETE: dict[int, str] = {_SR.STOP_REASON_MAX_TOKENS: "max_output_tokens",
               _SR.STOP_REASON_REFUSAL: "content_filter"}
# Canonical error type -> Responses `error.code` (ResponseError.code) when the error has none.
_FAILED_CODES = {"rate_limit": "rate_limit_exceeded", "invalid_request": "invalid_prompt"}


def output_id(prefix: str, response_id: str, n: int) -> str:
    """Output item ids derive from the response id, so stream and stored object agree."""
    return f"{prefix}_{response_id.removeprefix('resp_')}{n:03d}"


def skeleton(*, model: str, response_id: str, created: int, ctx: ResponsesContext,
             dropped: list[str] | None = None) -> dict[str, Any]:
    """The Responses object without output: everything echoed from the request (`text` as
    applied: `dropped` is what the route reported dropped)."""
    return {
        "id": response_id, "object": "response", "created_at": created,
        "status": "in_progress", "background": False, "error": None,
        "incomplete_details": None, "instructions": ctx.instructions,
        "max_output_tokens": ctx.max_output_tokens, "model": model, "output": [],
        "parallel_tool_calls": ctx.parallel_tool_calls,
        "previous_response_id": ctx.previous_response_id, "reasoning": ctx.reasoning,
        "store": ctx.store,
        "temperature": 1.0 if ctx.temperature is None else ctx.temperature,
        "text": ctx.applied_text(dropped), "tool_choice": ctx.tool_choice, "tools": ctx.tools,
        "top_p": 1.0 if ctx.top_p is None else ctx.top_p, "truncation": ctx.truncation,
        "usage": None, "user": ctx.user, "metadata": ctx.metadata or {},
        # Only a turn of a Conversations API conversation names it.
        **({"conversation": {"id": ctx.conversation}} if ctx.conversation else {}),
    }


def output_item(part: chat_pb2.ContentPart, response_id: str, n: int,
                tools: ToolMap | None = None) -> dict[str, Any] | None:
    """One canonical part → one finished Responses output item (None: no counterpart); a
    tool call becomes the item of the tool the client defined (`tools`)."""
    kind = part.WhichOneof("kind")
    if kind == "text":
        return {"id": output_id("msg", response_id, n), "type": "message", "status": "completed",
                "role": "assistant", "content": [
                    {"type": "output_text", "text": part.text.text, "annotations": []}]}
    if kind == "tool_call":
        origin = (tools or ToolMap()).origin(part.tool_call.name)
        return call_item(part.tool_call, origin, output_id(item_prefix(origin), response_id, n),
                         "completed")
    if kind == "reasoning":
        r = part.reasoning
        item: dict[str, Any] = {"id": output_id("rs", response_id, n), "type": "reasoning",
                      "summary": [{"type": "summary_text", "text": r.text}] if r.text else []}
        if r.redacted:
            item["encrypted_content"] = REDACTED + r.redacted_data
        elif r.signature:
            item["encrypted_content"] = r.signature
        return item
    return None


def _outputs(choice: Choice, response_id: str, tools: ToolMap) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for part in choice.parts:
        item = output_item(part, response_id, len(items), tools)
        if item is not None:
            items.append(item)
    return items


def failure(err: chat_pb2.Error) -> dict[str, Any]:
    """Responses `error` object for a failed response."""
    code = err.code or _FAILED_CODES.get(err.type) or (
        "server_error" if (err.http_status or 500) >= 500 else
        mappings.ERROR_TYPES.get(err.type, ("api_error",))[0])
    return {"code": code, "message": err.message or "the upstream request failed"}


def encode_response(turn: Turn, *, model: str, response_id: str, created: int,
                    ctx: ResponsesContext) -> dict[str, Any]:
    """A whole turn → the Responses object exactly as POST /v1/responses returns it."""
    out = skeleton(model=model, response_id=response_id, created=created, ctx=ctx,
                   dropped=list(turn.start.dropped_params))
    choice = turn.choices[0] if turn.choices else Choice()
    out["output"] = _outputs(choice, response_id, ctx.tool_map)
    out["usage"] = mappings.usage_to_responses(turn.usage)
    if turn.error is not None:
        out["status"], out["error"] = "failed", failure(turn.error)
    elif choice.stop_reason in _INCOMPLETE:
        out["status"] = "incomplete"
        out["incomplete_details"] = {"reason": _INCOMPLETE[choice.stop_reason]}
        if out["output"] and "status" in out["output"][-1]:
            out["output"][-1]["status"] = "incomplete"  # the item the limit cut short
    else:
        out["status"] = "completed"
    return out


def input_items_page(items: list[dict[str, Any]], *, limit: int = 20, order: str = "desc",
                     after: str | None = None) -> dict[str, Any]:
    """The `GET /v1/responses/{id}/input_items` list object for stored input items."""
    if not 1 <= limit <= 100:
        raise invalid_request("limit must be between 1 and 100", "limit")
    if order not in ("asc", "desc"):
        raise invalid_request("order must be 'asc' or 'desc'", "order")
    ordered = list(reversed(items)) if order == "desc" else list(items)
    if after is not None:
        ids = [it.get("id") for it in ordered]
        if after not in ids:
            raise invalid_request(f"No input item found with id '{echo(after)}'", "after")
        ordered = ordered[ids.index(after) + 1:]
    page = ordered[:limit]
    return {"object": "list", "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(ordered) > limit}
