"""Upstream codecs: one module per wire-format family, each satisfying `base.UpstreamCodec`."""
from __future__ import annotations

from . import anthropic, gemini, openai_compat
from .base import UpstreamCodec

# ProviderEntry.interface -> codec module; the annotation makes mypy check each module.
BY_INTERFACE: dict[str, UpstreamCodec] = {"openai": openai_compat, "anthropic": anthropic,
                                           "gemini": gemini}


def for_interface(interface: str) -> UpstreamCodec:
    """The codec module for a provider entry's `interface` ("openai", "anthropic", "gemini")."""
    try:
        return BY_INTERFACE[interface]
    except KeyError:
        raise ValueError(f"no upstream codec for interface {interface!r}") from None
