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


def sign_omitted(thinking: str) -> str:
    """The signature of a thinking block sent back empty (Anthropic `display: omitted`). It
    stands for the hidden text, so it carries its digest and is accepted with `thinking` ""."""
    digest = hashlib.sha256(thinking.encode()).digest()[:16]
    mac = hmac.new(_SIGNING_KEY, b"omitted:" + digest, hashlib.sha256).digest()
    return "Eo" + base64.b64encode(digest + mac).decode()


def _verify_omitted(thinking: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature[2:], validate=True)
    except ValueError:
        return False
    digest, mac = raw[:16], raw[16:]
    good = hmac.new(_SIGNING_KEY, b"omitted:" + digest, hashlib.sha256).digest()
    return hmac.compare_digest(good, mac) and (
        thinking == "" or hashlib.sha256(thinking.encode()).digest()[:16] == digest)


def verify_thinking(thinking: str, signature: str) -> bool:
    """True when `signature` is what `sign_thinking` issued for `thinking`, or what
    `sign_omitted` issued for a block whose text was omitted (sent back empty)."""
    if signature.startswith("Eo"):
        return _verify_omitted(thinking, signature)
    return hmac.compare_digest(sign_thinking(thinking), signature)


def sign_gemini(text: str) -> str:
    """A Gemini thoughtSignature: bytes on Google's wire, so plain base64 (SDKs decode it)."""
    mac = hmac.new(_SIGNING_KEY, b"gemini:" + text.encode(), hashlib.sha256).digest()
    return base64.b64encode(b"\x12\x40" + mac * 2).decode()


def gemini_bytes(signature: str) -> bytes | None:
    """A bytes field as Google's JSON parser reads it: standard or URL-safe base64."""
    try:
        return base64.urlsafe_b64decode(signature.replace("+", "-").replace("/", "_")
                                        + "=" * (-len(signature) % 4))
    except ValueError:
        return None


def verify_gemini(text: str, signature: str) -> bool:
    """True when `signature` decodes to the bytes `sign_gemini` issued for `text`."""
    got = gemini_bytes(signature)
    return got is not None and hmac.compare_digest(base64.b64decode(sign_gemini(text)), got)
