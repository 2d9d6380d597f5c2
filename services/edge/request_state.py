"""The request's own values (request id, tenant, key, slot, what observe and limits keep):
the dict behind `request.state`, read without Starlette State's failed-lookup fallback
(~1 µs a read). No edge imports, so the guard, observe and limits can all use it."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request


def scope_state(request: Request) -> dict[str, Any]:
    """The dict behind `request.state` (made if the guard did not run, as in unit tests)."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    return state
