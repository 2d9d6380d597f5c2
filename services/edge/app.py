"""The edge's HTTP application: four client wire formats on one listener."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from switchyard.common.config.model import Config
from switchyard.common.errors import GatewayError
from switchyard.common.telemetry import request_log, tracer
from switchyard.edge import observe
from switchyard.edge.clients.backends import Backends
from switchyard.edge.clients.base import EdgeBackends
from switchyard.edge.formats import format_for_path
from switchyard.edge.guard import Guard
from switchyard.edge.routes import chat, gemini, messages, models, responses

# The three POST endpoints that carry the traffic, dispatched without the framework's layers.
HOT_ROUTES = {"/v1/chat/completions": chat.create_chat_completion,
              "/v1/messages": messages.create_message,
              "/v1/responses": responses.create_response}


class HotPaths:
    """Sends the hot POST routes straight to their handlers — skipping FastAPI's middleware
    stack and router, a sixth of the edge's CPU per request — and everything else (other
    routes, lifespan) to the FastAPI app. Handlers are `guarded`: they never raise."""

    def __init__(self, app: FastAPI) -> None:
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
    """The edge as an ASGI app: the guard, then the hot routes, then the FastAPI app (plain
    Starlette endpoints, no per-request pydantic models)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Tracing first: the backends' channels carry `traceparent` only when it is on.
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
            await be.close()
            await asyncio.to_thread(tracer.shutdown)   # send the last spans

    app = FastAPI(title="Switchyard", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.config = config
    app.state.accounting = observe.Accounting(config)
    # Chat completions are stored (for metadata.response_id) only when the config asks for
    # state storage; the Responses API always is.
    app.state.config_has_state = bool(config.raw.get("state_storage"))
    app.add_route("/v1/chat/completions", chat.create_chat_completion, methods=["POST"])
    app.add_route("/v1/messages", messages.create_message, methods=["POST"])
    app.add_route("/v1/messages/count_tokens", messages.count_tokens, methods=["POST"])
    app.add_route("/v1/responses", responses.create_response, methods=["POST"])
    app.add_route("/v1/responses/{response_id}", responses.get_response, methods=["GET"])
    app.add_route("/v1/responses/{response_id}", responses.delete_response, methods=["DELETE"])
    app.add_route("/v1/responses/{response_id}/input_items", responses.list_input_items,
                  methods=["GET"])
    app.add_route("/v1/models", gemini.list_models_v1, methods=["GET"])
    app.add_route("/v1/models/{model_id:path}", gemini.get_model_v1, methods=["GET"])
    app.add_route("/v1beta/models", gemini.list_models, methods=["GET"])
    app.add_route("/v1beta/models/{model_id:path}", gemini.get_model, methods=["GET"])
    app.add_route("/healthz", models.healthz, methods=["GET"])
    app.add_route("/metrics", models.prometheus_metrics, methods=["GET"])
    app.add_exception_handler(HTTPException, _http_error)
    return Guard(HotPaths(app), security=config.security)


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
