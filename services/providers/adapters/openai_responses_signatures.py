"""OpenAI's encrypted reasoning (`encrypted_content`) carried as a reasoning signature.

With `store: false` the next turn needs each reasoning item's `encrypted_content` back. It
travels in the canonical reasoning part's `signature` behind a marker, so the Responses codec
sends back only what OpenAI encrypted (an Anthropic signature would be refused) and the other
codecs can tell an OpenAI blob from a signature of their own. Clients see it opaque: the
Responses format renders it as `encrypted_content`, Anthropic's as a thinking signature.
"""
from __future__ import annotations

MARK = "openai-encrypted:"   # not base64, so no upstream signature starts with it


def pack(encrypted_content: str) -> str:
    """The canonical signature for an OpenAI reasoning item's encrypted content."""
    return MARK + encrypted_content if encrypted_content else ""


def is_openai_signature(signature: str) -> bool:
    return signature.startswith(MARK)


def unpack(signature: str) -> str | None:
    """The encrypted content a signature carries, or None when OpenAI did not make it."""
    return signature[len(MARK):] if signature.startswith(MARK) else None
