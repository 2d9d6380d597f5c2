"""Gemini's `Schema` (an OpenAPI 3.0 subset: upper-case types, `nullable`, camelCase or
snake_case keys) -> JSON Schema, the canonical model's schema language."""
from __future__ import annotations

from typing import Any

# Gemini Schema keys -> their JSON Schema spelling (the SDK sends both key styles).
_KEYS: dict[str, str] = {
    "type": "type", "format": "format", "title": "title", "description": "description",
    "enum": "enum", "required": "required", "default": "default", "pattern": "pattern",
    "minimum": "minimum", "maximum": "maximum",
    "minItems": "minItems", "min_items": "minItems", "maxItems": "maxItems",
    "max_items": "maxItems", "minLength": "minLength", "min_length": "minLength",
    "maxLength": "maxLength", "max_length": "maxLength", "minProperties": "minProperties",
    "min_properties": "minProperties", "maxProperties": "maxProperties",
    "max_properties": "maxProperties"}
# Keys with a sub-schema (or a list / map of them).
_NESTED = {"items": "items", "anyOf": "anyOf", "any_of": "anyOf", "properties": "properties"}
# Gemini-only keys with no JSON Schema meaning: key order, examples for the model.
_IGNORED = frozenset({"propertyOrdering", "property_ordering", "example", "nullable"})


def to_json_schema(schema: Any) -> Any:
    """A Gemini Schema object as JSON Schema; non-objects are returned as they are."""
    if not isinstance(schema, dict):
        return schema
    src: dict[str, Any] = schema
    out: dict[str, Any] = {}
    for key, value in src.items():
        if key in _IGNORED:
            continue
        nested = _NESTED.get(key)
        if nested == "properties" and isinstance(value, dict):
            out["properties"] = {k: to_json_schema(v) for k, v in value.items()}
        elif nested == "anyOf" and isinstance(value, list):
            out["anyOf"] = [to_json_schema(v) for v in value]
        elif nested == "items":
            out["items"] = to_json_schema(value)
        elif key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        else:
            out[_KEYS.get(key, key)] = value
    if src.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out
