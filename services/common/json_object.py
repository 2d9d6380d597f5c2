"""Lenient JSON-object parsing for fields that must hold an object (extra_json, tool
arguments and schemas): anything else reads as an empty object."""
from __future__ import annotations

from typing import Any

import orjson

JsonObject = dict[str, Any]


def parse_json_object(raw: str | bytes) -> JsonObject:
    """The JSON object in `raw`; {} when empty, invalid or not an object."""
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
