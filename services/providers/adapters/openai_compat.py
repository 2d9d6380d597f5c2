"""Upstream codec for OpenAI Chat Completions and every OpenAI-compatible server.

Request encoding lives in `openai_request`, response decoding in `openai_response`; this
module is the codec's public face (what the providers service calls).
"""
from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from switchyard.common.config.model import ProviderEntry
from switchyard.common.config.providers_table import AZURE_DEFAULT_API_VERSION
from switchyard.common.proto import chat_pb2

from .common import auth_headers, http_error, parse_error_body
from .openai_request import WIRE, encode_body, encode_request
from .openai_response import StreamDecoder, decode_response, decode_stream_error

__all__ = ["WIRE", "encode_request", "encode_body", "build_headers", "endpoint_url",
           "decode_response", "StreamDecoder", "decode_error", "decode_stream_error"]


def build_headers(entry: ProviderEntry, client_api_key: str,
                  forward_headers: dict[str, str]) -> dict[str, str]:
    """Request headers: content type, auth per `entry.auth`, then the entry's own headers."""
    headers = {"Content-Type": "application/json"}
    headers.update(auth_headers(entry, client_api_key))
    headers.update(entry.headers)
    return headers


def endpoint_url(entry: ProviderEntry, upstream_model: str, stream: bool = False) -> str:
    """The chat URL; Azure endpoints name the deployment (`{model}`) and need an api-version."""
    url = entry.endpoint.replace("{model}", quote(upstream_model, safe=""))
    if entry.provider == "azure_openai" and "api-version=" not in url:
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}api-version={entry.api_version or AZURE_DEFAULT_API_VERSION}"
    return url


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> chat_pb2.Error:
    """A non-2xx upstream reply -> Error, keeping the upstream's message for the client."""
    parsed = parse_error_body(body)
    message, code, param = "", "", ""
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed)
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("detail") or "")
            code = "" if err.get("code") is None else str(err["code"])
            param = str(err.get("param") or "")
        elif isinstance(err, str):
            message = err
        if not message and parsed.get("detail"):  # FastAPI-style servers (vLLM, ...)
            detail = parsed["detail"]
            message = detail if isinstance(detail, str) else str(detail)
    elif isinstance(parsed, str):
        message = parsed
    return http_error(status, message, headers, code=code, param=param)
