"""POST /v1/chat/completions (OpenAI Chat Completions), with optional conversation state."""
from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from switchyard.common.canonical.aggregate import Turn, turn_message
from switchyard.common.errors import GatewayError
from switchyard.common.proto import state_pb2
from switchyard.edge import ids
from switchyard.edge.formats import openai_chat
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


def take_gateway_fields(body: dict) -> tuple[str | None, bool]:
    """Remove what only the gateway reads: `metadata.response_id` and `store`."""
    conversation = None
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and "response_id" in metadata:
        conversation = metadata.pop("response_id")
        if not isinstance(conversation, str) or not conversation:
            raise GatewayError(400, "metadata.response_id must be a non-empty string",
                               param="metadata.response_id")
        if not metadata:
            del body["metadata"]
    store = body.pop("store", True)
    if not isinstance(store, bool):
        raise GatewayError(400, "store must be a boolean", param="store")
    return conversation, store


@guarded(openai_chat)
async def create_chat_completion(request: Request) -> Response:
    be = backends(request)
    ex = Exchange(request, openai_chat, ids.chat_completion_id())
    body = await read_json(request)
    conversation, store = take_gateway_fields(body)
    req = openai_chat.decode_request(body)
    authorize_model(request.state, req.model)
    plan = await be.routes.resolve(req.model)
    turn_input = list(req.messages)
    tenant = tenant_of(request)
    if conversation:
        history = await be.state.history(tenant, conversation)
        with_history(req, history)
    storing = store and request.app.state.chat_state
    created = int(time.time())

    async def save(turn: Turn, reply: dict | None = None) -> None:
        reply = reply or openai_chat.encode_response(
            turn, model=req.model, response_id=ex.response_id, created=created)
        await be.state.put(state_pb2.StoredResponse(
            id=ex.response_id, tenant=tenant, model=req.model,
            provider=ex.headers.get("x-switchyard-upstream", ""),
            previous_response_id=conversation or "", input=turn_input,
            output=[turn_message(c) for c in turn.choices[:1]], usage=turn.usage,
            created_at=created, body_json=orjson.dumps(reply), kind="chat.completion"))

    if req.stream:
        call, first = await open_generation(be, ex, req, plan)
        encoder = openai_chat.StreamEncoder(req.model, ex.response_id, created, req)
        return stream_response(ex, call, first, encoder, save if storing else None)
    turn = await complete(be, ex, req, plan)
    reply = openai_chat.encode_response(turn, model=req.model, response_id=ex.response_id,
                                        created=created)
    if storing:
        await save(turn, reply)
    return ex.json_response(reply)
