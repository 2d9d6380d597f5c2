"""The request flow's agent-client items, in-process with fake backends: a missing `model`
takes the default (400 naming `model` only without one), replies name the upstream's model,
a WebSocket upgrade on /v1/responses is a 426, decoder drops reach the header."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from switchyard.common.proto import router_pb2
from switchyard.providers.adapters import events as ev
from tests.unit.test_edge_app import FakeBackends, make_client, reply_events

SNAPSHOT = "gpt-4o-mini-2024-07-18"
BODIES = {
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages": {"max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/responses": {"input": "hi"},
}


class DefaultRoutes(FakeBackends):
    """Backends whose router answers "" (a config with a `default: true` entry)."""

    def __init__(self) -> None:
        super().__init__()
        plain = self.routes.resolve

        async def resolve(name: str) -> router_pb2.RoutePlan:
            return await plain(name or "gpt-4o-mini")
        self.routes.resolve = resolve   # type: ignore[method-assign]


@pytest.fixture
def gw() -> Iterator[tuple[TestClient, FakeBackends]]:
    yield from make_client()


@pytest.fixture
def gw_default(monkeypatch) -> Iterator[tuple[TestClient, FakeBackends]]:
    monkeypatch.setattr("tests.unit.test_edge_app.FakeBackends", DefaultRoutes)
    yield from make_client()


@pytest.mark.parametrize("path", list(BODIES))
def test_no_model_without_a_default_is_a_400_naming_model(gw, path):
    client, _ = gw
    r = client.post(path, json=BODIES[path])
    assert r.status_code == 400
    err = r.json()["error"]
    assert "model" in err["message"]
    if path != "/v1/messages":
        assert err["param"] == "model"


@pytest.mark.parametrize("path", list(BODIES))
def test_no_model_takes_the_default(gw_default, path):
    client, be = gw_default
    r = client.post(path, json=BODIES[path])
    assert r.status_code == 200
    assert be.mux.sent[-1].plan.name == "gpt-4o-mini"


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("stream", [False, True])
def test_replies_name_the_upstreams_model(gw, path, stream):
    client, be = gw
    be.mux.script = reply_events()
    be.mux.script[0] = ev.start("up-1", SNAPSHOT)
    body = {**BODIES[path], "model": "gpt-4o-mini", "stream": stream}
    r = client.post(path, json=body)
    assert r.status_code == 200
    assert SNAPSHOT in r.text and '"model":"gpt-4o-mini"' not in r.text
    assert r.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"


def test_a_reply_without_an_upstream_model_names_the_clients(gw):
    client, be = gw
    be.mux.script = reply_events()
    be.mux.script[0] = ev.start("up-1", "")
    r = client.post("/v1/chat/completions", json={**BODIES["/v1/chat/completions"],
                                                  "model": "gpt-4o-mini"})
    assert r.json()["model"] == "gpt-4o-mini"


def test_websocket_upgrade_on_responses_is_426(gw):
    client, _ = gw
    with pytest.raises(WebSocketDenialResponse) as info:
        with client.websocket_connect("/v1/responses"):
            pass
    assert info.value.status_code == 426
    assert info.value.json()["error"]["code"] == "websocket_not_supported"


def test_websocket_upgrade_elsewhere_is_unchanged(gw):
    client, _ = gw
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/v1/chat/completions"):
            pass


def test_items_the_decoder_drops_are_reported(gw):
    client, _ = gw
    r = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": [
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    assert r.headers["x-switchyard-dropped-params"] == "input[web_search_call]"
