"""OpenAI's error body, which Chat Completions and Responses share (Anthropic's is its own)."""
from __future__ import annotations

from typing import Any

from switchyard.common.canonical import mappings
from switchyard.common.errors import GatewayError


def openai_error_body(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """HTTP status and `{"error": {...}}` as OpenAI sends them (no 529: overload is 503)."""
    status = mappings.OPENAI_STATUS.get(err.http_status, err.http_status)
    kind = mappings.ERROR_TYPES.get(err.type, ("api_error", "api_error"))[0]
    return status, {"error": {"message": err.message, "type": kind,
                              "param": err.param or None, "code": err.code or None}}
