"""POST .../chat/completions: OpenAI, and Azure OpenAI's deployment paths."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from tests.emulator import openai_render
from tests.emulator.delivery import Renderer, deliver, json_response, open_exchange
from tests.emulator.errors import ApiError, azure_error, openai_error, openai_error_obj
from tests.emulator.openai_check import check_openai, openai_info
from tests.emulator.plan import Plan, fast_plan, make_plan
from tests.emulator.state import EmulatorConfig, EmulatorState
from tests.emulator.steps import with_key

_AZURE_AUTH = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
               "provide a valid key for an active subscription and use a correct regional API "
               "endpoint for your resource.")
_NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header "
           "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
           "blank username) if you're accessing the API from your browser and are prompted for a "
           "username and password. You can obtain an API key from "
           "https://platform.openai.com/account/api-keys.")


# Paths under this prefix behave as a local Ollama server: same wire format, no auth.
OLLAMA_PREFIX = "/ollama/"


def _mask(key: str) -> str:
    return key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 7 else "*" * len(key)


def presented_key(request: web.Request, azure: bool) -> str:
    """The credential this route reads: Azure's `api-key`, else `Authorization: Bearer`."""
    if azure:
        return request.headers.get("api-key", "")
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else ""


def _auth_openai(request: web.Request, cfg: EmulatorConfig) -> None:
    if request.path.startswith(OLLAMA_PREFIX):
        return  # Ollama's OpenAI-compatible API takes no key
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or not auth[7:].strip():
        raise openai_error(401, _NO_KEY, code="invalid_api_key")
    key = auth[7:].strip()
    if cfg.openai_keys and key not in cfg.openai_keys:
        raise openai_error(401, f"Incorrect API key provided: {_mask(key)}. You can find your API key "
                                "at https://platform.openai.com/account/api-keys.", code="invalid_api_key")


def _auth_azure(request: web.Request, cfg: EmulatorConfig) -> None:
    if not request.query.get("api-version"):
        raise azure_error(404, "Resource not found")
    key = request.headers.get("api-key", "")
    if not key or (cfg.openai_keys and key not in cfg.openai_keys):
        raise azure_error(401, _AZURE_AUTH)


def _scripted_error(azure: bool, step: dict, status: int) -> ApiError:
    if "body" in step:
        return ApiError(status, step["body"])
    err = step.get("error") or {}
    if azure:
        return azure_error(status, err.get("message") or openai_error_obj(status)["message"])
    return openai_error(status, err.get("message"), type=err.get("type"), param=err.get("param"),
                        code=err.get("code"))


def _error_frame(step: dict) -> bytes:
    err = step.get("error") or {}
    return openai_render.error_frame(openai_error_obj(
        500, err.get("message"), type=err.get("type"), param=err.get("param"), code=err.get("code")))


async def handle_openai(request: web.Request, state: EmulatorState, body: Any,
                        deployment: str | None) -> web.StreamResponse:
    """Validate, then answer a chat completion per the script or the default reply."""
    cfg = state.config
    azure = deployment is not None
    model = deployment or (body.get("model") if isinstance(body, dict) else "") or ""
    ex = open_exchange(request, state, body, "azure" if azure else "openai", model, "x-request-id")
    try:
        if azure:
            _auth_azure(request, cfg)
        else:
            _auth_openai(request, cfg)
        if not cfg.fast or not isinstance(body, dict):
            check_openai(body, azure=azure)
        step = with_key(state.next_step(ex.model) or {}, presented_key(request, azure))
        ctx = openai_render.OpenAIContext(
            id=state.new_id("chatcmpl-"), created=int(time.time()), model=ex.model,
            include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
            azure=azure, n=body.get("n") or 1, interleave=bool(step.get("interleave")),
            chunks=step.get("chunks", cfg.chunks))

        def plan() -> Plan:
            if cfg.fast and not step:
                return fast_plan(cfg.chunks)
            return make_plan(openai_info(body), step.get("reply"), lambda: state.new_id("call_"))

        renderer = Renderer(
            body=lambda p: openai_render.response_body(p, ctx),
            frames=lambda p: openai_render.stream_frames(p, ctx),
            error_frame=_error_frame,
            scripted_error=lambda s, status: _scripted_error(azure, s, status),
            stream_error_status=500)
        return await deliver(ex, step, plan, renderer)
    except ApiError as e:
        return json_response(ex, e.status, e.body, e.headers)
    except asyncio.CancelledError:
        ex.client_gone()
        raise
