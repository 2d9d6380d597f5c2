"""Gemini generateContent non-streaming encoding: a GenerateContentResponse for a finished
Turn, the parts both encoders share, and Google's error body."""
from __future__ import annotations

from typing import Any

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.canonical.aggregate import Turn
from switchyard.common.errors import GatewayError
from switchyard.common.json_object import parse_json_object
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.gemini.signatures import to_client

ROLE = "model"


def signature_of(part: chat_pb2.ContentPart) -> str:
    """A thoughtSignature carried in a part's extra_json (Gemini puts them on any part)."""
    if not part.extra_json or b"thoughtSignature" not in part.extra_json:
        return ""
    try:
        extra = orjson.loads(part.extra_json)
    except orjson.JSONDecodeError:
        return ""
    sig = extra.get("thoughtSignature") if isinstance(extra, dict) else None
    return sig if isinstance(sig, str) else ""


def function_call(tc: chat_pb2.ToolCallPart, args: Any, signature: str) -> dict[str, Any]:
    out: dict[str, Any] = {"functionCall": {"id": tc.id, "name": tc.name, "args": args}}
    if signature:
        out["thoughtSignature"] = to_client(signature)
    return out


def thought(text: str, signature: str) -> dict[str, Any]:
    out: dict[str, Any] = {"text": text, "thought": True}
    if signature:
        out["thoughtSignature"] = to_client(signature)
    return out


def part_json(p: chat_pb2.ContentPart) -> dict[str, Any] | None:
    """A canonical output part as a Gemini Part; None for what Gemini cannot show
    (redacted thinking, empty text)."""
    kind = p.WhichOneof("kind")
    if kind == "text":
        sig = signature_of(p)
        if not p.text.text and not sig:
            return None
        out: dict[str, Any] = {"text": p.text.text}
        if sig:
            out["thoughtSignature"] = to_client(sig)
        return out
    if kind == "reasoning":
        r = p.reasoning
        if r.redacted or not (r.text or r.signature):
            return None
        return thought(r.text, r.signature)
    if kind == "tool_call":
        args = parse_json_object(p.tool_call.arguments_json)
        return function_call(p.tool_call, args, signature_of(p))
    if kind == "image":
        img = p.image
        if img.data_base64:
            return {"inlineData": {"mimeType": img.media_type, "data": img.data_base64}}
        return {"fileData": {"mimeType": img.media_type, "fileUri": img.url}}
    return None


def candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"content": {"role": ROLE, "parts": parts}, "index": 0}
    if finish is not None:
        out["finishReason"] = finish
    return out


def finish_reason(stop_reason: int) -> str:
    return mappings.STOP_TO_GEMINI_FINISH.get(stop_reason, "STOP")


def encode_response(turn: Turn, *, model: str, response_id: str) -> dict[str, Any]:
    """A GenerateContentResponse: one candidate, usageMetadata, modelVersion, responseId."""
    choice = turn.choices[0] if turn.choices else None
    parts = [j for j in (part_json(p) for p in choice.parts) if j is not None] if choice else []
    if not parts:
        parts = [{"text": ""}]
    return {"candidates": [candidate(parts, finish_reason(choice.stop_reason if choice else 0))],
            "usageMetadata": mappings.usage_to_gemini(turn.usage),
            "modelVersion": model, "responseId": response_id}


def error_json(status: int, message: str) -> dict[str, Any]:
    """`{"error": {"code", "message", "status"}}` with Google's status name."""
    name = mappings.GEMINI_STATUS_NAME.get(status) or (
        "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return {"error": {"code": status, "message": message, "status": name}}


def error_body(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """HTTP status and Google's error body (no 529: overload is a 503)."""
    status = mappings.GEMINI_STATUS.get(err.http_status, err.http_status)
    return status, error_json(status, err.message)
