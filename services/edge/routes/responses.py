"""The OpenAI Responses API: create (the shared flow; stored unless `store: false`), and the
stored responses' get, delete and input items."""
from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from switchyard.common.errors import GatewayError, response_not_found
from switchyard.common.proto import state_pb2
from switchyard.edge.formats.fields import check_response_id
from switchyard.edge.formats.openai_responses import FORMAT, input_items_page
from switchyard.edge.pipeline import backends, serve_turn, tenant_of
from switchyard.edge.routes.common import guarded


@guarded(FORMAT)
async def create_response(request: Request) -> Response:
    return await serve_turn(request, FORMAT)


async def websocket_upgrade(websocket: WebSocket) -> None:
    """A WebSocket upgrade on /v1/responses (Codex tries the Responses WebSocket mode
    first): 426 Upgrade Required, on which clients fall back to HTTP POST at once."""
    status, body = FORMAT.error_body(GatewayError(
        426, "WebSocket mode of the Responses API is not supported by this gateway; send "
        "POST /v1/responses (streamed with `stream: true`)", type="invalid_request",
        code="websocket_not_supported"))
    await websocket.send_denial_response(Response(orjson.dumps(body), status_code=status,
                                                  media_type="application/json"))


def _path_id(request: Request) -> str:
    """The path's response id, refused (400/404) before any backend call when malformed."""
    response_id: str = request.path_params["response_id"]
    check_response_id(response_id, "response_id")
    return response_id


async def _stored(request: Request) -> state_pb2.StoredResponse:
    response_id = _path_id(request)
    stored = await backends(request).state.get(tenant_of(request), response_id)
    if stored.kind != "response":
        raise response_not_found(response_id)
    return stored


@guarded(FORMAT)
async def get_response(request: Request) -> Response:
    stored = await _stored(request)
    return Response(stored.body_json, media_type="application/json")


@guarded(FORMAT)
async def delete_response(request: Request) -> Response:
    response_id = _path_id(request)
    await _stored(request)
    await backends(request).state.delete(tenant_of(request), response_id)
    return Response(orjson.dumps({"id": response_id, "object": "response", "deleted": True}),
                    media_type="application/json")


@guarded(FORMAT)
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
    page = input_items_page(items, limit=limit, order=order, after=q.get("after"))
    return Response(orjson.dumps(page), media_type="application/json")
