"""Anthropic Messages non-streaming encoding: a `message` object for a finished Turn, and
the error body."""
from __future__ import annotations

from typing import Any

from switchyard.common.canonical import mappings
from switchyard.common.canonical.aggregate import Turn
from switchyard.common.errors import GatewayError
from switchyard.common.json_object import parse_json_object
from switchyard.common.proto import chat_pb2


def message_id(response_id: str) -> str:
    """The gateway's response id as an Anthropic message id (`msg_` prefixed)."""
    return response_id if response_id.startswith("msg_") else f"msg_{response_id}"


def _block(p: chat_pb2.ContentPart) -> dict[str, Any] | None:
    kind = p.WhichOneof("kind")
    if kind == "text":
        return {"type": "text", "text": p.text.text} if p.text.text else None
    if kind == "tool_call":
        return {"type": "tool_use", "id": p.tool_call.id, "name": p.tool_call.name,
                "input": parse_json_object(p.tool_call.arguments_json)}
    if kind == "reasoning":
        r = p.reasoning
        if r.redacted:
            return {"type": "redacted_thinking", "data": r.redacted_data}
        return {"type": "thinking", "thinking": r.text, "signature": r.signature}
    return None


def client_stop_reason(has_tool: bool, stop_reason: int) -> str:
    """The Messages `stop_reason` for a canonical one (shared with the stream encoder)."""
    if has_tool:
        return "tool_use"  # whatever the upstream said: agents stop on end_turn
    return mappings.STOP_TO_ANTHROPIC_STOP.get(stop_reason, "end_turn")


def encode_response(turn: Turn, *, model: str, response_id: str, created: int) -> dict[str, Any]:
    """A `message` object for a finished Turn (choice 0; Anthropic has no n>1)."""
    choice = turn.choices[0] if turn.choices else None
    parts = choice.parts if choice else []
    content = [b for b in (_block(p) for p in parts) if b is not None]
    has_tool = any(b["type"] == "tool_use" for b in content)
    stop_reason = client_stop_reason(has_tool, choice.stop_reason if choice else 0)
    stop_sequence = choice.stop_sequence if choice and choice.stop_sequence else None
    return {"id": message_id(response_id), "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": stop_reason,
            "stop_sequence": stop_sequence, "usage": mappings.usage_to_anthropic(turn.usage)}


def error_body(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """HTTP status and `{"type": "error", "error": {...}}` as Anthropic sends them."""
    status = mappings.ANTHROPIC_STATUS.get(err.http_status, err.http_status)
    kind = mappings.ERROR_TYPES.get(err.type, ("api_error", "api_error"))[1]
    return status, {"type": "error", "error": {"type": kind, "message": err.message}}
