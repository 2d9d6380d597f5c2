"""Identifiers the gateway mints: response ids per format, and request ids."""
from __future__ import annotations

import os


def _token(n: int = 12) -> str:
    return os.urandom(n).hex()


def chat_completion_id() -> str:
    return f"chatcmpl-{_token()}"


def message_id() -> str:
    return f"msg_{_token()}"


def response_id() -> str:
    return f"resp_{_token()}"


def request_id() -> str:
    return f"req_{_token(10)}"
