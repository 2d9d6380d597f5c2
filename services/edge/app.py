"""The edge's HTTP application: four client wire formats on one listener."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from switchyard.common.config.model import Config
from switchyard.common.errors import GatewayError
from switchyard.common.telemetry import request_log, tracer
from switchyard.edge import filters, observe, preferences, probes
from switchyard.edge.clients.backends import Backends
from switchyard.edge.clients.base import EdgeBackends
from switchyard.edge.formats import format_for_path
from switchyard.edge.guard import Guard
from switchyard.edge.routes import (
    chat,
    conversations,
    gemini,
    messages,
    models,
    responses,
    routing,
)

# The three POST endpoints that carry the traffic, dispatched without the framework's layers.
HOT_ROUTES = {"/v1/chat/completions": chat.create_chat_completion,
              "/v1/messages": messages.create_message,
              "/v1/responses": responses.create_response}


class AppState(State):
    """`app.state` with plain attributes. Starlette's State keeps them in a dict behind
    `__getattr__`, reached only after a failed lookup: ~1 µs for each of the dozen reads a
    request makes. A missing name still raises AttributeError (`getattr` defaults work)."""

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        object.__delattr__(self, key)


class HotPaths:
    """Sends the hot POST routes straight to their handlers — skipping FastAPI's middleware
    stack and router, a sixth of the edge's CPU per request — and everything else (other
    routes, lifespan) to the Starlette app. Handlers are `guarded`: they never raise."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = HOT_ROUTES.get(scope["path"])
            if handler is None and gemini.is_model_action(scope["path"]):
                handler = gemini.model_action   # the model is in Gemini's path
            if handler is not None:
                scope["app"] = self.app  # what request.app reads
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(config: Config, backends: EdgeBackends | None = None) -> Guard:
    """The edge as an ASGI app: the guard, then the hot routes, then the Starlette app (plain
    endpoints, no per-request validation models). Starlette rather than FastAPI, which
    would add ~15 MB (pydantic and its own layers) to the edge for nothing it uses."""

    @asynccontextmanager
    async def lifespan(app: Starlette):
        tracer.setup(config.tracing, "edge")
        request_log.setup(config.request_log)
        be: EdgeBackends = backends or Backends(config)
        await be.start()
        app.state.backends = be
        await app.state.accounting.start()
        try:
            yield
        finally:
            await app.state.accounting.close()
            if app.state.filters is not None:
                await app.state.filters.close()
            if app.state.routing is not None:
                await app.state.routing.sessions.close()
            await be.close()
            await asyncio.to_thread(tracer.shutdown)   # send the last spans

    app = Starlette(lifespan=lifespan)
    app.state = AppState()
    app.state.config = config
    app.state.accounting = observe.Accounting(config)
    app.state.filters = filters.from_config(config.filters)   # None: no filter on the path
    app.state.routing = preferences.from_config(config)      # None: the config routes nothing
    # Chat completions are stored (for metadata.response_id) only when the config asks for
    # state storage; the Responses API always is.
    app.state.config_has_state = config.has_state_storage
    app.add_route("/v1/chat/completions", chat.create_chat_completion, methods=["POST"])
    app.add_route("/v1/messages", messages.create_message, methods=["POST"])
    app.add_route("/v1/messages/count_tokens", messages.count_tokens, methods=["POST"])
    app.add_route("/v1/responses", responses.create_response, methods=["POST"])
    app.router.add_websocket_route("/v1/responses", responses.websocket_upgrade)  # 426
    app.add_route("/v1/responses/{response_id}", responses.get_response, methods=["GET"])
    app.add_route("/v1/responses/{response_id}", responses.delete_response, methods=["DELETE"])
    app.add_route("/v1/responses/{response_id}/input_items", responses.list_input_items,
                  methods=["GET"])
    add_conversation_routes(app)
    app.add_route("/v1/models", gemini.list_models_v1, methods=["GET"])
    app.add_route("/v1/models/{model_id:path}", gemini.get_model_v1, methods=["GET"])
    app.add_route("/v1beta/models", gemini.list_models, methods=["GET"])
    app.add_route("/v1beta/models/{model_id:path}", gemini.get_model, methods=["GET"])
    for path, handler in routing.ROUTES.items():   # Plano's decision-only endpoints
        app.add_route(path, handler, methods=["POST"])
    app.add_route("/healthz", probes.healthz, methods=["GET"])
    app.add_route("/readyz", probes.readyz, methods=["GET"])
    app.add_route("/metrics", models.prometheus_metrics, methods=["GET"])
    app.add_exception_handler(HTTPException, _http_error)
    return Guard(HotPaths(app), security=config.security)


def add_conversation_routes(app: Starlette) -> None:
    """OpenAI's Conversations API (routes/conversations.py)."""
    one, items = "/v1/conversations/{conversation_id}", "/v1/conversations/{conversation_id}/items"
    for path, handler, method in (
            ("/v1/conversations", conversations.create_conversation, "POST"),
            (one, conversations.get_conversation, "GET"),
            (one, conversations.update_conversation, "POST"),
            (one, conversations.delete_conversation, "DELETE"),
            (items, conversations.create_items, "POST"),
            (items, conversations.list_items, "GET"),
            (items + "/{item_id}", conversations.get_item, "GET"),
            (items + "/{item_id}", conversations.delete_item, "DELETE")):
        app.add_route(path, handler, methods=[method])


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in the format the path's clients expect."""
    assert isinstance(exc, HTTPException)
    fmt = format_for_path(request.url.path)
    message = {404: f"Unknown path {request.url.path}",
               405: f"Method {request.method} not allowed on {request.url.path}"}.get(
        exc.status_code, str(exc.detail))
    status, body = fmt.error_body(GatewayError(exc.status_code, message))
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def end_open_calls(edge: Guard, err: GatewayError) -> int:
    """Fail every generation still waiting on providers with `err` (the end of a drain):
    each open stream sends the client's error event and ends. Returns how many."""
    hot = edge.app
    assert isinstance(hot, HotPaths)
    be: EdgeBackends | None = getattr(hot.app.state, "backends", None)
    return be.mux.fail_pending(err) if be is not None else 0
