"""Upstream codecs: one module per wire-format family, each with the same public functions
(encode_request, build_headers, endpoint_url, decode_response, StreamDecoder, decode_error,
decode_stream_error, WIRE)."""
from __future__ import annotations

from types import ModuleType

from . import anthropic, openai_compat

# ProviderEntry.interface -> codec module.
BY_INTERFACE: dict[str, ModuleType] = {"openai": openai_compat, "anthropic": anthropic}


def for_interface(interface: str) -> ModuleType:
    """The codec module for a provider entry's `interface` ("openai" or "anthropic")."""
    try:
        return BY_INTERFACE[interface]
    except KeyError:
        raise ValueError(f"no upstream codec for interface {interface!r}") from None
