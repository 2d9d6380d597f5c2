"""What every client format gets, for Gemini clients too, through a real gateway: aliases,
fallbacks, the x-switchyard-* headers, dropped-params reporting, metrics and tenant keys."""
from __future__ import annotations

import httpx
import pytest
from google.genai import errors

from tests.e2e.clients import gemini_sdk
from tests.e2e.harness import Gateway, free_port, gateway_config

TEAM_KEY, LIMITED_KEY = "gem-team-secret", "gem-limited-secret"
ALIASES = """
  gem-fallback:
    target: claude-3-5-sonnet-20241022
    fallbacks: [gpt-4o-mini]
"""
AUTH = f"""
auth:
  keys:
    - {{key: {TEAM_KEY}, tenant: gem-team}}
    - {{key: {LIMITED_KEY}, tenant: gem-limited, models: [gpt-4o-mini]}}
"""
BODY = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


@pytest.fixture(scope="module")
def ggw(emulator, tmp_path_factory):
    port = free_port()
    text = gateway_config(emulator.url, port, aliases=ALIASES, extra=AUTH, timeout="5s")
    gw = Gateway(text, tmp_path_factory.mktemp("gemini-features"), port).start()
    yield gw
    gw.stop()


def post(gw: Gateway, model: str, body: dict, key: str = TEAM_KEY) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1beta/models/{model}:generateContent", json=body,
                      headers={"x-goog-api-key": key}, timeout=30)


def test_alias_answers_with_the_gateway_headers(ggw, emu):
    r = post(ggw, "fast-model", BODY)
    assert r.status_code == 200, r.text
    assert r.json()["modelVersion"] == "gpt-4o-mini"   # the upstream's name
    assert r.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"
    assert r.headers["x-switchyard-attempts"] == "1"
    assert float(r.headers["x-switchyard-overhead-ms"]) >= 0
    assert r.headers["x-request-id"] == r.headers["request-id"]
    assert emu.requests()[-1]["json"]["model"] == "gpt-4o-mini"


def test_fallback_serves_when_the_primary_fails(ggw, emu):
    emu.script("claude-3-5-sonnet-20241022", *[{"status": 500}] * 5)
    sdk = gemini_sdk(ggw.url, TEAM_KEY)   # held: the SDK closes its client when collected
    r = sdk.models.generate_content(model="gem-fallback", contents="hi")
    assert r.text and r.model_version == "gpt-4o-mini"   # the fallback that answered
    models = [q["json"].get("model") for q in emu.requests() if q.get("json")]
    assert models[-1] == "gpt-4o-mini" and "claude-3-5-sonnet-20241022" in models


def test_fields_without_a_counterpart_are_reported_dropped(ggw, emu):
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    r = post(ggw, "gpt-4o-mini", {**BODY, "safetySettings": safety})
    assert r.status_code == 200, r.text
    assert "safetySettings" in r.headers["x-switchyard-dropped-params"]
    assert "safetySettings" not in emu.requests()[-1]["json"]
    # Same format: nothing is dropped, the field reaches Gemini as the client wrote it.
    r = post(ggw, "gemini-2.0-flash", {**BODY, "safetySettings": safety})
    assert r.status_code == 200, r.text
    assert "x-switchyard-dropped-params" not in r.headers
    assert emu.requests()[-1]["json"]["safetySettings"] == safety


def test_tenant_keys_and_model_allow_lists(ggw):
    stranger, limited = gemini_sdk(ggw.url, "not-a-key"), gemini_sdk(ggw.url, LIMITED_KEY)
    with pytest.raises(errors.ClientError) as info:
        stranger.models.generate_content(model="gpt-4o-mini", contents="hi")
    assert info.value.code == 401 and info.value.status == "UNAUTHENTICATED"
    with pytest.raises(errors.ClientError) as info:
        limited.models.generate_content(model="claude-3-5-haiku", contents="hi")
    assert info.value.code == 403 and info.value.status == "PERMISSION_DENIED"
    assert limited.models.generate_content(model="gpt-4o-mini", contents="hi").text


def test_gemini_requests_are_counted_in_the_metrics(ggw):
    before = _count(ggw)
    assert post(ggw, "gpt-4o-mini", BODY).status_code == 200
    assert _count(ggw) == before + 1


def _count(gw: Gateway) -> float:
    """switchyard_http_requests_total for the Gemini route with status 200."""
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("switchyard_http_requests_total{") and 'status="200"' in line \
                and 'route="model_action"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
