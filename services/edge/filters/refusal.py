"""A filter's 4xx as the client's error: the filter's status and its own words (FastAPI's
`{"detail": ...}`, `{"error": {"message"}}`, `{"message"}` or plain text), bounded."""
from __future__ import annotations

import re
from typing import Any

import orjson

from switchyard.common.errors import GatewayError, echo
from switchyard.edge.filters.base import Answer

MESSAGE_CHARS = 1000
CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def refusal(answer: Answer, phase: str, filter_id: str) -> GatewayError:
    """The error the client gets when filter `filter_id` refuses with `answer` (a 4xx)."""
    message, code = answer.message, ""
    if not message:
        message, code = _read(answer.body)
    if not message:
        message = f"the request was refused by the {phase} filter '{filter_id}'"
    return GatewayError(answer.status, echo(message, MESSAGE_CHARS), code=code,
                        retry_after=answer.retry_after or 0.0)


def _read(body: bytes) -> tuple[str, str]:
    """(message, code) from a refusal body; ("", "") when it says nothing readable."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip(), ""
    message, code = "", ""
    if isinstance(data, dict):
        for holder in (data.get("detail"), data.get("error"), data):
            if not isinstance(holder, dict):
                continue
            text = holder.get("message")
            if isinstance(text, str) and not message:
                message = text
            for key in ("error", "code", "type"):
                value = holder.get(key)
                if isinstance(value, str) and not code and CODE.fullmatch(value):
                    code = value
        if not message:
            for holder in (data.get("detail"), data.get("error")):
                if isinstance(holder, str) and holder.strip():
                    message = holder
                    break
    elif isinstance(data, str):
        message = data
    return message.strip(), code
