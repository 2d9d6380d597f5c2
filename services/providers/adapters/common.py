"""Helpers shared by the upstream codecs: extra_json merging, headers, errors, stream chunks."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from switchyard.common.canonical.mappings import error_type_for_status
from switchyard.common.config.model import ProviderEntry
from switchyard.common.errors import invalid_request
from switchyard.common.http_headers import retry_after_seconds
from switchyard.common.json_object import JsonObject, parse_json_object
from switchyard.common.proto import chat_pb2

# Top-level request fields a codec translates itself, so they are never reported as dropped
# even though the client decoder kept them in extra_json (for same-format routes): thinking
# and Anthropic's output settings travel as canonical reasoning and response_format.
TRANSLATED_EXTRA = frozenset({"max_completion_tokens", "stream_options", "thinking",
                              "output_config", "output_format"})


BodyEncoder = Callable[[chat_pb2.ChatRequest, ProviderEntry, str], tuple[JsonObject, list[str]]]
RequestEncoder = Callable[[chat_pb2.ChatRequest, ProviderEntry, str], tuple[bytes, list[str]]]


def request_encoder(encode_body: BodyEncoder) -> RequestEncoder:
    """A codec's `encode_request`: its `encode_body` (the dict tests read), serialised."""
    def encode_request(req: chat_pb2.ChatRequest, entry: ProviderEntry,
                       upstream_model: str) -> tuple[bytes, list[str]]:
        """The upstream JSON body and the top-level client parameters it could not carry."""
        body, dropped = encode_body(req, entry, upstream_model)
        return dump_body(body), dropped
    return encode_request


def dump_body(body: JsonObject) -> bytes:
    """The upstream request body as JSON. A value nested deeper than orjson writes (a tool
    call's arguments parsed into an object, say) is the client's 400, not a codec failure."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        raise invalid_request(f"the request cannot be encoded for the upstream: {exc}") from None


def merge_missing(target: JsonObject, extra: JsonObject) -> JsonObject:
    """Merge `extra` into `target` recursively; keys the encoder produced win."""
    for key, value in extra.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            merge_missing(target[key], value)
    return target


def merge_extra(target: JsonObject, raw: bytes) -> JsonObject:
    """`merge_missing` from a raw extra_json field."""
    if raw:
        merge_missing(target, parse_json_object(raw))
    return target


def carry_extra(body: JsonObject, extra: JsonObject, same: bool, dropped: list[str]) -> None:
    """The extra_json rule for a request body: merged back on a same-format route, else every
    field the codec does not translate itself is reported dropped."""
    if same:
        merge_missing(body, extra)
    else:
        dropped.extend(k for k in extra if k not in TRANSLATED_EXTRA)


def is_function_tool(tool: chat_pb2.Tool, req: chat_pb2.ChatRequest) -> bool:
    """A tool OpenAI's APIs take as a function: no type, `function`, or Anthropic's optional
    `type: "custom"` (an ordinary function tool there). Any other type is a hosted tool."""
    return tool.type in ("", "function") or (
        tool.type == "custom" and req.source_format == chat_pb2.WIRE_FORMAT_ANTHROPIC)


def auth_headers(entry: ProviderEntry, client_api_key: str) -> dict[str, str]:
    """The credential header for `entry.auth`; the client's key with passthrough_auth."""
    key = client_api_key if entry.passthrough_auth else entry.access_key
    if not key or entry.auth == "none":
        return {}
    if entry.auth == "bearer":
        return {"Authorization": f"Bearer {key}"}
    if entry.auth == "api-key":
        return {"api-key": key}
    if entry.auth == "x-api-key":
        return {"x-api-key": key}
    if entry.auth == "x-goog-api-key":
        return {"x-goog-api-key": key}
    return {}


def parse_error_body(body: bytes) -> Any:
    """The error body as JSON, or its text when it is not JSON."""
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:2000]


def http_error(status: int, message: str, headers: Mapping[str, str] | None = None, *,
               code: str = "", param: str = "", type: str = "") -> chat_pb2.Error:
    """An Error for an upstream HTTP status, with the canonical type and retry-after."""
    return chat_pb2.Error(
        http_status=status, type=type or error_type_for_status(status),
        message=message or f"upstream returned HTTP {status}",
        retry_after=(retry_after_seconds(headers) or 0.0) if headers else 0.0,
        code=code, param=param)


def stream_cut_error() -> chat_pb2.Error:
    """The error for a stream that ended before the upstream said it was complete."""
    return chat_pb2.Error(http_status=502, type="api_error",
                          message="upstream stream ended before completion")


def bad_chunk_error(detail: str) -> chat_pb2.Error:
    """The error for an SSE payload that is not the JSON the format promises."""
    return chat_pb2.Error(http_status=502, type="api_error",
                          message=f"upstream sent an invalid stream event: {detail}")


def load_chunk(data: bytes) -> JsonObject | chat_pb2.Error:
    """One SSE payload as the JSON object the format promises, or the error to end on."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return bad_chunk_error("not JSON")
    if not isinstance(value, dict):
        return bad_chunk_error("not an object")
    return value
