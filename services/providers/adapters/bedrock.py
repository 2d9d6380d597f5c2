"""Upstream codec for Amazon Bedrock's Converse API (`/model/{modelId}/converse` and
`/converse-stream`).

Request encoding lives in `bedrock_request`, reply decoding in `bedrock_response`, the binary
event-stream framing in `bedrock_stream` (`EventParser`, which the executor uses instead of
SSE), credentials in `providers/aws_auth.py`; this module is the codec's public face.

SigV4 signs the URL and the body, which `build_headers` is not given: `encode_request`
leaves both in a ContextVar that `build_headers` reads in the same task (the executor calls
them in that order for each target), as the Gemini codec does for its stream flag.
"""
from __future__ import annotations

from contextvars import ContextVar
from urllib.parse import quote

from yarl import URL

from switchyard.common.config.model import ProviderEntry
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.providers import aws_auth

from .bedrock_request import WIRE, encode_body
from .bedrock_response import StreamDecoder, decode_error, decode_response, decode_stream_error
from .bedrock_stream import EventParser
from .common import dump_body

__all__ = ["WIRE", "encode_request", "encode_body", "build_headers", "endpoint_url",
           "decode_response", "StreamDecoder", "EventParser", "decode_error",
           "decode_stream_error"]

_UNARY = "/converse"
_STREAM = "/converse-stream"
# (url, body) of the request `encode_request` made last in this task, for `build_headers`.
_PENDING: ContextVar[tuple[str, bytes] | None] = ContextVar("bedrock_pending", default=None)


def encode_request(req: chat_pb2.ChatRequest, entry: ProviderEntry,
                   upstream_model: str) -> tuple[bytes, list[str]]:
    """The Converse body and the client fields it could not carry; the URL and body are
    kept for `build_headers` to sign."""
    body, dropped = encode_body(req, entry, upstream_model)
    raw = dump_body(body)
    _PENDING.set((endpoint_url(entry, upstream_model, req.stream), raw))
    return raw, dropped


def endpoint_url(entry: ProviderEntry, upstream_model: str, stream: bool = False) -> str:
    """`.../model/{modelId}/converse[-stream]` in yarl's form, which the upstream client sends
    unchanged and SigV4 signs (`:` in a model id travels raw, `/` of an ARN as %2F)."""
    url = entry.endpoint.replace("{model}", quote(upstream_model, safe=""))
    if stream and url.endswith(_UNARY):
        url = url[: -len(_UNARY)] + _STREAM
    return str(URL(url))


def build_headers(entry: ProviderEntry, client_api_key: str,
                  forward_headers: dict[str, str]) -> dict[str, str]:
    """Content type and the entry's own headers, then the credentials: a Bedrock API key as
    a bearer token, or a SigV4 signature over this request (see module doc)."""
    pending = _PENDING.get()
    if pending is None:
        raise GatewayError(500, f"provider '{entry.name}': the Bedrock request must be encoded "
                                "before it is signed", provider=entry.name)
    url, body = pending
    headers = {"Content-Type": "application/json", **entry.headers}
    headers.update(aws_auth.auth_headers(entry, url, body, headers, client_api_key))
    return headers

