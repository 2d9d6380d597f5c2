"""Helpers shared by the upstream codecs: extra_json merging, data URLs, headers, errors."""
from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from switchyard.common.canonical.mappings import error_type_for_status
from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import chat_pb2

# Top-level request fields a codec translates itself, so they are never reported as dropped
# even though the client decoder kept them in extra_json.
TRANSLATED_EXTRA = frozenset({"max_completion_tokens", "stream_options"})


def loads_extra(raw: bytes) -> dict:
    """The extra_json object, or {} when absent or not an object."""
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def merge_missing(target: dict, extra: dict) -> dict:
    """Merge `extra` into `target` recursively; keys the encoder produced win."""
    for key, value in extra.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            merge_missing(target[key], value)
    return target


def merge_extra(target: dict, raw: bytes) -> dict:
    """`merge_missing` from a raw extra_json field."""
    if raw:
        merge_missing(target, loads_extra(raw))
    return target


def parse_json_object(text: str) -> dict:
    """Tool arguments as an object: empty, invalid or non-object JSON becomes {}."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def data_url(media_type: str, data_b64: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data_b64}"


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media_type, base64 data) of a base64 `data:` URL, else None."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[: -len(";base64")], data


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> float:
    """Seconds to wait from `retry-after-ms` (preferred) or `retry-after` (seconds or a date)."""
    ms = header(headers, "retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = header(headers, "retry-after")
    if not value:
        return 0.0
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, IndexError):
        return 0.0


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
        retry_after=retry_after_seconds(headers) if headers else 0.0,
        code=code, param=param)


def stream_cut_error() -> chat_pb2.Error:
    """The error for a stream that ended before the upstream said it was complete."""
    return chat_pb2.Error(http_status=502, type="api_error",
                          message="upstream stream ended before completion")


def bad_chunk_error(detail: str) -> chat_pb2.Error:
    """The error for an SSE payload that is not the JSON the format promises."""
    return chat_pb2.Error(http_status=502, type="api_error",
                          message=f"upstream sent an invalid stream event: {detail}")
