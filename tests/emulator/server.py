"""The emulator's aiohttp application: route any path prefix to the right provider format."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from tests.emulator.anthropic_route import handle_count_tokens, handle_messages
from tests.emulator.bedrock_route import PATH as BEDROCK_PATH
from tests.emulator.bedrock_route import handle_bedrock
from tests.emulator.control import add_control_routes
from tests.emulator.gemini_route import PATH as GEMINI_PATH
from tests.emulator.gemini_route import handle_gemini
from tests.emulator.openai_route import handle_openai
from tests.emulator.responses_upstream_route import handle_responses
from tests.emulator.state import EmulatorState

_AZURE_PATH = re.compile(r"/openai/deployments/([^/]+)/chat/completions$")
_BAD_JSON: Any = "<invalid JSON>"  # what a request whose body did not parse is recorded as
_CREATED = 1_700_000_000


async def _read_json(request: web.Request) -> Any:
    """The parsed body, or a non-dict marker the validators reject in the provider's words."""
    return _parse(await request.read())


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _BAD_JSON


def _is_anthropic(request: web.Request) -> bool:
    return "anthropic-version" in request.headers or "x-api-key" in request.headers


def _is_gemini(request: web.Request) -> bool:
    return "x-goog-api-key" in request.headers or "key" in request.query


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json")


def _models(request: web.Request, state: EmulatorState) -> web.Response:
    """GET .../models in the caller's format (Anthropic when it sent Anthropic headers)."""
    names = state.config.models
    if _is_gemini(request):
        return _json({"models": [{"name": f"models/{m}", "displayName": m,
                                  "supportedGenerationMethods": ["generateContent", "countTokens"]}
                                 for m in names]})
    if _is_anthropic(request):
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in names]
        return _json({"data": data, "has_more": False, "first_id": names[0] if names else None,
                      "last_id": names[-1] if names else None})
    data = [{"id": m, "object": "model", "created": _CREATED, "owned_by": "system"} for m in names]
    return _json({"object": "list", "data": data})


def _not_found(request: web.Request) -> web.Response:
    if _is_anthropic(request):
        return _json({"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}}, 404)
    return _json({"error": {"message": f"Invalid URL ({request.method} {request.path})",
                            "type": "invalid_request_error", "param": None, "code": None}}, 404)


def build_app(state: EmulatorState) -> web.Application:
    """The emulator app: control routes under /_emulator/, provider routes under any prefix."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    add_control_routes(app, state)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if request.method == "POST":
            g = GEMINI_PATH.search(path)
            if g:
                return await handle_gemini(request, state, await _read_json(request),
                                           g.group(1), g.group(2))
            if path.endswith("/chat/completions"):
                m = _AZURE_PATH.search(path)
                return await handle_openai(request, state, await _read_json(request),
                                           m.group(1) if m else None)
            if path.endswith("/messages/count_tokens"):
                return await handle_count_tokens(request, state, await _read_json(request))
            if path.endswith("/messages"):
                return await handle_messages(request, state, await _read_json(request))
            if path.endswith("/responses"):
                return await handle_responses(request, state, await _read_json(request))
            b = BEDROCK_PATH.search(request.raw_path.split("?", 1)[0].rstrip("/"))
            if b:   # the raw path: SigV4 signs it as sent, and model ids hold ':' or %2F
                raw = await request.read()
                return await handle_bedrock(request, state, raw, _parse(raw),
                                            unquote(b.group(1)), b.group(2))
        elif request.method == "GET" and path.endswith("/models"):
            return _models(request, state)
        return _not_found(request)

    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
