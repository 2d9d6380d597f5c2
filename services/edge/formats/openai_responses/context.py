"""What a Responses request carries besides the canonical request, and the one wire
convention request decoding and response encoding share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchyard.edge.formats.openai_responses.tools import ToolMap

# Prefix that marks Anthropic redacted thinking inside a reasoning item's `encrypted_content`.
REDACTED = "redacted:"


@dataclass
class ResponsesContext:
    """What a Responses request carries besides the canonical request: state and echo fields."""
    previous_response_id: str | None = None
    conversation: str | None = None   # the Conversations API conversation this turn continues
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
    tool_map: ToolMap = field(default_factory=ToolMap)  # canonical tool name -> client's tool
    dropped: list[str] = field(default_factory=list)    # what decoding had to leave out

    def applied_text(self, dropped: list[str] | None = None) -> dict[str, Any]:
        """`text` as the Responses object echoes it: the format the upstream applied, which
        is plain text when the route dropped `response_format`."""
        if dropped and "response_format" in dropped and \
                self.text.get("format", {}).get("type") != "text":
            return {**self.text, "format": {"type": "text"}}
        return self.text
