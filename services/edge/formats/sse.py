"""Server-sent-event framing shared by the client codecs: bytes in, no state."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"
# Placeholders for Template slots: strings no value the gateway writes holds (orjson writes
# them as "\u0000slot-0\u0000"); a frame where one shows up elsewhere gets no template.
SLOTS = ("\x00slot-0\x00", "\x00slot-1\x00")
SLOT = SLOTS[0]


def data_frame(obj: Any) -> bytes:
    """`data: {json}\\n\\n` — OpenAI's framing (no event name)."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def event_frame(event: str, obj: Any) -> bytes:
    """`event: NAME\\ndata: {json}\\n\\n` — Anthropic's framing."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


class Template:
    """A frame built once with placeholders (`SLOTS`) where per-token values go, so a token's
    frame is bytes joined around the value's JSON (`orjson.dumps(text)`) instead of a whole
    object dumped: the same bytes, without rebuilding the object for every token."""

    __slots__ = ("head", "mid", "tail")

    def __init__(self, frame: bytes, slots: int = 1) -> None:
        parts: list[bytes] = []
        rest = frame
        for marker in (orjson.dumps(m) for m in SLOTS[:slots]):
            if rest.count(marker) != 1:
                raise ValueError("a template needs each slot exactly once")
            head, _, rest = rest.partition(marker)
            parts.append(head)
        self.head = parts[0]
        self.mid = parts[1] if slots > 1 else b""
        self.tail = rest

    def fill(self, value: bytes) -> bytes:
        """The frame with its one slot holding `value` (already JSON)."""
        return self.head + value + self.tail

    def fill2(self, first: bytes, second: bytes) -> bytes:
        """The frame with its two slots holding `first` and `second` (already JSON)."""
        return self.head + first + self.mid + second + self.tail


def template(build: Callable[[], bytes], slots: int = 1) -> Template | None:
    """A Template of the frame `build` makes with `SLOTS` in it, or None when a slot's
    placeholder also appears in a value (then the caller builds its frames whole)."""
    try:
        return Template(build(), slots)
    except ValueError:
        return None
