"""Tool-call ids for Gemini function calls, which carry the call's thought signature.

Gemini 3 refuses a function-call turn sent back without the `thoughtSignature` it put on
the call, and the only field every client format returns intact is the tool-call id, so the
signature rides inside it (URL-safe base64 after a marker). Gemini often sends no id; one is
generated then, and not sent back.
"""
from __future__ import annotations

import base64
import binascii

from switchyard.common.random_hex import random_hex

_MARK = "__gsig_"
GENERATED = "gcall_"


def new_call_id() -> str:
    """An id for a call Gemini sent without one."""
    return GENERATED + random_hex(12)


def pack_call_id(call_id: str, signature: str) -> str:
    """`call_id` with `signature` folded in (unchanged when there is none)."""
    if not signature:
        return call_id
    encoded = base64.urlsafe_b64encode(signature.encode()).decode().rstrip("=")
    return f"{call_id}{_MARK}{encoded}"


def unpack_call_id(packed: str) -> tuple[str, str]:
    """(the id to send Gemini, or "" for a generated one; the signature, or "")."""
    call_id, mark, encoded = packed.partition(_MARK)
    signature = ""
    if mark:
        try:
            signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, ValueError):
            call_id, signature = packed, ""   # not ours after all: an ordinary id
    return ("" if call_id.startswith(GENERATED) else call_id), signature
