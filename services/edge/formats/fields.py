"""Small field helpers every client codec shares: JSON type checks, the unknown-field split
that feeds `extra_json`, and data URLs."""
from __future__ import annotations

from typing import Any

import orjson

from switchyard.common import data_urls


def is_int(v: Any) -> bool:
    """An integer (not a bool) within int32, the canonical model's integer fields' range."""
    return isinstance(v, int) and not isinstance(v, bool) and -2**31 <= v < 2**31


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def dumps_extra(d: dict[str, Any]) -> bytes:
    """extra_json bytes: empty when there is nothing to carry."""
    return orjson.dumps(d) if d else b""


def unknown_fields(obj: dict[str, Any], named: frozenset[str]) -> dict[str, Any]:
    """The fields of `obj` the canonical model does not name (for extra_json)."""
    if obj.keys() <= named:  # the common case: nothing unknown, no dict built
        return {}
    return {k: v for k, v in obj.items() if k not in named}


def split_data_url(url: str) -> tuple[str, str]:
    """`data:<media>;base64,<data>` -> (media without parameters, data); ("", "") for anything
    else (the caller then keeps the string as a URL)."""
    split = data_urls.split_data_url(url)
    if split is None:
        return "", ""
    media, data = split
    return media.split(";", 1)[0], data
