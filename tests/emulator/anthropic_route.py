"""POST .../messages and .../messages/count_tokens: Anthropic Messages."""
from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from tests.emulator import anthropic_render
from tests.emulator.anthropic_check import anthropic_info, check_anthropic, input_tokens
from tests.emulator.delivery import Exchange, Renderer, deliver, json_response, open_exchange
from tests.emulator.errors import ApiError, anthropic_error, anthropic_error_obj
from tests.emulator.plan import Plan, fast_plan, make_plan
from tests.emulator.state import EmulatorConfig, EmulatorState
from tests.emulator.steps import with_key

# One date per header value; current SDKs send newer dates than 2023-06-01, so accept the shape.
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def presented_key(request: web.Request) -> str:
    """The key comes in `x-api-key`, or as `Authorization: Bearer` (what anthropic-sdk 2.x sends)."""
    key = request.headers.get("x-api-key", "")
    auth = request.headers.get("Authorization", "")
    if not key and auth.startswith("Bearer "):
        key = auth[7:].strip()
    return key


def check_auth(request: web.Request, cfg: EmulatorConfig) -> None:
    """Key (401) first, then anthropic-version (400), as the real API orders them."""
    key = presented_key(request)
    if not key:
        raise anthropic_error(401, "x-api-key header is required", type="authentication_error")
    if cfg.anthropic_keys and key not in cfg.anthropic_keys:
        raise anthropic_error(401, "invalid x-api-key", type="authentication_error")
    version = request.headers.get("anthropic-version")
    if not version:
        raise anthropic_error(400, "anthropic-version: header is required", type="invalid_request_error")
    if not _VERSION.match(version):
        raise anthropic_error(400, f'anthropic-version: "{version}" is not a valid version',
                              type="invalid_request_error")


def betas(request: web.Request) -> frozenset[str]:
    """The `anthropic-beta` values the request names (comma-separated, any number of headers)."""
    return frozenset(v.strip() for h in request.headers.getall("anthropic-beta", [])
                     for v in h.split(",") if v.strip())


def error_response(ex: Exchange, e: ApiError) -> web.Response:
    """Anthropic errors carry the request id in the body and in the `request-id` header."""
    body = e.body
    if isinstance(body, dict) and body.get("type") == "error":
        body = {**body, "request_id": ex.headers["request-id"]}
    return json_response(ex, e.status, body, e.headers)


def _scripted_error(step: dict, status: int) -> ApiError:
    if "body" in step:
        return ApiError(status, step["body"])
    err = step.get("error") or {}
    return anthropic_error(status, err.get("message"), type=err.get("type"))


def _error_frame(step: dict) -> bytes:
    err = step.get("error") or {}
    return anthropic_render.error_frame(anthropic_error_obj(529, err.get("message"), type=err.get("type")))


def _model(body: Any) -> str:
    return (body.get("model") if isinstance(body, dict) else "") or ""


async def handle_messages(request: web.Request, state: EmulatorState, body: Any) -> web.StreamResponse:
    """Validate, then answer a message per the script or the default reply."""
    cfg = state.config
    ex = open_exchange(request, state, body, "anthropic", _model(body), "request-id")
    try:
        check_auth(request, cfg)
        if not cfg.fast or not isinstance(body, dict):
            check_anthropic(body, betas=betas(request))
        step = with_key(state.next_step(ex.model) or {}, presented_key(request))
        ctx = anthropic_render.AnthropicContext(id=state.new_id("msg_"), model=ex.model,
                                                chunks=step.get("chunks", cfg.chunks))

        def plan() -> Plan:
            if cfg.fast and not step:
                return fast_plan(cfg.chunks)
            return make_plan(anthropic_info(body), step.get("reply"), lambda: state.new_id("toolu_"))

        renderer = Renderer(
            body=lambda p: anthropic_render.response_body(p, ctx),
            frames=lambda p: anthropic_render.stream_frames(p, ctx),
            error_frame=_error_frame, scripted_error=_scripted_error, stream_error_status=529)
        return await deliver(ex, step, plan, renderer)
    except ApiError as e:
        return error_response(ex, e)
    except asyncio.CancelledError:
        ex.client_gone()
        raise


async def handle_count_tokens(request: web.Request, state: EmulatorState, body: Any) -> web.Response:
    """`{"input_tokens": N}` for a valid request (scripts are not consumed here)."""
    ex = open_exchange(request, state, body, "anthropic_count_tokens", _model(body), "request-id")
    try:
        check_auth(request, state.config)
        check_anthropic(body, count_only=True, betas=betas(request))
        return json_response(ex, 200, {"input_tokens": input_tokens(body)})
    except ApiError as e:
        return error_response(ex, e)
