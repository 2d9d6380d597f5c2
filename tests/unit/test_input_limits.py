"""Input limits at the edge: one shape for response ids, no control characters in model names
or ids, bounded echoes. Malformed values are refused before any backend call."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from starlette.testclient import TestClient

from switchyard.common.errors import GatewayError, echo
from switchyard.common.proto import chat_pb2, state_pb2
from switchyard.edge import ids
from switchyard.edge.clients.errors import status_error
from switchyard.edge.formats import anthropic_messages, openai_chat, openai_responses
from switchyard.edge.formats.fields import MAX_ID_CHARS, check_model, check_response_id
from tests.unit.test_edge_app import CHAT, MESSAGES, FakeBackends, FakeState, make_client

HOSTILE_NAMES = ["gpt-4o-mini\x00", "\x00", "claude-\x00x", "gpt\n4o", "gpt\x7f", "gpt\x85"]


class CountingState(FakeState):
    """FakeState that records every call, so a test can assert none was made."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    async def get(self, tenant: str, id: str) -> state_pb2.StoredResponse:
        self.calls.append(("get", id))
        return await super().get(tenant, id)

    async def history(self, tenant: str, id: str) -> list[chat_pb2.Message]:
        self.calls.append(("history", id))
        return await super().history(tenant, id)

    async def delete(self, tenant: str, id: str) -> bool:
        self.calls.append(("delete", id))
        return await super().delete(tenant, id)


@pytest.fixture
def gw() -> Iterator[tuple[TestClient, FakeBackends, CountingState]]:
    for client, be in make_client("state_storage: {type: memory}\n"):
        state = CountingState()
        be.state = state
        yield client, be, state


# ---- the helpers --------------------------------------------------------------------------

def test_minted_ids_have_one_shape():
    for mint in (ids.chat_completion_id, ids.message_id, ids.response_id):
        value = mint()
        assert ids.is_minted(value)
        assert not ids.is_minted(value + "\n") and not ids.is_minted(value[:-1])
        assert not ids.is_minted(value.upper()) and not ids.is_minted(value + "0")
    for bad in ("", "resp_", "resp_nope", "chatcmpl-nope", "req_" + "0" * 24,
                "resp-" + "0" * 24, "resp_" + "g" * 24, "resp_" + "0" * 24 + "\x00"):
        assert not ids.is_minted(bad), bad


def test_echo_is_short_and_printable():
    assert echo("resp_abc") == "resp_abc"
    assert echo("x" * 20_000) == "x" * 64 + "…"
    assert echo("a\x00b\nc\u202ed\x1b[31m") == "abcd[31m"   # NUL, newline, bidi, ESC dropped
    assert len(echo("\x00" * 20_000)) <= 65


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_control_characters_in_a_model_name_are_400(name):
    with pytest.raises(GatewayError) as info:
        check_model(name)
    assert info.value.http_status == 400 and info.value.param == "model"
    assert "'model'" in info.value.message and "\x00" not in info.value.message


def test_overlong_model_name_is_400_without_echo():
    with pytest.raises(GatewayError) as info:
        check_model("m" * 20_000)
    assert info.value.http_status == 400 and "mmmm" not in info.value.message


@pytest.mark.parametrize("value, status", [
    ("resp_nope", 404), ("chatcmpl-nope", 404), ("x" * MAX_ID_CHARS, 404),
    ("x" * (MAX_ID_CHARS + 1), 400), ("resp_\x00", 400), ("resp_ab\ncd", 400),
])
def test_malformed_response_ids(value, status):
    with pytest.raises(GatewayError) as info:
        check_response_id(value, "previous_response_id")
    err = info.value
    assert err.http_status == status and len(err.message) < 120 and "\x00" not in err.message
    if status == 404:   # the same answer as an unknown id, echo bounded
        assert err.type == "not_found"
        assert err.message == f"No response found with id '{echo(value)}'."
    else:
        assert err.param == "previous_response_id" and "'previous_response_id'" in err.message


def test_minted_ids_pass_the_check():
    for mint in (ids.chat_completion_id, ids.message_id, ids.response_id):
        check_response_id(mint(), "previous_response_id")


def test_state_not_found_echo_is_bounded():
    err = status_error("state", grpc.StatusCode.NOT_FOUND, "", subject="r" * 20_000 + "\x00")
    assert err.http_status == 404 and err.message == f"No response found with id '{'r' * 64}…'."


# ---- the three decoders -------------------------------------------------------------------

DECODERS: dict[str, tuple[Any, dict[str, Any]]] = {
    "chat": (openai_chat.FORMAT.decode, CHAT),
    "messages": (anthropic_messages.FORMAT.decode, MESSAGES),
    "responses": (openai_responses.FORMAT.decode, {"model": "gpt-4o-mini", "input": "hi"}),
}


@pytest.mark.parametrize("fmt", list(DECODERS))
@pytest.mark.parametrize("name", HOSTILE_NAMES[:3])
def test_every_decoder_refuses_a_nul_model(fmt, name):
    decode, body = DECODERS[fmt]
    with pytest.raises(GatewayError) as info:
        decode({**body, "model": name})
    assert info.value.http_status == 400 and info.value.param == "model"


# ---- through the app: refused before any backend call -------------------------------------

def test_nul_model_never_reaches_providers(gw):
    client, be, _ = gw
    for path, body in (("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGES),
                       ("/v1/messages/count_tokens", MESSAGES),
                       ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"})):
        r = client.post(path, json={**body, "model": "gpt-4o-mini\x00"})
        assert r.status_code == 400, (path, r.text)
        body_json = r.json()
        if path.startswith("/v1/messages"):
            assert body_json["type"] == "error" and body_json["error"]["type"] == \
                "invalid_request_error"
        else:
            assert body_json["error"]["param"] == "model"
    assert be.mux.sent == [] and be.counted == []


@pytest.mark.parametrize("value, status", [
    ("resp_nope", 404), ("x" * 20_000, 400), ("resp_\x00", 400),
    ("resp_" + "0" * 24, 404),   # well-formed but unknown: answered by state
])
def test_previous_ids_are_checked_before_state(gw, value, status):
    client, be, state = gw
    r = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "x",
                                           "previous_response_id": value})
    assert r.status_code == status and len(r.text) < 400
    r = client.post("/v1/chat/completions", json={**CHAT, "metadata": {"response_id": value}})
    assert r.status_code == status and len(r.text) < 400
    assert "error" in r.json()
    asked = [c for c in state.calls if c[0] == "history"]
    assert asked == ([] if value != "resp_" + "0" * 24 else [("history", value)] * 2)
    assert be.mux.sent == []


@pytest.mark.parametrize("path, status", [
    ("/v1/responses/resp_nope", 404), ("/v1/responses/resp_%00", 400),
    ("/v1/responses/" + "y" * 2_000, 400), ("/v1/responses/resp_nope/input_items", 404),
    ("/v1/responses/resp_%0A/input_items", 400),
])
def test_malformed_path_ids_are_answered_without_state(gw, path, status):
    client, _, state = gw
    for method in ("GET", "DELETE") if not path.endswith("input_items") else ("GET",):
        r = client.request(method, path)
        assert r.status_code == status, (method, path, r.text)
        err = r.json()["error"]
        assert len(err["message"]) < 120 and "\x00" not in err["message"]
    assert state.calls == []


def test_stored_response_round_trip_still_works(gw):
    client, _, state = gw
    rid = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "hi"}).json()["id"]
    assert ids.is_minted(rid)
    assert client.get(f"/v1/responses/{rid}").json()["id"] == rid
    assert client.get(f"/v1/responses/{rid}/input_items").status_code == 200
    assert client.delete(f"/v1/responses/{rid}").json()["deleted"] is True
    assert client.get(f"/v1/responses/{rid}").status_code == 404
