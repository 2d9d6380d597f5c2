"""Upstream codec for the Gemini API (generateContent / streamGenerateContent).

Request encoding lives in `gemini_request`, response decoding in `gemini_response`; this
module is the codec's public face (what the providers service calls).
"""
from __future__ import annotations

from switchyard.common.config.model import ProviderEntry

from .common import auth_headers
from .gemini_request import WIRE, encode_body, encode_request
from .gemini_response import StreamDecoder, decode_error, decode_response, decode_stream_error

__all__ = ["WIRE", "encode_request", "encode_body", "build_headers", "endpoint_url",
           "decode_response", "StreamDecoder", "decode_error", "decode_stream_error"]

_UNARY = ":generateContent"
_STREAM = ":streamGenerateContent?alt=sse"


def build_headers(entry: ProviderEntry, client_api_key: str,
                  forward_headers: dict[str, str]) -> dict[str, str]:
    """Content type, the key in `x-goog-api-key` (never in the URL, which reaches logs), then
    the entry's own headers."""
    headers = {"Content-Type": "application/json"}
    headers.update(auth_headers(entry, client_api_key))
    headers.update(entry.headers)
    return headers


def endpoint_url(entry: ProviderEntry, upstream_model: str, stream: bool = False) -> str:
    """`.../models/{model}:generateContent`, or `:streamGenerateContent?alt=sse` for a stream."""
    url = entry.endpoint.replace("{model}", upstream_model)
    if stream:
        if url.endswith(_UNARY):
            return url[: -len(_UNARY)] + _STREAM
    return url
