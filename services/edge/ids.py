"""Identifiers the gateway mints: response ids per format, and request ids. A response id
has one shape, `<prefix><24 hex>`; `is_minted` recognises it without asking any backend."""
from __future__ import annotations

import re

from switchyard.common.random_hex import random_hex

TOKEN_BYTES = 12
RESPONSE_PREFIXES = ("chatcmpl-", "msg_", "resp_")
_MINTED = re.compile("(?:" + "|".join(map(re.escape, RESPONSE_PREFIXES)) + ")"
                     f"[0-9a-f]{{{TOKEN_BYTES * 2}}}")


def chat_completion_id() -> str:
    return f"chatcmpl-{random_hex(TOKEN_BYTES)}"


def message_id() -> str:
    return f"msg_{random_hex(TOKEN_BYTES)}"


def response_id() -> str:
    return f"resp_{random_hex(TOKEN_BYTES)}"


def request_id() -> str:
    return f"req_{random_hex(10)}"


def is_minted(value: str) -> bool:
    """True when `value` has the shape of a response id this gateway mints."""
    return _MINTED.fullmatch(value) is not None
