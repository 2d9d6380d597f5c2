"""Upstream codec for OpenAI's Responses API (`POST /v1/responses`), for models served only
there (`provider_interface: openai_responses`, or automatically for the models
`providers_table.RESPONSES_ONLY` names) and for Responses clients that should lose nothing.

Request encoding lives in `openai_responses_request`, reply decoding in
`openai_responses_response`; this module is the codec's public face. HTTP errors have Chat
Completions' shape, so `openai_compat.decode_error` reads them.
"""
from __future__ import annotations

from urllib.parse import quote

from switchyard.common.config.model import ProviderEntry

from .openai_compat import build_headers, decode_error  # the same bearer auth and headers
from .openai_responses_request import WIRE, encode_body, encode_request
from .openai_responses_response import StreamDecoder, decode_response, decode_stream_error

__all__ = ["WIRE", "encode_request", "encode_body", "build_headers", "endpoint_url",
           "decode_response", "StreamDecoder", "decode_error", "decode_stream_error"]

_CHAT = "/chat/completions"
_RESPONSES = "/responses"


def endpoint_url(entry: ProviderEntry, upstream_model: str, stream: bool = False) -> str:
    """The entry's `/responses` URL; an `openai/*` entry (configured for chat completions)
    answering a Responses-only model gets its `/chat/completions` swapped for `/responses`."""
    url = entry.endpoint.replace("{model}", quote(upstream_model, safe=""))
    path, sep, query = url.partition("?")
    if path.endswith(_CHAT):
        path = path[: -len(_CHAT)] + _RESPONSES
    return path + sep + query
