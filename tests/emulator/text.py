"""Deterministic text helpers: word "tokens", stream chunking, thinking signatures."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re

_WORDS = re.compile(r"\S+")
# A "token" is a word with the whitespace before it (like BPE's " word"); trailing space kept.
_PIECES = re.compile(r"\s*\S+|\s+$")
_SIGNING_KEY = b"switchyard-emulator-thinking-v1"


def count_tokens(text: str) -> int:
    """Rough token count: the number of whitespace-separated words."""
    return len(_WORDS.findall(text))


def pieces(text: str) -> list[str]:
    """Split text into word tokens whose concatenation is exactly `text`."""
    return _PIECES.findall(text)


def truncate_tokens(text: str, limit: int) -> tuple[str, bool]:
    """The first `limit` tokens of text, and whether anything was cut."""
    parts = pieces(text)
    if len(parts) <= limit:
        return text, False
    return "".join(parts[:limit]), True


def text_chunks(text: str, count: int | None = None) -> list[str]:
    """Stream fragments of text: one per token, or `count` roughly equal groups of tokens."""
    parts = pieces(text)
    if not parts:
        return []
    if not count or count >= len(parts):
        return parts
    size, extra = divmod(len(parts), count)
    out, i = [], 0
    for n in range(count):
        step = size + (1 if n < extra else 0)
        out.append("".join(parts[i:i + step]))
        i += step
    return out


def fragments(s: str, size: int = 7) -> list[str]:
    """Split a string every `size` characters, ignoring token boundaries (as real streams do)."""
    return [s[i:i + size] for i in range(0, len(s), size)] or [""]


def sign_thinking(thinking: str) -> str:
    """The signature the emulator issues for a thinking text (HMAC, so it can be verified)."""
    mac = hmac.new(_SIGNING_KEY, thinking.encode(), hashlib.sha256).digest()
    return "Eq" + base64.b64encode(mac * 3).decode()


def verify_thinking(thinking: str, signature: str) -> bool:
    """True when `signature` is exactly what `sign_thinking` issued for `thinking`."""
    return hmac.compare_digest(sign_thinking(thinking), signature)
