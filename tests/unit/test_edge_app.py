"""The edge app in-process, with fake backends: routes, the shared request flow, the guard.
No gRPC, no subprocess; each test runs in milliseconds."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import orjson
import pytest
from starlette.testclient import TestClient

from switchyard.common.config import parse_config
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2, state_pb2
from switchyard.edge.app import create_app
from switchyard.providers.adapters import events as ev

KNOWN = ("gpt-4o-mini", "claude-3-5-haiku-20241022")


def reply_events(text: str = "Hello there") -> list[chat_pb2.StreamEvent]:
    return [ev.start("up-1", "gpt-4o-mini"), ev.block_start(0, ev.text_part()),
            ev.text(0, text), ev.block_stop(0),
            ev.finish(chat_pb2.STOP_REASON_END_TURN,
                      chat_pb2.Usage(input_tokens=3, output_tokens=2))]


def stamp(events: list[chat_pb2.StreamEvent]) -> list[chat_pb2.StreamEvent]:
    events[0].start.provider = "openai/gpt-4o-mini"
    events[0].start.attempts = 1
    return events


class FakeRoutes:
    async def resolve(self, name: str) -> router_pb2.RoutePlan:
        if name not in KNOWN:
            raise GatewayError(404, f"The model '{name}' does not exist.", type="not_found",
                               code="model_not_found", param="model")
        return router_pb2.RoutePlan(name=name, targets=[router_pb2.Target(provider="p",
                                                                          model=name)])

    def models(self) -> router_pb2.ModelList:
        return router_pb2.ModelList(models=[router_pb2.ModelInfo(id=m) for m in KNOWN])


class FakeState:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], state_pb2.StoredResponse] = {}
        self.convs: dict[tuple[str, str],
                         tuple[state_pb2.Conversation, dict[str, bytes]]] = {}

    async def put(self, resp: state_pb2.StoredResponse) -> None:
        self.rows[(resp.tenant, resp.id)] = resp

    async def get(self, tenant: str, id: str) -> state_pb2.StoredResponse:
        try:
            return self.rows[(tenant, id)]
        except KeyError:
            raise GatewayError(404, f"No response found with id '{id}'.",
                               type="not_found") from None

    async def history(self, tenant: str, id: str) -> list[chat_pb2.Message]:
        chain: list[state_pb2.StoredResponse] = []
        while id:
            row = await self.get(tenant, id)
            chain.append(row)
            id = row.previous_response_id
        return [m for row in reversed(chain) for m in (*row.input, *row.output)]

    async def delete(self, tenant: str, id: str) -> bool:
        return self.rows.pop((tenant, id), None) is not None

    # Conversations: the StateClient's contract over a dict (conversation, id -> item JSON).
    async def create_conversation(self, tenant: str, metadata_json: bytes,
                                  items: list[state_pb2.ConversationItem]
                                  ) -> state_pb2.Conversation:
        conv = state_pb2.Conversation(id=f"conv_{len(self.convs):048x}", tenant=tenant,
                                      metadata_json=metadata_json, created_at=1)
        self.convs[(tenant, conv.id)] = (conv, {})
        await self.append_items(tenant, conv.id, items)
        return await self.get_conversation(tenant, conv.id)

    def _conv(self, tenant: str, id: str) -> tuple[state_pb2.Conversation, dict[str, bytes]]:
        try:
            return self.convs[(tenant, id)]
        except KeyError:
            raise GatewayError(404, f"Conversation with id '{id}' not found.",
                               type="not_found") from None

    async def get_conversation(self, tenant: str, id: str) -> state_pb2.Conversation:
        conv, items = self._conv(tenant, id)
        conv.item_count = len(items)
        return conv

    async def update_conversation(self, tenant: str, id: str,
                                  metadata_json: bytes) -> state_pb2.Conversation:
        self._conv(tenant, id)[0].metadata_json = metadata_json
        return await self.get_conversation(tenant, id)

    async def delete_conversation(self, tenant: str, id: str) -> None:
        self._conv(tenant, id)
        del self.convs[(tenant, id)]

    async def append_items(self, tenant: str, id: str,
                           items: list[state_pb2.ConversationItem]) -> None:
        stored = self._conv(tenant, id)[1]
        stored.update((i.id, i.item_json) for i in items)

    async def list_items(self, tenant: str, id: str, *, after: str = "", limit: int = 0,
                         descending: bool = False) -> state_pb2.ConversationItems:
        stored = self._conv(tenant, id)[1]
        order = list(reversed(stored)) if descending else list(stored)
        order = order[order.index(after) + 1:] if after else order
        page = order[:limit] if limit else order
        return state_pb2.ConversationItems(
            items=[state_pb2.ConversationItem(id=i, item_json=stored[i]) for i in page],
            has_more=len(page) < len(order))

    async def get_item(self, tenant: str, id: str,
                       item_id: str) -> state_pb2.ConversationItem:
        stored = self._conv(tenant, id)[1]
        if item_id not in stored:
            raise GatewayError(404, f"Item with id '{item_id}' not found.", type="not_found")
        return state_pb2.ConversationItem(id=item_id, item_json=stored[item_id])

    async def delete_item(self, tenant: str, id: str,
                          item_id: str) -> state_pb2.Conversation:
        await self.get_item(tenant, id, item_id)
        del self._conv(tenant, id)[1][item_id]
        return await self.get_conversation(tenant, id)


class FakeCall:
    def __init__(self, batches: list[chat_pb2.EventBatch]) -> None:
        self.batches = batches
        self.cancelled = False

    async def read(self) -> chat_pb2.EventBatch | Any:
        return self.batches.pop(0) if self.batches else grpc.aio.EOF

    def cancel(self) -> None:
        self.cancelled = True


class FakeMux:
    def __init__(self) -> None:
        self.sent: list[providers_pb2.GenerateRequest] = []
        self.script: list[chat_pb2.StreamEvent] | None = None
        self.fail: Exception | None = None

    def _events(self, req: providers_pb2.GenerateRequest) -> list[chat_pb2.StreamEvent]:
        self.sent.append(req)
        if self.fail is not None:
            raise self.fail
        return stamp(list(self.script) if self.script is not None else reply_events())

    async def generate(self, req: providers_pb2.GenerateRequest) -> FakeCall:
        events = self._events(req)
        return FakeCall([chat_pb2.EventBatch(events=events[:2]),
                         chat_pb2.EventBatch(events=events[2:])])

    async def complete(self, req: providers_pb2.GenerateRequest,
                       timeout: float) -> chat_pb2.EventBatch:
        return chat_pb2.EventBatch(events=self._events(req))


class FakeBackends:
    def __init__(self) -> None:
        self.routes = FakeRoutes()
        self.state = FakeState()
        self.mux = FakeMux()
        self.counted: list[providers_pb2.GenerateRequest] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def health(self, timeout: float = 1.0) -> dict[str, bool]:
        return {"router": True, "providers": True, "state": True}

    async def count_tokens(self, req: providers_pb2.GenerateRequest,
                           timeout: float) -> providers_pb2.CountTokensReply:
        self.counted.append(req)
        return providers_pb2.CountTokensReply(input_tokens=7)


BASE = """
version: v0.3.0
listeners: [{type: model, name: m, address: 127.0.0.1, port: 12000}]
model_providers:
  - {model: openai/gpt-4o-mini, access_key: sk-x, default: true}
  - {model: anthropic/claude-3-5-haiku-20241022, access_key: sk-y}
"""
AUTH = """
auth:
  keys:
    - {key: key-limited, tenant: team-a, models: [gpt-4o-mini]}
    - {key: key-open, tenant: team-b}
"""


def make_client(extra: str = "") -> Iterator[tuple[TestClient, FakeBackends]]:
    import yaml
    config = parse_config(yaml.safe_load(BASE + extra))
    be = FakeBackends()
    with TestClient(create_app(config, backends=be)) as client:
        yield client, be


@pytest.fixture
def gw() -> Iterator[tuple[TestClient, FakeBackends]]:
    yield from make_client()


@pytest.fixture
def gw_state() -> Iterator[tuple[TestClient, FakeBackends]]:
    yield from make_client("state_storage: {type: memory}\n")


@pytest.fixture
def gw_auth() -> Iterator[tuple[TestClient, FakeBackends]]:
    yield from make_client(AUTH)


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-3-5-haiku-20241022", "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}]}


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


def test_chat_completion_whole_reply_and_headers(gw):
    client, be = gw
    r = client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"]["content"] == "Hello there"
    assert body["model"] == "gpt-4o-mini"
    assert r.headers["x-request-id"] == r.headers["request-id"]
    assert r.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"
    assert float(r.headers["x-switchyard-overhead-ms"]) >= 0
    (sent,) = be.mux.sent
    assert sent.request_id == r.headers["x-request-id"] and sent.plan.name == "gpt-4o-mini"
    assert be.state.rows == {}   # no state_storage section: chat completions are not stored


def test_chat_completion_stream_ends_with_done(gw):
    client, _ = gw
    r = client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    data = sse_data(r.text)
    assert data[-1] == "[DONE]"
    text = "".join((orjson.loads(d)["choices"][0]["delta"].get("content") or "")
                   for d in data[:-1] if orjson.loads(d)["choices"])
    assert text == "Hello there"


def test_chat_mid_stream_error_is_an_error_chunk_without_done(gw):
    client, be = gw
    be.mux.script = [*reply_events()[:3], ev.error(GatewayError(
        502, "upstream broke", type="upstream_unreachable").to_proto())]
    r = client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    data = sse_data(r.text)
    assert "[DONE]" not in data
    assert orjson.loads(data[-1])["error"]["message"] == "upstream broke"


def test_messages_whole_and_streamed(gw):
    client, _ = gw
    r = client.post("/v1/messages", json=MESSAGES)
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "message" and body["content"][0]["text"] == "Hello there"
    assert r.headers["request-id"]
    r = client.post("/v1/messages", json={**MESSAGES, "stream": True})
    assert "event: message_stop" in r.text


def test_chat_state_stores_and_continues_with_history(gw_state):
    client, be = gw_state
    first = client.post("/v1/chat/completions", json=CHAT).json()
    (row,) = be.state.rows.values()
    assert row.kind == "chat.completion" and row.id == first["id"]
    assert [m.parts[0].text.text for m in row.input] == ["hi"]
    follow = {**CHAT, "messages": [{"role": "user", "content": "more"}],
              "metadata": {"response_id": first["id"]}}
    r = client.post("/v1/chat/completions", json=follow)
    assert r.status_code == 200
    sent = be.mux.sent[-1].request
    assert [m.role for m in sent.messages] == [chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT,
                                              chat_pb2.ROLE_USER]
    assert "metadata" not in orjson.loads(sent.extra_json or b"{}")
    stored = be.state.rows[("default", r.json()["id"])]
    assert stored.previous_response_id == first["id"] and len(stored.input) == 1


def test_chat_unknown_conversation_is_404(gw_state):
    client, _ = gw_state
    r = client.post("/v1/chat/completions",
                    json={**CHAT, "metadata": {"response_id": "chatcmpl-nope"}})
    assert r.status_code == 404 and "chatcmpl-nope" in r.json()["error"]["message"]


def test_responses_store_instructions_not_kept_and_stream_stored(gw):
    client, be = gw
    r = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "hi",
                                           "instructions": "be brief"})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    rid = r.json()["id"]
    row = be.state.rows[("default", rid)]
    assert row.kind == "response" and len(row.input) == 1   # instructions are not stored
    assert orjson.loads(row.input_items_json)[0]["content"][0]["text"] == "hi"
    assert client.get(f"/v1/responses/{rid}").json()["id"] == rid
    r = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "more",
                                           "previous_response_id": rid, "stream": True})
    frames = [orjson.loads(d) for d in sse_data(r.text)]
    assert frames[-1]["type"] == "response.completed"
    new_id = frames[-1]["response"]["id"]
    assert be.state.rows[("default", new_id)].previous_response_id == rid
    assert len(be.mux.sent[-1].request.messages) == 3   # history then the new input


def test_responses_store_false_is_not_stored(gw):
    client, be = gw
    r = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "hi",
                                           "store": False})
    assert r.status_code == 200 and be.state.rows == {}


@pytest.mark.parametrize("path, body, shape", [
    ("/v1/chat/completions", b"{not json", "openai"),
    ("/v1/messages", b"[1, 2]", "anthropic"),
    ("/v1/responses", b"", "openai"),
])
def test_malformed_bodies_are_400_in_the_clients_format(gw, path, body, shape):
    client, be = gw
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()
    if shape == "anthropic":
        assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    else:
        assert err["error"]["type"] == "invalid_request_error"
    assert r.headers["x-request-id"] and be.mux.sent == []


def test_unknown_model_is_404_in_anthropic_format(gw):
    client, _ = gw
    r = client.post("/v1/messages", json={**MESSAGES, "model": "nope"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_unexpected_backend_failure_is_a_clean_500(gw):
    client, be = gw
    be.mux.fail = RuntimeError("secret internals")
    r = client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 500
    assert r.json()["error"]["message"] == "internal gateway error"
    assert "secret" not in r.text and "Traceback" not in r.text


def test_count_tokens_goes_through_the_flow(gw):
    client, be = gw
    body = {k: v for k, v in MESSAGES.items() if k != "max_tokens"}
    r = client.post("/v1/messages/count_tokens", json=body)
    assert r.status_code == 200 and r.json() == {"input_tokens": 7}
    assert be.counted[0].plan.name == "claude-3-5-haiku-20241022"


def test_count_tokens_respects_the_keys_model_allow_list(gw_auth):
    client, be = gw_auth
    body = {k: v for k, v in MESSAGES.items() if k != "max_tokens"}
    r = client.post("/v1/messages/count_tokens", json=body,
                    headers={"x-api-key": "key-limited"})
    assert r.status_code == 403
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "permission_error"
    assert be.counted == []   # the operator's Anthropic key was never used
    r = client.post("/v1/messages/count_tokens", json=body, headers={"x-api-key": "key-open"})
    assert r.status_code == 200


def test_generation_respects_the_allow_list_and_tenant(gw_auth):
    client, be = gw_auth
    r = client.post("/v1/messages", json=MESSAGES, headers={"x-api-key": "key-limited"})
    assert r.status_code == 403 and be.mux.sent == []
    r = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "hi"},
                    headers={"authorization": "Bearer key-limited"})
    assert r.status_code == 200
    assert ("team-a", r.json()["id"]) in be.state.rows
    other = client.get(f"/v1/responses/{r.json()['id']}",
                       headers={"authorization": "Bearer key-open"})
    assert other.status_code == 404   # another tenant's id is simply not found


@pytest.mark.parametrize("method, path, headers, status", [
    ("POST", "/v1/chat/completions", {}, 401),                      # the guard's 401
    ("POST", "/v1/messages", {"x-api-key": "wrong"}, 401),
    ("GET", "/v1/nowhere", {"x-api-key": "key-open"}, 404),        # unknown path
    ("GET", "/v1/models", {"x-api-key": "key-open"}, 200),
    ("GET", "/v1/responses/resp_none", {"x-api-key": "key-open"}, 404),
    ("DELETE", "/v1/responses/resp_none", {"x-api-key": "key-open"}, 404),
    ("GET", "/healthz", {}, 200),
])
def test_every_answer_carries_the_request_id(gw_auth, method, path, headers, status):
    client, _ = gw_auth
    r = client.request(method, path, headers=headers, json=CHAT if method == "POST" else None)
    assert r.status_code == status
    assert r.headers["x-request-id"].startswith("req_")
    assert r.headers["request-id"] == r.headers["x-request-id"]
    assert len(r.headers.get_list("x-request-id")) == 1


def test_guard_errors_use_the_paths_format(gw_auth):
    client, _ = gw_auth
    r = client.post("/v1/messages", json=MESSAGES)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert r.json()["type"] == "error"
    r = client.post("/v1/chat/completions", json=CHAT)
    assert r.json()["error"]["type"] == "authentication_error" and "type" not in r.json()


def test_a_clients_request_id_is_kept_when_it_is_a_plain_token(gw):
    client, be = gw
    r = client.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "trace-42.a"})
    assert r.headers["x-request-id"] == "trace-42.a" == be.mux.sent[-1].request_id
    r = client.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "x" * 500})
    assert r.headers["x-request-id"].startswith("req_")


def test_the_edge_app_answers_concurrent_requests(gw):
    client, be = gw

    async def many() -> list[int]:
        import httpx
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            rs = await asyncio.gather(*(c.post("/v1/chat/completions", json=CHAT)
                                        for _ in range(20)))
        return [r.status_code for r in rs]

    assert client.portal is not None
    assert client.portal.call(many) == [200] * 20
    assert len({r.request_id for r in be.mux.sent}) == 20
