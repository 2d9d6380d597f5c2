"""The model listener's filter chains (Plano's `filters`, `input_filters`, `output_filters`):
services that see each request before it is decoded and each reply as it goes out. `chain`
runs them; `http` and `mcp` are the two ways a filter is called; `headers` says what a call
carries. Without filters the edge makes none of these objects (`from_config` gives None)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from switchyard.common.config.model import FilterChains

if TYPE_CHECKING:
    from switchyard.edge.filters.chain import FilterRun, Filters

__all__ = ["FilterRun", "Filters", "from_config"]


def from_config(chains: FilterChains) -> Filters | None:
    """The process's filters; None when the listener names none. The chain runner and its
    transports (aiohttp, ~9 MB) are imported only then: an edge without filters never loads
    them."""
    if not chains:
        return None
    from switchyard.edge.filters import chain
    return chain.from_config(chains)


def __getattr__(name: str) -> Any:
    if name in ("FilterRun", "Filters"):
        from switchyard.edge.filters import chain
        return getattr(chain, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
