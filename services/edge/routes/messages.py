"""POST /v1/messages and /v1/messages/count_tokens (Anthropic Messages)."""
from __future__ import annotations

import time

import grpc
import orjson
from starlette.requests import Request
from starlette.responses import Response

from switchyard.edge import ids
from switchyard.edge.formats import anthropic_messages
from switchyard.edge.guard import authorize_model
from switchyard.edge.pipeline import (
    Exchange,
    complete,
    generate_request,
    grpc_to_gateway_error,
    open_generation,
    read_json,
    stream_response,
)
from switchyard.edge.routes.common import backends, guarded


@guarded(anthropic_messages)
async def create_message(request: Request) -> Response:
    be = backends(request)
    ex = Exchange(request, anthropic_messages, ids.message_id())
    req = anthropic_messages.decode_request(await read_json(request))
    authorize_model(request.state, req.model)
    plan = await be.routes.resolve(req.model)
    created = int(time.time())
    if req.stream:
        call, first = await open_generation(be, ex, req, plan)
        encoder = anthropic_messages.StreamEncoder(req.model, ex.response_id, created, req)
        return stream_response(ex, call, first, encoder)
    turn = await complete(be, ex, req, plan)
    return ex.json_response(anthropic_messages.encode_response(
        turn, model=req.model, response_id=ex.response_id, created=created))


@guarded(anthropic_messages)
async def count_tokens(request: Request) -> Response:
    """Counted by an Anthropic upstream when the model routes to one, else estimated."""
    be = backends(request)
    ex = Exchange(request, anthropic_messages, "")
    body = await read_json(request)
    body.setdefault("max_tokens", 1)  # count_tokens takes no max_tokens; the decoder wants one
    req = anthropic_messages.decode_request(body)
    plan = await be.routes.resolve(req.model)
    try:
        reply = await be.providers.CountTokens(generate_request(ex, req, plan),
                                               timeout=plan.timeout_s or 30.0)
    except grpc.aio.AioRpcError as exc:
        raise grpc_to_gateway_error(exc, "providers") from None
    if reply.estimated:
        ex.headers["x-switchyard-estimated"] = "true"
    return Response(orjson.dumps({"input_tokens": reply.input_tokens}), headers=ex.headers,
                    media_type="application/json")
