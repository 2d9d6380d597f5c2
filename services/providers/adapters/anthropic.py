"""Upstream codec for Anthropic Messages.

Request encoding lives in `anthropic_request`, response decoding in `anthropic_response`;
this module is the codec's public face (what the providers service calls).
"""
from __future__ import annotations

from collections.abc import Mapping

from switchyard.common.config.model import ProviderEntry
from switchyard.common.http_headers import header
from switchyard.common.proto import chat_pb2

from .anthropic_request import WIRE, encode_body, encode_request
from .anthropic_response import StreamDecoder, decode_response, decode_stream_error
from .common import auth_headers, http_error, parse_error_body

__all__ = ["WIRE", "encode_request", "encode_body", "build_headers", "endpoint_url",
           "decode_response", "StreamDecoder", "decode_error", "decode_stream_error"]

DEFAULT_VERSION = "2023-06-01"


def build_headers(entry: ProviderEntry, client_api_key: str,
                  forward_headers: dict[str, str]) -> dict[str, str]:
    """Content type, auth, `anthropic-version` (forwarded or default), `anthropic-beta`, then
    the entry's own headers."""
    headers = {"Content-Type": "application/json",
               "anthropic-version": header(forward_headers, "anthropic-version") or DEFAULT_VERSION}
    beta = header(forward_headers, "anthropic-beta")
    if beta:
        headers["anthropic-beta"] = beta
    headers.update(auth_headers(entry, client_api_key))
    headers.update(entry.headers)
    return headers


def endpoint_url(entry: ProviderEntry, upstream_model: str, stream: bool = False) -> str:
    """The messages URL (the model travels in the body)."""
    return entry.endpoint.replace("{model}", upstream_model)


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> chat_pb2.Error:
    """A non-2xx upstream reply -> Error, keeping the upstream's message for the client."""
    parsed = parse_error_body(body)
    message, etype = "", ""
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed)
        if isinstance(err, dict):
            message = str(err.get("message") or "")
            etype = str(err.get("type") or "")
        elif isinstance(err, str):
            message = err
    elif isinstance(parsed, str):
        message = parsed
    if etype == "overloaded_error":
        return http_error(529, message, headers, type="overloaded")
    return http_error(status, message, headers)
