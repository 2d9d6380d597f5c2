"""The typed seam between the executor and the upstream codecs.

A codec is a module whose top-level names satisfy `UpstreamCodec`. Adding a provider family
means writing one such module and adding one line to `BY_INTERFACE` in
`adapters/__init__.py`; mypy checks the module against `UpstreamCodec` there.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from switchyard.common.config.model import ProviderEntry
from switchyard.common.json_object import JsonObject
from switchyard.common.proto import chat_pb2


@runtime_checkable
class StreamDecoder(Protocol):
    """Decodes the SSE `data:` payloads of one upstream stream into canonical events."""

    def feed(self, data: bytes) -> list[chat_pb2.StreamEvent]:
        """The events one `data:` payload completes."""
        ...

    def finish(self) -> list[chat_pb2.StreamEvent]:
        """End of the HTTP stream: what is still pending, or an error for a cut stream."""
        ...


_Decoder = StreamDecoder   # `UpstreamCodec.StreamDecoder` shadows the name in its class body


@runtime_checkable
class UpstreamCodec(Protocol):
    """What the executor calls on an upstream wire-format family (one module per family)."""

    @property
    def WIRE(self) -> chat_pb2.WireFormat:
        """The wire format spoken; a request from a client of this format is "same-format"."""
        ...

    @property
    def StreamDecoder(self) -> Callable[[], _Decoder]:
        """Makes the decoder for one streamed reply."""
        ...

    def encode_request(self, req: chat_pb2.ChatRequest, entry: ProviderEntry,
                       upstream_model: str) -> tuple[bytes, list[str]]:
        """The JSON request body, and the top-level client fields it could not carry."""
        ...

    def build_headers(self, entry: ProviderEntry, client_api_key: str,
                      forward_headers: dict[str, str]) -> dict[str, str]:
        """The request headers: content type, credentials, the entry's own headers."""
        ...

    def endpoint_url(self, entry: ProviderEntry, upstream_model: str,
                     stream: bool = False) -> str:
        """The URL to POST the request to (Gemini names the streaming operation in it)."""
        ...

    def decode_response(self, body: JsonObject) -> list[chat_pb2.StreamEvent]:
        """A whole (non-streamed) reply as the events its stream would have given."""
        ...

    def decode_error(self, status: int, body: bytes,
                     headers: Mapping[str, str]) -> chat_pb2.Error:
        """A non-2xx reply as an Error that keeps the upstream's message."""
        ...

    def decode_stream_error(self, payload: JsonObject) -> chat_pb2.Error:
        """An error object sent inside a 200 stream or body as an Error."""
        ...
