"""Google's Gemini API: POST /v1beta/models/{model}:generateContent, :streamGenerateContent
(`?alt=sse` for SSE, else one streamed JSON array), :countTokens; GET /v1beta/models and
/v1beta/models/{model}. The `/v1/` spellings the SDK uses by default are served too."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from switchyard.common.errors import GatewayError, echo
from switchyard.edge.formats.gemini import FORMAT, MODEL_PREFIX, STREAM_KEY, model_name
from switchyard.edge.pipeline import backends, serve_count, serve_turn
from switchyard.edge.routes import models
from switchyard.edge.routes.common import guarded

# `/{version}/models/` prefixes a Gemini model path starts with.
MODEL_PATHS = ("/v1beta/models/", "/v1/models/")
GENERATION_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def is_model_action(path: str) -> bool:
    """`/v1beta/models/{model}:{method}` (or `/v1/...`): a POST only Gemini clients make."""
    return path.startswith(MODEL_PATHS) and ":" in path


def _split(path: str) -> tuple[str, str]:
    """`/v1beta/models/gpt-4o:generateContent` -> ("gpt-4o", "generateContent")."""
    for prefix in MODEL_PATHS:
        if path.startswith(prefix):
            model, _, method = path[len(prefix):].rpartition(":")
            return model, method
    return "", ""


def _with_path(model: str, stream: str | None) -> Callable[[dict[str, Any]], None]:
    """The body hook: the URL's model and stream framing win over anything in the body."""
    def prepare(body: dict[str, Any]) -> None:
        body["model"] = model
        body.pop(STREAM_KEY, None)
        if stream is not None:
            body[STREAM_KEY] = stream
    return prepare


@guarded(FORMAT)
async def model_action(request: Request) -> Response:
    """Every POST under /{version}/models/: the method after the colon picks the handler."""
    model, method = _split(request.url.path)
    if not model:
        raise GatewayError(400, "the path names no model: "
                           "/v1beta/models/{model}:generateContent", param="model")
    if method == "generateContent":
        return await serve_turn(request, FORMAT, _with_path(model, None))
    if method == "streamGenerateContent":
        stream = "sse" if request.query_params.get("alt") == "sse" else "json"
        return await serve_turn(request, FORMAT, _with_path(model, stream))
    if method == "countTokens":
        return await _count_tokens(request, model)
    raise GatewayError(404, f"Method '{echo(method)}' is not found for models; use "
                       "generateContent, streamGenerateContent or countTokens",
                       type="not_found")


async def _count_tokens(request: Request, model: str) -> Response:
    """`{"totalTokens"}` counted like /v1/messages/count_tokens (by the upstream where it
    counts, else estimated); the body is `contents` or a whole `generateContentRequest`."""
    set_path = _with_path(model, None)

    def prepare(body: dict[str, Any]) -> None:
        inner = body.pop("generateContentRequest", None) or body.pop(
            "generate_content_request", None)
        if isinstance(inner, dict):
            body.update(inner)
        set_path(body)

    return await serve_count(request, FORMAT, prepare, "totalTokens")


def _gemini_model(model_id: str) -> dict[str, Any]:
    return {"name": MODEL_PREFIX + model_id, "baseModelId": model_id, "version": "",
            "displayName": model_id, "description": "",
            "supportedGenerationMethods": GENERATION_METHODS}


def is_google_client(request: Request) -> bool:
    """A request from Google's SDK (or curl in its style) on a path OpenAI shares."""
    return "x-goog-api-key" in request.headers or "key" in request.query_params


@guarded(FORMAT)
async def list_models(request: Request) -> Response:
    """The Gemini `ListModelsResponse` (one page: the gateway's list is short)."""
    listed = backends(request).routes.models().models
    return Response(orjson.dumps({"models": [_gemini_model(m.id) for m in listed]}),
                    media_type="application/json")


@guarded(FORMAT)
async def get_model(request: Request) -> Response:
    model_id = model_name(request.path_params["model_id"])
    for m in backends(request).routes.models().models:
        if m.id == model_id:
            return Response(orjson.dumps(_gemini_model(m.id)), media_type="application/json")
    raise GatewayError(404, f"models/{echo(model_id)} is not found", type="not_found")


async def list_models_v1(request: Request) -> Response:
    """GET /v1/models: Gemini's list for Google's SDK, else OpenAI's (or Anthropic's)."""
    if is_google_client(request):
        return await list_models(request)
    return await models.list_models(request)


async def get_model_v1(request: Request) -> Response:
    """GET /v1/models/{id}: as `list_models_v1`."""
    if is_google_client(request):
        return await get_model(request)
    return await models.get_model(request)
