"""Server-sent-event framing shared by the client codecs: bytes in, no state."""
from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def data_frame(obj: Any) -> bytes:
    """`data: {json}\\n\\n` — OpenAI's framing (no event name)."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def event_frame(event: str, obj: Any) -> bytes:
    """`event: NAME\\ndata: {json}\\n\\n` — Anthropic's framing."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"
