"""The OpenAI Responses API: create (stateful through the state service), get, delete,
input items."""
from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from switchyard.common.canonical.aggregate import Turn, turn_message
from switchyard.common.errors import GatewayError
from switchyard.common.proto import state_pb2
from switchyard.edge import ids
from switchyard.edge.formats import openai_responses
from switchyard.edge.guard import authorize_model
from switchyard.edge.pipeline import (
    Exchange,
    complete,
    open_generation,
    read_json,
    stream_response,
    with_history,
)
from switchyard.edge.routes.common import backends, guarded, tenant_of


@guarded(openai_responses)
async def create_response(request: Request) -> Response:
    be = backends(request)
    ex = Exchange(request, openai_responses, ids.response_id())
    req, ctx = openai_responses.decode_request(await read_json(request))
    authorize_model(request.state, req.model)
    plan = await be.routes.resolve(req.model)
    # `instructions` apply to this turn only: keep them out of what is stored.
    turn_input = list(req.messages[1:] if ctx.instructions is not None else req.messages)
    tenant = tenant_of(request)
    if ctx.previous_response_id:
        with_history(req, await be.state.history(tenant, ctx.previous_response_id))
    created = int(time.time())

    async def save(turn: Turn, reply: dict) -> None:
        await be.state.put(state_pb2.StoredResponse(
            id=ex.response_id, tenant=tenant, model=req.model,
            provider=ex.headers.get("x-switchyard-upstream", ""),
            previous_response_id=ctx.previous_response_id or "", input=turn_input,
            output=[turn_message(c) for c in turn.choices[:1]], usage=turn.usage,
            created_at=created, body_json=orjson.dumps(reply),
            input_items_json=orjson.dumps(ctx.input_items), kind="response"))

    if req.stream:
        call, first = await open_generation(be, ex, req, plan)
        encoder = openai_responses.StreamEncoder(req.model, ex.response_id, created, req, ctx)

        async def save_streamed(turn: Turn) -> None:
            await save(turn, encoder.final_response())

        return stream_response(ex, call, first, encoder,
                               save_streamed if ctx.store else None, finish=encoder.completed)
    turn = await complete(be, ex, req, plan)
    reply = openai_responses.encode_response(turn, model=req.model, response_id=ex.response_id,
                                             created=created, ctx=ctx)
    if ctx.store:
        await save(turn, reply)
    return ex.json_response(reply)


async def _stored(request: Request) -> state_pb2.StoredResponse:
    response_id = request.path_params["response_id"]
    stored = await backends(request).state.get(tenant_of(request), response_id)
    if stored.kind != "response":
        raise GatewayError(404, f"No response found with id '{response_id}'.", type="not_found")
    return stored


@guarded(openai_responses)
async def get_response(request: Request) -> Response:
    stored = await _stored(request)
    return Response(stored.body_json, media_type="application/json")


@guarded(openai_responses)
async def delete_response(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    await _stored(request)
    await backends(request).state.delete(tenant_of(request), response_id)
    return Response(orjson.dumps({"id": response_id, "object": "response", "deleted": True}),
                    media_type="application/json")


@guarded(openai_responses)
async def list_input_items(request: Request) -> Response:
    stored = await _stored(request)
    q = request.query_params
    try:
        limit = int(q.get("limit", "20"))
    except ValueError:
        raise GatewayError(400, "limit must be an integer", param="limit") from None
    if not 1 <= limit <= 100:
        raise GatewayError(400, "limit must be between 1 and 100", param="limit")
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise GatewayError(400, "order must be 'asc' or 'desc'", param="order")
    items = orjson.loads(stored.input_items_json or b"[]")
    page = openai_responses.input_items_page(items, limit=limit, order=order,
                                             after=q.get("after"))
    return Response(orjson.dumps(page), media_type="application/json")



