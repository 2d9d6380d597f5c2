"""Identifiers the gateway mints: response ids per format, and request ids. A response id
has one shape, `<prefix><24 hex>`; `is_minted` recognises it without asking any backend."""
from __future__ import annotations

import os
import re

TOKEN_BYTES = 12
RESPONSE_PREFIXES = ("chatcmpl-", "msg_", "resp_")
_MINTED = re.compile("(?:" + "|".join(map(re.escape, RESPONSE_PREFIXES)) + ")"
                     f"[0-9a-f]{{{TOKEN_BYTES * 2}}}")


def _token(n: int = TOKEN_BYTES) -> str:
    return os.urandom(n).hex()


def chat_completion_id() -> str:
    return f"chatcmpl-{_token()}"


def message_id() -> str:
    return f"msg_{_token()}"


def response_id() -> str:
    return f"resp_{_token()}"


def request_id() -> str:
    return f"req_{_token(10)}"


def is_minted(value: str) -> bool:
    """True when `value` has the shape of a response id this gateway mints."""
    return _MINTED.fullmatch(value) is not None
