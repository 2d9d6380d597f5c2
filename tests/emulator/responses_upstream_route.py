"""POST .../responses: OpenAI's Responses API as an upstream (checks in
`responses_upstream_check.py`, rendering in `responses_upstream_render.py`). Auth is OpenAI's
(`Authorization: Bearer`, the emulator's `openai_keys`); errors have OpenAI's shape."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tests.emulator import responses_upstream_render as render
from tests.emulator.delivery import Renderer, deliver, json_response, open_exchange
from tests.emulator.errors import ApiError, openai_error
from tests.emulator.openai_route import _auth_openai, presented_key
from tests.emulator.plan import Plan, fast_plan, make_plan
from tests.emulator.responses_upstream_check import check_responses, responses_info
from tests.emulator.state import EmulatorState
from tests.emulator.steps import with_key


def _scripted_error(step: dict, status: int) -> ApiError:
    if "body" in step:
        return ApiError(status, step["body"])
    err = step.get("error") or {}
    return openai_error(status, err.get("message"), type=err.get("type"), param=err.get("param"),
                        code=err.get("code"))


async def handle_responses(request: web.Request, state: EmulatorState,
                           body: Any) -> web.StreamResponse:
    """Validate, then answer a Responses request per the script or the default reply."""
    cfg = state.config
    model = (body.get("model") if isinstance(body, dict) else "") or ""
    ex = open_exchange(request, state, body, "responses", model, "x-request-id")
    try:
        _auth_openai(request, cfg)
        checked = body if cfg.fast and isinstance(body, dict) else check_responses(body)
        step = with_key(state.next_step(model) or {}, presented_key(request, False))
        ctx = render.ResponsesContext(id=state.new_id("resp_"), body=checked,
                                      chunks=step.get("chunks", cfg.chunks))

        def plan() -> Plan:
            if cfg.fast and not step:
                return fast_plan(cfg.chunks)
            return make_plan(responses_info(checked), step.get("reply"),
                             lambda: state.new_id("call_"))

        def error_frame(s: dict) -> bytes:
            err = s.get("error") or {}
            return render.failed_frame(ctx, err.get("message") or "The server had an error "
                                       "while processing your request.",
                                       err.get("code") or "server_error", ex.frames_sent)

        renderer = Renderer(body=lambda p: render.response_body(p, ctx),
                            frames=lambda p: render.stream_frames(p, ctx),
                            error_frame=error_frame, scripted_error=_scripted_error,
                            stream_error_status=500)
        return await deliver(ex, step, plan, renderer)
    except ApiError as e:
        return json_response(ex, e.status, e.body, e.headers)
    except asyncio.CancelledError:
        ex.client_gone()
        raise
