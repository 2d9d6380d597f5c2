"""Fallbacks, retries, timeouts, weighted splits, auth, limits and tenants, end to end."""
import collections
import hashlib
import time

import anthropic
import httpx
import openai
import pytest

from tests.e2e.harness import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    Gateway,
    free_port,
    gateway_config,
    wait_for,
)

TEAM_A, TEAM_B, TEAM_C = "team-a-secret", "team-b-secret", "team-c-secret"


def resilience_config(dead_port: int) -> tuple[str, str, str]:
    """Extra providers, aliases and top-level sections for this module's gateway."""
    return f"""
  - model: openai/gpt-4o-dead
    access_key: {OPENAI_KEY}
    base_url: http://127.0.0.1:{dead_port}
""", """
  resilient-model:
    target: claude-3-5-sonnet-20241022
    fallbacks: [gpt-4o-mini]
  down-first:
    target: gpt-4o-dead
    fallbacks: [gpt-4o-mini]
  all-down:
    target: gpt-4o-dead
  split-model:
    targets:
      - {model: gpt-4o-mini, weight: 80}
      - {model: gpt-4o, weight: 20}
""", f"""
auth:
  keys:
    - key: {TEAM_A}
      tenant: team-a
    - key_sha256: {hashlib.sha256(TEAM_B.encode()).hexdigest()}
      tenant: team-b
      models: [gpt-4o-mini, fast-model]
    - key: {TEAM_C}
      tenant: team-c
      requests_per_minute: 2
limits:
  max_body_bytes: 100000
  max_concurrent_requests: 4
"""


@pytest.fixture(scope="module")
def rgw(emulator, tmp_path_factory):
    port = free_port()
    providers, aliases, extra = resilience_config(free_port())
    text = gateway_config(emulator.url, port, state="state_storage: {type: memory}",
                          providers=providers, aliases=aliases, extra=extra, timeout="3s")
    gw = Gateway(text, tmp_path_factory.mktemp("resilience"), port).start()
    yield gw
    gw.stop()


def oa(gw, key=TEAM_A, **kw):
    return openai.OpenAI(api_key=key, base_url=f"{gw.url}/v1", max_retries=0, timeout=30, **kw)


USER = [{"role": "user", "content": "hi"}]


def upstream_models(emu):
    return [r["json"]["model"] for r in emu.requests() if r.get("json")]


def test_429_then_success_is_retried(rgw, emu):
    emu.script("gpt-4o-mini", {"status": 429, "headers": {"retry-after": "1"}})
    started = time.monotonic()
    raw = oa(rgw).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    assert time.monotonic() - started >= 0.9  # retry-after honoured
    assert raw.headers["x-switchyard-attempts"] == "2"
    assert raw.parse().choices[0].message.content
    assert upstream_models(emu) == ["gpt-4o-mini", "gpt-4o-mini"]


def test_500_on_primary_then_fallback_serves(rgw, emu):
    emu.script("claude-3-5-sonnet-20241022", *[{"status": 500}] * 5)
    raw = oa(rgw).chat.completions.with_raw_response.create(model="resilient-model",
                                                           messages=USER)
    assert raw.parse().model == "gpt-4o-mini"   # the upstream that answered
    assert "gpt-4o-mini" in raw.headers["x-switchyard-upstream"]
    assert upstream_models(emu)[-1] == "gpt-4o-mini"


def test_primary_down_closed_port_falls_back(rgw, emu):
    raw = oa(rgw).chat.completions.with_raw_response.create(model="down-first", messages=USER)
    assert raw.parse().choices[0].message.content
    assert "gpt-4o-mini" in raw.headers["x-switchyard-upstream"]


def test_all_targets_down_is_a_clear_502(rgw):
    with pytest.raises(openai.APIStatusError) as info:
        oa(rgw).chat.completions.create(model="all-down", messages=USER)
    assert info.value.status_code == 502
    assert "gpt-4o-dead" in str(info.value)
    assert OPENAI_KEY not in str(info.value)


def test_slow_upstream_beyond_timeout_is_504(rgw, emu):
    emu.script("gpt-4o-mini", *[{"delay": 8}] * 4)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        oa(rgw).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert info.value.status_code == 504
    assert time.monotonic() - started < 8


def test_weighted_split_over_1000_requests(rgw, emu):
    client = httpx.Client(base_url=rgw.url, headers={"authorization": f"Bearer {TEAM_A}"})
    for _ in range(1000):
        r = client.post("/v1/chat/completions", json={"model": "split-model", "messages": USER})
        assert r.status_code == 200
    counts = collections.Counter(upstream_models(emu))
    assert sum(counts.values()) == 1000
    assert 720 <= counts["gpt-4o-mini"] <= 880, counts


def test_client_disconnect_cancels_the_upstream(rgw, emu):
    emu.script("gpt-4o-mini", {"reply": {"text": " ".join(["word"] * 200)}, "chunks": 200,
                               "chunk_delay": 0.05})
    with httpx.stream("POST", f"{rgw.url}/v1/chat/completions",
                      headers={"authorization": f"Bearer {TEAM_A}"},
                      json={"model": "gpt-4o-mini", "stream": True, "messages": USER}) as r:
        lines = r.iter_lines()
        for _ in range(3):
            next(lines)
    closed = time.monotonic()
    wait_for(lambda: len(emu.disconnects()) == 1, 5, "the upstream to see the disconnect")
    assert time.monotonic() - closed < 2


def test_missing_or_wrong_key_is_401_in_each_format(rgw):
    with pytest.raises(openai.AuthenticationError):
        oa(rgw, key="wrong").chat.completions.create(model="gpt-4o-mini", messages=USER)
    client = anthropic.Anthropic(api_key="wrong", base_url=rgw.url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=USER)
    r = httpx.post(f"{rgw.url}/v1/messages", json={})
    assert r.status_code == 401 and r.json()["type"] == "error"


def test_model_not_allowed_is_403_and_allowed_works(rgw):
    with pytest.raises(openai.PermissionDeniedError):
        oa(rgw, key=TEAM_B).chat.completions.create(model="gpt-4o", messages=USER)
    assert oa(rgw, key=TEAM_B).chat.completions.create(model="fast-model", messages=USER)
    # The Anthropic SDK's key header works the same way.
    client = anthropic.Anthropic(api_key=TEAM_B, base_url=rgw.url, max_retries=0)
    assert client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=USER).content


def test_cross_tenant_read_is_404(rgw):
    mine = oa(rgw, key=TEAM_A).responses.create(model="gpt-4o-mini", input="secret plans")
    assert oa(rgw, key=TEAM_A).responses.retrieve(mine.id).id == mine.id
    with pytest.raises(openai.NotFoundError):
        oa(rgw, key=TEAM_B).responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        oa(rgw, key=TEAM_B).responses.create(model="gpt-4o-mini", input="x",
                                             previous_response_id=mine.id)


def test_per_key_rate_limit_is_429_with_retry_after(rgw):
    client = httpx.Client(base_url=rgw.url, headers={"authorization": f"Bearer {TEAM_C}"})
    body = {"model": "gpt-4o-mini", "messages": USER}
    assert client.post("/v1/chat/completions", json=body).status_code == 200
    assert client.post("/v1/chat/completions", json=body).status_code == 200
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_oversized_body_is_413(rgw):
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 200_000}]}
    r = httpx.post(f"{rgw.url}/v1/chat/completions", json=big,
                   headers={"authorization": f"Bearer {TEAM_A}"})
    assert r.status_code == 413
    r = httpx.post(f"{rgw.url}/v1/messages", json=big, headers={"x-api-key": TEAM_A})
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


def test_provider_keys_never_reach_logs_or_responses(rgw):
    r = httpx.get(f"{rgw.url}/v1/models", headers={"authorization": f"Bearer {TEAM_A}"})
    assert OPENAI_KEY not in r.text and ANTHROPIC_KEY not in r.text
    log = rgw.log()
    assert log  # the services did log
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, TEAM_A, TEAM_B, TEAM_C):
        assert secret not in log


def test_concurrency_bound_sheds_load_with_503(rgw, emu):
    emu.script("gpt-4o-mini", *[{"delay": 1.5}] * 8)

    def call(_):
        r = httpx.post(f"{rgw.url}/v1/chat/completions", timeout=20,
                       headers={"authorization": f"Bearer {TEAM_A}"},
                       json={"model": "gpt-4o-mini", "messages": USER})
        return r.status_code, r.headers.get("retry-after"), r.json()

    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    statuses = sorted(s for s, _, _ in results)
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    assert statuses.count(200) <= 4
    for status, retry_after, body in results:
        if status == 503:
            assert int(retry_after) >= 1
            assert body["error"]["type"] == "service_unavailable"
