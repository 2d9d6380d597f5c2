"""Limits shared in Redis, through two real gateways (`switchyard up` each) and a real
redis-server: a per-key request limit admits N across both edges, not 2N, and answers 429 in
the OpenAI and the Anthropic format; token reservations settle to the emulator's usage
(streams too) whichever edge served; Plano's `ratelimits` select by header; with Redis
stopped the edge set to `allow` serves and the one set to `deny` answers 503, each logging
one line without the password, until Redis is back."""
from __future__ import annotations

import re

import anthropic
import httpx
import openai
import pytest
import redis

from tests.e2e.harness import Gateway, gateway_config, gateways, wait_for
from tests.support.redis import redis_server

PASSWORD = "redis-pw-e2e-secret"
RPM_KEY, TPM_KEY, STREAM_KEY, ORG_KEY = ("rpm-key-secret", "tpm-key-secret",
                                         "stream-key-secret", "org-key-secret")
USER = [{"role": "user", "content": "hi"}]
store = redis_server(password=PASSWORD)


def limits_section(redis_port: int, policy: str) -> str:
    return f"""
auth:
  keys:
    - {{key: {RPM_KEY}, tenant: rpm, requests_per_minute: 3}}
    - {{key: {TPM_KEY}, tenant: tpm, tokens_per_minute: 2000}}
    - {{key: {STREAM_KEY}, tenant: stream, tokens_per_minute: 2000}}
    - {{key: {ORG_KEY}, tenant: org}}
ratelimits:
  - model: gpt-4o-mini
    selector: {{key: x-org}}
    limit: {{tokens: 300, unit: minute}}
redis:
  url: "redis://:${{SWITCHYARD_E2E_REDIS_PW}}@127.0.0.1:{redis_port}/0"
  on_unavailable: {policy}
  timeout: 200ms
"""


@pytest.fixture(scope="module")
def edges(emulator, store, tmp_path_factory):
    """Two gateways on one Redis: `allow` and `deny` differ only while Redis is down."""
    configs = {f"shared-{policy}": (lambda port, policy=policy: gateway_config(
        emulator.url, port, extra=limits_section(store.port, policy)))
        for policy in ("allow", "deny")}
    with gateways(configs, tmp_path_factory, env={"SWITCHYARD_E2E_REDIS_PW": PASSWORD}) as gws:
        yield gws


@pytest.fixture
def db(store):
    client = redis.Redis.from_url(store.url(), decode_responses=True)
    yield client
    client.close()


def oa(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gw.url}/v1", max_retries=0, timeout=30)


def an(gw: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=gw.url, max_retries=0, timeout=30)


def token_level(db: redis.Redis) -> float:
    """The level of the only per-key token bucket the test has used."""
    (key,) = db.keys("switchyard:limits:tk:key:*")
    return float(db.hget(key, "l"))


def test_a_key_limit_is_shared_by_both_edges_and_429_in_each_format(edges, db, emu):
    a, b = edges
    assert oa(a, RPM_KEY).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert an(b, RPM_KEY).messages.create(model="gpt-4o-mini", max_tokens=20, messages=USER)
    assert oa(b, RPM_KEY).chat.completions.create(model="gpt-4o-mini", messages=USER)
    with pytest.raises(openai.RateLimitError) as oerr:      # the fourth, on either edge
        oa(a, RPM_KEY).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert 15 <= int(oerr.value.response.headers["retry-after"]) <= 20   # 3 a minute
    assert "3 requests per minute for this API key" in oerr.value.message
    with pytest.raises(anthropic.RateLimitError) as aerr:
        an(b, RPM_KEY).messages.create(model="gpt-4o-mini", max_tokens=20, messages=USER)
    body = aerr.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert int(aerr.value.response.headers["retry-after"]) >= 1
    assert len(emu.requests()) == 3                          # the refused never went upstream
    assert db.keys("switchyard:limits:rq:key:*")             # counted in Redis, by digest
    assert not db.keys(f"*{RPM_KEY}*")


def test_tokens_reserved_on_one_edge_settle_for_the_other(edges, db, emu):
    a, b = edges
    emu.script("gpt-4o-mini", {"reply": {"text": "ok",
                                         "usage": {"input_tokens": 1500, "output_tokens": 400}}})
    r = oa(a, TPM_KEY).chat.completions.create(model="gpt-4o-mini", messages=USER,
                                               max_tokens=100)
    assert r.usage.prompt_tokens == 1500
    # The reservation (about 105) is settled to the 1900 used, in the background.
    wait_for(lambda: token_level(db) < 200, 10, "the settlement in Redis")
    with pytest.raises(anthropic.RateLimitError) as err:
        an(b, TPM_KEY).messages.create(model="gpt-4o-mini", max_tokens=200, messages=USER)
    assert "2000 tokens per minute for this API key" in err.value.message


def test_a_streamed_answer_settles_when_it_ends(edges, db, emu):
    a, b = edges
    emu.script("gpt-4o-mini", {"reply": {"text": "streamed words",
                                         "usage": {"input_tokens": 900, "output_tokens": 100}}})
    if done := db.keys("switchyard:limits:tk:key:*"):         # the other test's key is done
        db.delete(*done)
    with an(b, STREAM_KEY).messages.stream(model="gpt-4o-mini", max_tokens=50,
                                           messages=USER) as stream:
        text = "".join(stream.text_stream)
    assert text == "streamed words"
    # 1000 used of the ~55 held; unsettled the level would be ~1945 (it refills 33 a second).
    wait_for(lambda: 990 <= token_level(db) <= 1300, 10, "the stream's settlement")


def test_ratelimits_entries_select_by_header(edges, emu):
    a, b = edges
    emu.script("gpt-4o-mini", {"reply": {"text": "ok",
                                         "usage": {"input_tokens": 280, "output_tokens": 10}}})
    client = httpx.Client(headers={"authorization": f"Bearer {ORG_KEY}"}, timeout=30)
    body = {"model": "gpt-4o-mini", "messages": USER, "max_tokens": 20}
    ok = client.post(f"{a.url}/v1/chat/completions", json=body, headers={"x-org": "acme"})
    assert ok.status_code == 200

    def acme_refused() -> bool:   # once the settlement of the 290 used has landed
        r = client.post(f"{b.url}/v1/chat/completions", json=body, headers={"x-org": "acme"})
        assert r.status_code in (200, 429), r.text
        return r.status_code == 429 and "x-org (ratelimits)" in r.json()["error"]["message"]
    wait_for(acme_refused, 10, "acme's budget to be spent")
    other = client.post(f"{b.url}/v1/chat/completions", json=body, headers={"x-org": "globex"})
    assert other.status_code == 200
    plain = client.post(f"{a.url}/v1/chat/completions", json=body)     # no header: no entry
    assert plain.status_code == 200


def test_redis_stopped_allow_serves_deny_refuses_then_both_recover(edges, store, emu):
    allow, deny = edges
    store.stop()
    try:
        for _ in range(3):
            r = httpx.post(f"{allow.url}/v1/chat/completions", timeout=30,
                           headers={"authorization": f"Bearer {RPM_KEY}"},
                           json={"model": "gpt-4o-mini", "messages": USER})
            assert r.status_code == 200                      # limits waived, not a 429
        with pytest.raises(openai.InternalServerError) as oerr:   # a key with a limit
            oa(deny, TPM_KEY).chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert oerr.value.status_code == 503
        assert oerr.value.response.headers["retry-after"] == "1"
        assert "redis.on_unavailable: deny" in oerr.value.message
        r = httpx.post(f"{deny.url}/v1/messages", timeout=30,
                       headers={"x-api-key": TPM_KEY, "anthropic-version": "2023-06-01"},
                       json={"model": "gpt-4o-mini", "max_tokens": 20, "messages": USER})
        assert r.status_code == 503 and r.json()["type"] == "error"
        # No limit applies to this key without an x-org header: Redis is not asked at all.
        assert oa(deny, ORG_KEY).chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert r.json()["error"]["type"] == "overloaded_error"
        metrics = httpx.get(f"{deny.url}/metrics").text
        assert re.search(r'switchyard_limits_store_unavailable_total\{policy="deny"\} [1-9]',
                         metrics)
        assert "switchyard_limits_store_up 0.0" in metrics
        for gw, outcome in ((allow, "admitted without the shared limits"),
                            (deny, "refused with a 503")):
            lines = [line for line in gw.log().splitlines() if "is unavailable" in line]
            assert len(lines) == 1 and outcome in lines[0]    # once a minute, not per request
            assert PASSWORD not in gw.log()
    finally:
        store.start()

    def deny_serves() -> bool:
        r = httpx.post(f"{deny.url}/v1/chat/completions", timeout=30,
                       headers={"authorization": f"Bearer {TPM_KEY}"},
                       json={"model": "gpt-4o-mini", "messages": USER})
        assert r.status_code in (200, 503), r.text
        return r.status_code == 200
    wait_for(deny_serves, 15, "the deny edge to serve again")
    assert "answers again" in deny.log()
