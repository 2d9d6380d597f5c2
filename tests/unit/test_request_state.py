"""edge/request_state.py: the request's values without Starlette State's fallback."""
from __future__ import annotations

from starlette.requests import Request

from switchyard.edge.request_state import scope_state


def test_scope_state_is_the_dict_behind_request_state() -> None:
    request = Request({"type": "http", "headers": [], "state": {"tenant": "t"}})
    assert scope_state(request)["tenant"] == "t" and request.state.tenant == "t"
    bare = Request({"type": "http", "headers": []})
    scope_state(bare)["request_id"] = "req_1"
    assert bare.state.request_id == "req_1"
