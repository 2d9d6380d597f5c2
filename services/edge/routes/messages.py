"""POST /v1/messages and /v1/messages/count_tokens (Anthropic Messages)."""
from __future__ import annotations

import time

import grpc
import orjson
from starlette.requests import Request
from starlette.responses import Response

from services.common.proto import providers_pb2
from services.edge import ids
from services.edge.formats import anthropic_messages
from services.edge.pipeline import (Exchange, collect, grpc_to_gateway_error, open_generation,
                                    read_json, stream_response)
from services.edge.guard import authorize_model
from services.edge.routes.common import backends, guarded


@guarded(anthropic_messages)
async def create_message(request: Request) -> Response:
    be = backends(request)
    ex = Exchange(request, anthropic_messages, ids.message_id())
    req = anthropic_messages.decode_request(await read_json(request))
    authorize_model(request.state, req.model)
    plan = await be.routes.resolve(req.model)
    call, first = await open_generation(be, ex, req, plan)
    created = int(time.time())
    if req.stream:
        encoder = anthropic_messages.StreamEncoder(req.model, ex.response_id, created, req)
        return stream_response(ex, call, first, encoder)
    turn = await collect(call, first)
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
    gen = providers_pb2.GenerateRequest(request=req, plan=plan, request_id=ex.request_id,
                                        client_api_key=ex.client_api_key(),
                                        forward_headers=ex.forward_headers())
    try:
        reply = await be.providers.CountTokens(gen, timeout=plan.timeout_s or 30.0)
    except grpc.aio.AioRpcError as exc:
        raise grpc_to_gateway_error(exc, "providers") from None
    if reply.estimated:
        ex.headers["x-switchyard-estimated"] = "true"
    return Response(orjson.dumps({"input_tokens": reply.input_tokens}), headers=ex.headers,
                    media_type="application/json")
