"""Small field helpers every client codec shares: JSON type checks, the unknown-field split
that feeds `extra_json`, data URLs, and the limits on model names and response ids."""
from __future__ import annotations

import re
from typing import Any

import orjson

from switchyard.common import data_urls
from switchyard.common.errors import invalid_request, response_not_found
from switchyard.edge import ids

# Longer than any real model name or response id; longer values are a 400, never echoed.
MAX_MODEL_CHARS = 256
MAX_ID_CHARS = 256
# C0 controls (NUL included), DEL and C1 controls: never part of a name or an id.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


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


def check_name(value: str, param: str, max_chars: int) -> None:
    """400 naming `param` when a name holds a control character (NUL included) or is longer
    than `max_chars`: such a value reaches no backend and no upstream."""
    if len(value) > max_chars:
        raise invalid_request(f"Invalid '{param}': longer than {max_chars} characters.", param)
    if _CONTROL.search(value) is not None:
        raise invalid_request(f"Invalid '{param}': control characters (such as NUL) are not "
                              "allowed.", param)


def check_model(model: str, param: str = "model") -> None:
    """A model name fit to route and store (see `check_name`)."""
    check_name(model, param, MAX_MODEL_CHARS)


def check_response_id(value: str, param: str) -> None:
    """A response id worth looking up: 400 when it is no sane id at all (`check_name`),
    404 like an unknown id when it is not of the shape the gateway mints."""
    check_name(value, param, MAX_ID_CHARS)
    if not ids.is_minted(value):
        raise response_not_found(value)
