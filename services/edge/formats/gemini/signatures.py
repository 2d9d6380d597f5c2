"""thoughtSignature on Gemini's wire is base64 bytes (the SDK decodes it strictly); a
canonical signature from another family (Anthropic's) may be any string. Those travel to the
Gemini client wrapped in base64 behind a marker, and are unwrapped when they come back."""
from __future__ import annotations

import base64
import binascii

# Bytes no Gemini signature starts with in practice: they mark a wrapped foreign signature.
_MARK = b"\x00switchyard-sig:"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def _raw(sig: str) -> bytes | None:
    """The bytes of a canonical (strict, either-alphabet) base64 string, else None."""
    try:
        text = sig.encode("ascii").translate(_TO_STANDARD)
        raw = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    # Strict: re-encoding must give the same text (pydantic rejects stray trailing bits).
    return raw if base64.b64encode(raw).rstrip(b"=") == text.rstrip(b"=") else None


def to_client(sig: str) -> str:
    """A canonical signature as a Gemini client can hold it (base64)."""
    if not sig or _raw(sig) is not None:
        return sig
    return base64.b64encode(_MARK + sig.encode()).decode()


def from_client(sig: str) -> str:
    """A client's thoughtSignature back to the canonical one: ours unwrapped, Google's in
    standard base64 as Google sent it (the Python SDK sends the URL-safe alphabet)."""
    raw = _raw(sig)
    if raw is None:
        return sig
    if raw.startswith(_MARK):
        try:
            return raw[len(_MARK):].decode()
        except UnicodeDecodeError:
            return sig
    return base64.b64encode(raw).decode()
