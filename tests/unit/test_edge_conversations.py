"""The Conversations API routes and the `conversation` parameter of /v1/responses in the edge
app, in-process with the fake backends of test_edge_app.py (the state service's own side is
tests/integration/test_state_conversations.py)."""
from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from starlette.testclient import TestClient

from switchyard.common.proto import chat_pb2
from tests.unit.test_edge_app import FakeBackends, make_client, sse_data

Gw = tuple[TestClient, FakeBackends]


@pytest.fixture
def gw() -> Iterator[Gw]:
    yield from make_client()


def new_conversation(client: TestClient, **body) -> str:
    r = client.post("/v1/conversations", json=body)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def texts(msgs) -> list[tuple[int, str]]:
    return [(m.role, "".join(p.text.text for p in m.parts)) for m in msgs]


def test_conversation_object_round_trip(gw: Gw):
    client, _ = gw
    r = client.post("/v1/conversations", json={"metadata": {"topic": "tea"}})
    conv = r.json()
    assert set(conv) == {"id", "object", "created_at", "metadata"}
    assert conv["object"] == "conversation" and conv["metadata"] == {"topic": "tea"}
    assert client.get(f"/v1/conversations/{conv['id']}").json() == conv
    r = client.post(f"/v1/conversations/{conv['id']}", json={"metadata": {"topic": "coffee"}})
    assert r.json()["metadata"] == {"topic": "coffee"}
    r = client.post(f"/v1/conversations/{conv['id']}", json={"metadata": None})
    assert r.json()["metadata"] == {}
    r = client.delete(f"/v1/conversations/{conv['id']}")
    assert r.json() == {"id": conv["id"], "object": "conversation.deleted", "deleted": True}
    r = client.get(f"/v1/conversations/{conv['id']}")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"Conversation with id '{conv['id']}' not found."


def test_items_are_normalised_with_ids_and_listed_newest_first(gw: Gw):
    client, be = gw
    cid = new_conversation(client, items=[
        {"role": "user", "content": "hello"},
        {"type": "message", "role": "assistant", "content": "hi there"}])
    r = client.post(f"/v1/conversations/{cid}/items", json={"items": [
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"}]})
    created = r.json()
    assert created["object"] == "list" and created["has_more"] is False
    assert [i["type"] for i in created["data"]] == ["function_call", "function_call_output"]
    assert created["first_id"] == created["data"][0]["id"]
    page = client.get(f"/v1/conversations/{cid}/items").json()
    assert [i["type"] for i in page["data"]] == ["function_call_output", "function_call",
                                                 "message", "message"]
    first = page["data"][-1]
    assert first["id"].startswith("msg_") and first["status"] == "completed"
    assert first["content"] == [{"type": "input_text", "text": "hello"}]
    assert page["data"][-2]["content"][0]["type"] == "output_text"
    asc = client.get(f"/v1/conversations/{cid}/items",
                     params={"order": "asc", "limit": 2}).json()
    assert [i["id"] for i in asc["data"]] == [first["id"], page["data"][-2]["id"]]
    assert asc["has_more"] is True and asc["last_id"] == page["data"][-2]["id"]
    rest = client.get(f"/v1/conversations/{cid}/items",
                      params={"order": "asc", "after": asc["last_id"]}).json()
    assert [i["type"] for i in rest["data"]] == ["function_call", "function_call_output"]
    one = client.get(f"/v1/conversations/{cid}/items/{first['id']}",
                     params={"include[]": "reasoning.encrypted_content"})
    assert one.json() == first
    after = client.delete(f"/v1/conversations/{cid}/items/{first['id']}").json()
    assert after["object"] == "conversation" and after["id"] == cid
    r = client.get(f"/v1/conversations/{cid}/items/{first['id']}")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"Item with id '{first['id']}' not found."
    empty = client.get(f"/v1/conversations/{new_conversation(client)}/items").json()
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None,
                     "has_more": False}


@pytest.mark.parametrize("path, body, param", [
    ("/v1/conversations", {"items": [{"role": "user", "content": "x"}] * 21}, "items"),
    ("/v1/conversations", {"items": "hello"}, "items"),
    ("/v1/conversations", {"items": [{"type": "bogus"}]}, "items[0].type"),
    ("/v1/conversations", {"items": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "data:image/png,notbase64"}]}]}, ""),
    ("/v1/conversations", {"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ("/v1/conversations", {"metadata": {"k": 1}}, "metadata.k"),
    ("/v1/conversations", {"title": "x"}, "title"),
    ("{conv}/items", {"items": []}, "items"),
    ("{conv}/items", {}, "items"),
    ("{conv}", {}, "metadata"),
])
def test_bad_bodies_are_400_naming_the_parameter(gw: Gw, path, body, param):
    client, be = gw
    conv = f"/v1/conversations/{new_conversation(client)}"
    r = client.post(path.format(conv=conv), json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and (err["param"] or "") == param
    assert len(be.state.convs) == 1   # nothing was created by the refused call


@pytest.mark.parametrize("method, suffix", [
    ("GET", ""), ("POST", ""), ("DELETE", ""), ("GET", "/items"), ("POST", "/items"),
    ("GET", "/items/msg_1"), ("DELETE", "/items/msg_1")])
@pytest.mark.parametrize("bad", ["resp_123", "conv_a%20b", "x" * 300])
def test_malformed_conversation_ids_are_400(gw: Gw, method, suffix, bad):
    client, _ = gw
    r = client.request(method, f"/v1/conversations/{bad}{suffix}",
                       json={"metadata": {}, "items": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "conversation_id"


def test_list_query_is_checked(gw: Gw):
    client, _ = gw
    cid = new_conversation(client)
    for params, param in (({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"),
                          ({"limit": "ten"}, "limit"), ({"order": "up"}, "order"),
                          ({"include": "everything"}, "include"),
                          ({"include[]": "nope"}, "include")):
        r = client.get(f"/v1/conversations/{cid}/items", params=params)
        assert r.status_code == 400 and r.json()["error"]["param"] == param
    r = client.get(f"/v1/conversations/{cid}/items",
                   params={"include": "message.output_text.logprobs", "limit": "100"})
    assert r.status_code == 200


# ---- /v1/responses with `conversation` -----------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_turn_reads_the_conversation_and_appends_its_items(gw: Gw, stream):
    client, be = gw
    cid = new_conversation(client, items=[{"role": "user", "content": "My name is Alice"},
                                          {"role": "assistant", "content": "Hello Alice"}])
    body = {"model": "gpt-4o-mini", "input": "What's my name?", "instructions": "be brief",
            "conversation": cid if not stream else {"id": cid}, "stream": stream}
    r = client.post("/v1/responses", json=body)
    assert r.status_code == 200
    reply = (orjson.loads(sse_data(r.text)[-1])["response"] if stream else r.json())
    assert reply["conversation"] == {"id": cid} and reply["previous_response_id"] is None
    sent = be.mux.sent[-1].request
    assert texts(sent.messages) == [(chat_pb2.ROLE_SYSTEM, "be brief"),
                                    (chat_pb2.ROLE_USER, "My name is Alice"),
                                    (chat_pb2.ROLE_ASSISTANT, "Hello Alice"),
                                    (chat_pb2.ROLE_USER, "What's my name?")]
    items = client.get(f"/v1/conversations/{cid}/items", params={"order": "asc"}).json()
    kinds = [(i["role"], i["content"][0].get("text")) for i in items["data"]]
    assert kinds == [("user", "My name is Alice"), ("assistant", "Hello Alice"),
                     ("user", "What's my name?"), ("assistant", "Hello there")]
    assert items["data"][-1]["id"] == reply["output"][0]["id"]   # the output item as sent
    assert ("default", reply["id"]) in be.state.rows             # and the response is stored


def test_store_false_still_appends_to_the_conversation(gw: Gw):
    client, be = gw
    cid = new_conversation(client)
    r = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "hi",
                                           "conversation": cid, "store": False})
    assert r.status_code == 200 and not be.state.rows
    assert len(client.get(f"/v1/conversations/{cid}/items").json()["data"]) == 2


def test_conversation_parameter_errors(gw: Gw):
    client, be = gw
    cid = new_conversation(client)
    base = {"model": "gpt-4o-mini", "input": "hi"}
    r = client.post("/v1/responses", json={**base, "conversation": cid,
                                           "previous_response_id": "resp_" + "0" * 24})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "mutually_exclusive_parameters"
    for bad in (7, {"name": cid}, "resp_abc", ""):
        r = client.post("/v1/responses", json={**base, "conversation": bad})
        assert r.status_code == 400 and r.json()["error"]["param"] == "conversation"
    missing = "conv_" + "f" * 48
    r = client.post("/v1/responses", json={**base, "conversation": missing})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"Conversation with id '{missing}' not found."
    assert not be.mux.sent   # nothing reached the upstream


def test_an_input_item_already_in_the_conversation_is_400_before_the_upstream(gw: Gw):
    client, be = gw
    cid = new_conversation(client, items=[{"id": "msg_1", "role": "user", "content": "hi"}])
    r = client.post("/v1/responses", json={
        "model": "gpt-4o-mini", "conversation": cid,
        "input": [{"id": "msg_2", "role": "user", "content": "a"},
                  {"id": "msg_1", "role": "user", "content": "again"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[1].id"
    assert not be.mux.sent
