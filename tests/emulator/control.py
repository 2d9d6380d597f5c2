"""The test-control API under /_emulator/: script steps, read logs, reset."""
from __future__ import annotations

import orjson
from aiohttp import web

from tests.emulator.state import EmulatorState


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json")


def add_control_routes(app: web.Application, state: EmulatorState) -> None:
    """Register POST script/reset and GET requests/disconnects on `app`."""

    async def script(request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict) or not isinstance(body.get("steps"), list):
                raise ValueError('expected {"model": "...", "steps": [...]}')
            queued = state.script(str(body.get("model") or "*"), body["steps"])
        except (ValueError, orjson.JSONDecodeError) as e:
            return _json({"error": str(e)}, 400)
        return _json({"queued": queued})

    async def requests(_: web.Request) -> web.Response:
        return _json(state.requests())

    async def disconnects(_: web.Request) -> web.Response:
        return _json(state.disconnects())

    async def reset(_: web.Request) -> web.Response:
        state.reset()
        return _json({"ok": True})

    app.router.add_post("/_emulator/script", script)
    app.router.add_get("/_emulator/requests", requests)
    app.router.add_get("/_emulator/disconnects", disconnects)
    app.router.add_post("/_emulator/reset", reset)
