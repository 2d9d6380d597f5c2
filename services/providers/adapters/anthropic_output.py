"""Structured output for Anthropic upstreams: the canonical `response_format` as
`output_config.format` for Claude models that take it (the schema fitted to what
constrained decoding accepts), else as a forced tool whose input is the answer — the
response decoder turns that tool's input back into the reply's text."""
from __future__ import annotations

from typing import Any

from switchyard.common.canonical.mappings import (
    STRUCTURED_OUTPUT_TOOL,
    anthropic_native_structured_output,
)
from switchyard.common.json_object import JsonObject, parse_json_object
from switchyard.common.proto import chat_pb2

# String formats constrained decoding knows; other keywords it cannot enforce are moved
# into the description, where the model still reads them (as Anthropic's SDKs do).
_STRING_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname",
                             "uri", "ipv4", "ipv6", "uuid"})
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
_TOOL_DESCRIPTION = ("Give your final answer by calling this tool: its input is the answer, "
                     "in the JSON shape its schema describes.")
ANY_OBJECT: JsonObject = {"type": "object"}


class NotNative(ValueError):
    """A schema constrained decoding cannot express as it means it (e.g. an open object)."""


def requested_schema(req: chat_pb2.ChatRequest) -> tuple[str, JsonObject] | None:
    """(type, schema) of the canonical `response_format`: json_schema with its schema,
    json_object with any object; None for plain text."""
    fmt = parse_json_object(req.response_format_json)
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return "json_schema", schema if isinstance(schema, dict) and schema else ANY_OBJECT
    if kind == "json_object":
        return "json_object", ANY_OBJECT
    return None


def native_format(kind: str, schema: JsonObject, model: str) -> JsonObject | None:
    """`output_config.format` for this model and schema, or None to use the forced tool."""
    if kind != "json_schema" or not anthropic_native_structured_output(model):
        return None
    try:
        return {"type": "json_schema", "schema": fit_schema(schema)}
    except NotNative:
        return None


def output_tool(schema: JsonObject) -> JsonObject:
    """The forced tool of the fallback (its input schema must describe an object, see
    `tool_schema`)."""
    return {"name": STRUCTURED_OUTPUT_TOOL, "description": _TOOL_DESCRIPTION,
            "input_schema": schema}


def tool_schema(schema: JsonObject) -> JsonObject | None:
    """The schema as a tool's input_schema, or None: tool inputs are objects, so a schema
    whose root is not one has no tool form (OpenAI's strict mode refuses those too)."""
    return schema if schema.get("type") == "object" else None


def fit_schema(schema: Any) -> JsonObject:
    """The schema as constrained decoding takes it: every object closed
    (`additionalProperties: false`), unsupported keywords folded into the description.
    Raises NotNative for what it cannot mean the same (open objects, no type)."""
    if not isinstance(schema, dict):
        raise NotNative("not a schema object")
    rest = dict(schema)
    out: JsonObject = {}
    defs = rest.pop("$defs", None)
    if isinstance(defs, dict):
        out["$defs"] = {k: fit_schema(v) for k, v in defs.items()}
    ref = rest.pop("$ref", None)
    if isinstance(ref, str):
        out["$ref"] = ref
        return out
    for key in ("enum", "const"):
        if key in rest:
            out[key] = rest.pop(key)
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(rest.get(key), list):
            out["allOf" if key == "allOf" else "anyOf"] = [fit_schema(v) for v in rest.pop(key)]
            break
    kind = rest.pop("type", None)
    for key in ("title", "description"):
        if isinstance(rest.get(key), str):
            out[key] = rest.pop(key)
    if isinstance(kind, list) or (kind is not None and kind not in _TYPES):
        raise NotNative(f"type {kind!r}")
    if kind is not None:
        out["type"] = kind
    elif not any(k in out for k in ("enum", "const", "anyOf", "allOf")):
        raise NotNative("no type")
    if kind == "object":
        extra = rest.pop("additionalProperties", False)
        if extra is not False:
            raise NotNative("an open object")  # closing it would change what it accepts
        props = rest.pop("properties", {})
        out["properties"] = {k: fit_schema(v) for k, v in (props or {}).items()}
        out["additionalProperties"] = False
        if isinstance(rest.get("required"), list):
            out["required"] = rest.pop("required")
    elif kind == "array":
        if "items" in rest:
            out["items"] = fit_schema(rest.pop("items"))
        if rest.get("minItems") in (0, 1):
            out["minItems"] = rest.pop("minItems")
    elif kind == "string" and rest.get("format") in _STRING_FORMATS:
        out["format"] = rest.pop("format")
    if rest:
        note = "{" + ", ".join(f"{k}: {v}" for k, v in rest.items()) + "}"
        out["description"] = f"{out['description']}\n\n{note}" if "description" in out \
            else note
    return out
