"""POST /v1/messages and /v1/messages/count_tokens (Anthropic Messages)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from switchyard.edge.formats.anthropic_messages import FORMAT
from switchyard.edge.pipeline import serve_count, serve_turn
from switchyard.edge.routes.common import guarded


@guarded(FORMAT)
async def create_message(request: Request) -> Response:
    return await serve_turn(request, FORMAT)


def _count_tokens_body(body: dict[str, Any]) -> None:
    body.setdefault("max_tokens", 1)  # count_tokens takes no max_tokens; the decoder wants one


@guarded(FORMAT)
async def count_tokens(request: Request) -> Response:
    """Counted by an Anthropic upstream when the model routes to one, else estimated. The
    key's model allow-list applies, as for a generation."""
    return await serve_count(request, FORMAT, _count_tokens_body, "input_tokens")
