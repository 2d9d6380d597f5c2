"""The limits through the edge app in-process (the in-process limiter, the fake backends of
test_edge_app): 429s in each client's format with Retry-After, one count per request, the
token reservation settled to the real usage for whole and streamed answers, given back
when the answer fails, and Plano's `ratelimits` selected by header."""
from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import yaml
from starlette.testclient import TestClient

from switchyard.common.config import parse_config
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.edge.app import create_app
from switchyard.edge.limits.memory import MemoryLimiter
from switchyard.providers.adapters import events as ev
from tests.unit.test_edge_app import BASE, CHAT, MESSAGES, FakeBackends, sse_data

KEY = "key-team-a"


def reply(usage: chat_pb2.Usage) -> list[chat_pb2.StreamEvent]:
    return [ev.start("up-1", "gpt-4o-mini"), ev.block_start(0, ev.text_part()),
            ev.text(0, "ok"), ev.block_stop(0),
            ev.finish(chat_pb2.STOP_REASON_END_TURN, usage)]


class Gateway:
    def __init__(self, client: TestClient, be: FakeBackends, store: MemoryLimiter,
                 now: list[float]) -> None:
        self.client, self.be, self.store, self.now = client, be, store, now

    def level(self, prefix: str) -> float:
        (found,) = [v[0] for k, v in self.store.levels.items() if k.startswith(prefix)]
        return found


def start(extra: str) -> Iterator[Gateway]:
    config = parse_config(yaml.safe_load(BASE + extra))
    be = FakeBackends()
    edge = create_app(config, backends=be)
    assert edge.limits is not None
    store = edge.limits.limiter
    assert isinstance(store, MemoryLimiter)
    now = [1000.0]
    store.clock = lambda: now[0]     # time stands still unless a test moves it
    with TestClient(edge) as client:
        yield Gateway(client, be, store, now)


@pytest.fixture
def rpm_only() -> Iterator[Gateway]:
    yield from start(f"auth: {{keys: [{{key: {KEY}, tenant: a, requests_per_minute: 2}}]}}\n")


@pytest.fixture
def tokens() -> Iterator[Gateway]:
    yield from start(f"""
auth: {{keys: [{{key: {KEY}, tenant: a, requests_per_minute: 100, tokens_per_minute: 1000}}]}}
ratelimits:
  - {{model: gpt-4o-mini, selector: {{key: x-org}}, limit: {{tokens: 200, unit: minute}}}}
  - {{model: gpt-4o-mini, selector: {{key: x-org, value: vip}}, limit: {{tokens: 5000, unit: hour}}}}
""")


OA = {"authorization": f"Bearer {KEY}"}
AN = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def test_requests_per_minute_429_in_each_format_before_the_body_is_read(rpm_only):
    c = rpm_only.client
    assert c.post("/v1/chat/completions", json=CHAT, headers=OA).status_code == 200
    assert c.post("/v1/messages", json=MESSAGES, headers=AN).status_code == 200
    r = c.post("/v1/chat/completions", content=b"not json", headers=OA)
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    assert int(r.headers["retry-after"]) == 30          # 1 of 2 a minute
    assert "2 requests per minute for this API key" in r.json()["error"]["message"]
    r = c.post("/v1/messages", json=MESSAGES, headers=AN)
    assert r.status_code == 429 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "rate_limit_error" and r.headers["retry-after"]
    r = c.post("/v1beta/models/gpt-4o-mini:generateContent",
               json={"contents": [{"parts": [{"text": "hi"}]}]}, headers={"x-goog-api-key": KEY})
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    rpm_only.now[0] += 30
    assert c.post("/v1/chat/completions", json=CHAT, headers=OA).status_code == 200


def test_whole_answer_reservation_settled_to_usage(tokens):
    tokens.be.mux.script = reply(chat_pb2.Usage(input_tokens=30, output_tokens=20,
                                                cache_read_tokens=10))
    r = tokens.client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 300},
                           headers=OA)
    assert r.status_code == 200
    assert tokens.level("tk:") == 1000 - 60             # 300 held, 60 used, 240 back
    assert tokens.level("rq:") == 99                    # counted once, with the tokens


def test_streamed_answer_settled_when_the_stream_ends(tokens):
    tokens.be.mux.script = reply(chat_pb2.Usage(input_tokens=7, output_tokens=5))
    r = tokens.client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=AN)
    assert r.status_code == 200 and "message_stop" in r.text
    assert tokens.level("tk:") == 1000 - 12


def test_failed_answer_gives_the_reservation_back(tokens):
    tokens.be.mux.fail = GatewayError(502, "upstream down", type="api_error")
    r = tokens.client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 300},
                           headers=OA)
    assert r.status_code == 502
    assert tokens.level("tk:") == 1000


def test_over_the_token_budget_is_429_until_it_refills(tokens):
    tokens.be.mux.script = reply(chat_pb2.Usage(input_tokens=900, output_tokens=90))
    assert tokens.client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 100},
                              headers=OA).status_code == 200
    r = tokens.client.post("/v1/messages", json={**MESSAGES, "max_tokens": 100}, headers=AN)
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    assert "1000 tokens per minute for this API key" in r.json()["error"]["message"]
    # 10 left; 100 + the input estimate wanted at 1000 a minute: about 5.6 s.
    assert 5 <= int(r.headers["retry-after"]) <= 7
    assert tokens.level("rq:") == 99                    # refused: nothing taken, all or none
    tokens.now[0] += 10
    assert tokens.client.post("/v1/messages", json={**MESSAGES, "max_tokens": 100},
                              headers=AN).status_code == 200


def test_ratelimits_by_header_each_value_its_own_budget(tokens):
    tokens.be.mux.script = reply(chat_pb2.Usage(input_tokens=110, output_tokens=40))
    body = {**CHAT, "max_tokens": 50}
    ok = tokens.client.post("/v1/chat/completions", json=body, headers={**OA, "x-org": "acme"})
    assert ok.status_code == 200
    r = tokens.client.post("/v1/chat/completions", json=body, headers={**OA, "x-org": "acme"})
    assert r.status_code == 429
    assert "200 tokens per minute for model gpt-4o-mini with header x-org" in \
        r.json()["error"]["message"]
    other = {**OA, "x-org": "globex"}
    assert tokens.client.post("/v1/chat/completions", json=body,
                              headers=other).status_code == 200
    vip = {**OA, "x-org": "vip"}         # the entry with the exact value replaces the other
    for _ in range(3):
        assert tokens.client.post("/v1/chat/completions", json=body,
                                  headers=vip).status_code == 200
    no_header = tokens.client.post("/v1/chat/completions", json=body, headers=OA)
    assert no_header.status_code == 200


def test_count_tokens_is_a_request_not_tokens(tokens):
    r = tokens.client.post("/v1/messages/count_tokens", headers=AN, json={
        "model": "claude-3-5-haiku-20241022", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    assert tokens.level("rq:") == 99
    assert not any(k.startswith("tk:") for k in tokens.store.levels)


def test_unknown_path_and_bad_body_still_count_a_request(tokens):
    assert tokens.client.post("/v1/nothing", json={}, headers=OA).status_code == 404
    assert tokens.client.post("/v1/chat/completions", content=b"{",
                              headers=OA).status_code == 400
    assert tokens.level("rq:") == 98


def test_no_limits_configured_means_no_limiter_and_no_state():
    config = parse_config(yaml.safe_load(BASE))
    be = FakeBackends()
    edge = create_app(config, backends=be)
    assert edge.limits is None
    with TestClient(edge) as client:
        r = client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        assert r.status_code == 200 and sse_data(r.text)[-1] == "[DONE]"
        assert orjson.loads(sse_data(r.text)[0])["object"] == "chat.completion.chunk"
