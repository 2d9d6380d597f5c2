"""POST /v1/messages and /v1/messages/count_tokens (Anthropic Messages)."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from switchyard.edge.formats.anthropic_messages import FORMAT
from switchyard.edge.pipeline import Exchange, admit, backends, generate_request, serve_turn
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
    ex = Exchange(request, FORMAT, "")
    decoded, plan = await admit(ex, _count_tokens_body)
    reply = await backends(request).count_tokens(generate_request(ex, decoded.request, plan),
                                                 timeout=plan.timeout_s or 30.0)
    if reply.estimated:
        ex.headers["x-switchyard-estimated"] = "true"
    return Response(orjson.dumps({"input_tokens": reply.input_tokens}), headers=ex.headers,
                    media_type="application/json")
