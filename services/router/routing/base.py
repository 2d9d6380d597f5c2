"""The seam between the routing engine and its classifiers."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from switchyard.common.config.model import RoutePreference
from switchyard.common.proto import router_pb2


class ModelUnavailable(RuntimeError):
    """The routing extra (model weights, onnxruntime, onnx, tokenizers) is not installed.
    Defined here, not in minilm.py, so naming it imports no numpy."""


@dataclass(frozen=True)
class Choice:
    """A classifier's verdict: the route (None: keep the request's model) and why."""
    route: str | None
    reason: str                  # matched | below_threshold | no_route | no_user_text | ...
    score: float = 0.0


class Classifier(Protocol):
    """Picks at most one route for a conversation (text of its recent turns)."""

    name: str                    # embedding | llm

    async def start(self, routes: Sequence[RoutePreference]) -> None:
        """Prepare for the config's routes (the embedding router embeds them here)."""
        ...

    async def classify(self, messages: Sequence[router_pb2.RouteMessage],
                       routes: Sequence[RoutePreference], request_id: str = "",
                       traceparent: str = "") -> Choice:
        """The route for the latest user intent among `routes`, or a Choice without one."""
        ...

    async def close(self) -> None:
        ...
