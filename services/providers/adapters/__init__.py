"""Upstream codecs: one module per wire-format family, each satisfying `base.UpstreamCodec`."""
from __future__ import annotations

from switchyard.common.config.model import ProviderEntry
from switchyard.common.config.providers_table import responses_only

from . import anthropic, bedrock, gemini, openai_compat, openai_responses
from .base import UpstreamCodec

# ProviderEntry.interface -> codec module; the annotation makes mypy check each module.
BY_INTERFACE: dict[str, UpstreamCodec] = {"openai": openai_compat, "anthropic": anthropic,
                                           "gemini": gemini, "bedrock": bedrock,
                                           "openai_responses": openai_responses}


def for_interface(interface: str) -> UpstreamCodec:
    """The codec module for a provider entry's `interface` ("openai", "anthropic", "gemini")."""
    try:
        return BY_INTERFACE[interface]
    except KeyError:
        raise ValueError(f"no upstream codec for interface {interface!r}") from None


def for_model(codec: UpstreamCodec, entry: ProviderEntry, upstream_model: str) -> UpstreamCodec:
    """The codec for one target: an `openai/*` entry answering a model OpenAI serves only on
    the Responses API speaks that API (concrete entries are switched by the config)."""
    if codec is openai_compat and responses_only(entry.provider, upstream_model):
        return openai_responses
    return codec
