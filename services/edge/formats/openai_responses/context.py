"""What a Responses request carries besides the canonical request, and the one wire
convention request decoding and response encoding share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Prefix that marks Anthropic redacted thinking inside a reasoning item's `encrypted_content`.
REDACTED = "redacted:"


@dataclass
class ResponsesContext:
    """What a Responses request carries besides the canonical request: state and echo fields."""
    previous_response_id: str | None = None
    store: bool = True
    instructions: str | None = None
    metadata: dict[str, Any] | None = None
    input_items: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool = True
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: dict[str, Any] = field(default_factory=lambda: {"effort": None, "summary": None})
    user: str | None = None
    truncation: str = "disabled"
