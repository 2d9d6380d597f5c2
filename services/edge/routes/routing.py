"""Plano's routing decision API: POST /routing/v1/chat/completions, /routing/v1/messages and
/routing/v1/responses take the same body as the endpoint they prefix and answer
`{"models": [...], "route": name or null, "trace_id": ...}` — the ranked candidates the
gateway would use (models[0] first, the rest on 429/5xx) — without calling any upstream."""
from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from switchyard.edge import preferences
from switchyard.edge.formats.anthropic_messages import FORMAT as MESSAGES
from switchyard.edge.formats.base import ClientFormat
from switchyard.edge.formats.openai_chat import FORMAT as CHAT
from switchyard.edge.formats.openai_responses import FORMAT as RESPONSES
from switchyard.edge.pipeline import Exchange, admit
from switchyard.edge.routes.common import guarded

PREFIX = "/routing"


async def decision(request: Request, fmt: ClientFormat) -> Response:
    ex = Exchange(request, fmt, "")
    decoded, _ = await admit(ex)   # decode, authorize, route: what a generation would do
    routing = ex.routing
    if routing is not None and routing.route is not None:
        models, route = list(routing.models), routing.route
    else:
        models, route = [decoded.request.model], None
        ex.headers.setdefault("x-switchyard-route", "none")
    body = {"models": models, "route": route, "trace_id": preferences.trace_id(request)}
    return Response(orjson.dumps(body), headers=ex.headers, media_type="application/json")


@guarded(CHAT)
async def chat_completions(request: Request) -> Response:
    return await decision(request, CHAT)


@guarded(MESSAGES)
async def messages(request: Request) -> Response:
    return await decision(request, MESSAGES)


@guarded(RESPONSES)
async def responses(request: Request) -> Response:
    return await decision(request, RESPONSES)


ROUTES = {f"{PREFIX}/v1/chat/completions": chat_completions,
          f"{PREFIX}/v1/messages": messages,
          f"{PREFIX}/v1/responses": responses}
