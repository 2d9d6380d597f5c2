"""POST .../models/{model}:generateContent | :streamGenerateContent | :countTokens (Gemini API)."""
from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from tests.emulator import gemini_render
from tests.emulator.delivery import Exchange, Renderer, deliver, json_response, open_exchange
from tests.emulator.errors import ApiError, gemini_error, gemini_error_obj
from tests.emulator.gemini_check import (
    check_count,
    check_gemini,
    gemini_info,
    input_tokens,
    thinking_model,
)
from tests.emulator.plan import Plan, fast_plan, make_plan
from tests.emulator.state import EmulatorConfig, EmulatorState
from tests.emulator.steps import with_key

PATH = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$")
_ID_HEADER = "x-emulator-request-id"   # Google sends no request id header; the log needs one
_NO_KEY = ("Method doesn't allow unregistered callers (callers without established identity). "
           "Please use API Key or other form of API consumer identity to call this API.")
_BAD_KEY = "API key not valid. Please pass a valid API key."
_OAUTH = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login "
          "cookie or other valid authentication credential. See "
          "https://developers.google.com/identity/sign-in/web/devconsole-project.")
_SERVICE = {"service": "generativelanguage.googleapis.com"}


def _info(reason: str) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
            "domain": "googleapis.com", "metadata": _SERVICE}


def presented_key(request: web.Request) -> str:
    """The key comes in `x-goog-api-key`, or as the `key` query parameter."""
    return request.headers.get("x-goog-api-key", "") or request.query.get("key", "")


def check_auth(request: web.Request, cfg: EmulatorConfig) -> None:
    """No key: 403; a Bearer token that is not OAuth: 401; a wrong key: 400 API_KEY_INVALID."""
    key = presented_key(request)
    if not key:
        if request.headers.get("Authorization", "").startswith("Bearer "):
            raise gemini_error(401, _OAUTH, details=[_info("ACCESS_TOKEN_TYPE_UNSUPPORTED")])
        raise gemini_error(403, _NO_KEY)
    if cfg.gemini_keys and key not in cfg.gemini_keys:
        raise gemini_error(400, _BAD_KEY, details=[_info("API_KEY_INVALID")])


def _scripted_error(step: dict, status: int) -> ApiError:
    if "body" in step:
        return ApiError(status, step["body"])
    err = step.get("error") or {}
    return gemini_error(status, err.get("message"), name=err.get("type"),
                        retry_delay=err.get("retry_delay"))


def _error_frame(step: dict) -> bytes:
    """Google ends a failing stream with one `data:` frame holding the error object."""
    err = step.get("error") or {}
    return gemini_render.frame({"error": gemini_error_obj(503, err.get("message"),
                                                          name=err.get("type"))})


async def handle_gemini(request: web.Request, state: EmulatorState, body: Any,
                        model: str, method: str) -> web.StreamResponse:
    """One Gemini API call: countTokens, or a generation (whole, SSE, or a JSON array)."""
    if method == "countTokens":
        return await _count_tokens(request, state, body, model)
    cfg = state.config
    ex = open_exchange(request, state, body, "gemini", model, _ID_HEADER)
    ex.stream = method == "streamGenerateContent"
    if ex.entry is not None:
        ex.entry["stream"] = ex.stream
    try:
        check_auth(request, cfg)
        checked = body if cfg.fast and isinstance(body, dict) else check_gemini(body, model)
        step = with_key(state.next_step(model) or {}, presented_key(request))
        ctx = gemini_render.GeminiContext(
            response_id=state.new_id("resp"), model=model, chunks=step.get("chunks", cfg.chunks),
            sign_calls=thinking_model(model, checked.get("generationConfig") or {}))

        def plan() -> Plan:
            if cfg.fast and not step:
                return fast_plan(cfg.chunks)
            return make_plan(gemini_info(checked), step.get("reply"), lambda: "")

        if ex.stream and request.query.get("alt") != "sse":
            # Without alt=sse the stream is one JSON array of responses.
            return json_response(ex, 200, gemini_render.stream_chunks(plan(), ctx))
        renderer = Renderer(
            body=lambda p: gemini_render.response_body(p, ctx),
            frames=lambda p: [gemini_render.frame(c) for c in gemini_render.stream_chunks(p, ctx)],
            error_frame=_error_frame, scripted_error=_scripted_error, stream_error_status=503)
        return await deliver(ex, step, plan, renderer)
    except ApiError as e:
        return json_response(ex, e.status, e.body, e.headers)
    except asyncio.CancelledError:
        ex.client_gone()
        raise


async def _count_tokens(request: web.Request, state: EmulatorState, body: Any,
                        model: str) -> web.Response:
    """`{"totalTokens": N, "promptTokensDetails": [...]}` (scripts are not consumed here)."""
    ex: Exchange = open_exchange(request, state, body, "gemini_count_tokens", model, _ID_HEADER)
    try:
        check_auth(request, state.config)
        n = input_tokens(check_count(body, model))
        return json_response(ex, 200, {"totalTokens": n,
                                       "promptTokensDetails": [{"modality": "TEXT",
                                                                "tokenCount": n}]})
    except ApiError as e:
        return json_response(ex, e.status, e.body, e.headers)
