"""Preference-aligned routing through real gateway processes: a Plano config with
routing_preferences (local embedding router, no routing model, no network) from the
OpenAI, Anthropic and google-genai SDKs; the decision endpoint; routes sent per request;
the ranked pool as the fallback chain; route_on_user_only pins; and the `llm` router asking
a routing model (the emulator answering in the routing model's format, then badly)."""
from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.e2e.clients import gemini_sdk
from tests.e2e.harness import Gateway, free_port, gateway_config

ROUTES = """
routing_preferences:
  - name: code generation
    description: generating new code snippets, functions, or boilerplate based on user prompts
    models: [openai/gpt-4o, openai/gpt-4o-mini]
  - name: creative writing
    description: creative content generation, storytelling, and writing assistance
    models: [anthropic/claude-3-5-sonnet-20241022]
  - name: complex reasoning
    description: deep analysis, mathematical problem solving, and logical reasoning
    models: [vllm/qwen2.5]
routing:
  route_on_user_only: true
"""
CODE = "Write a Python function that checks whether a string is a palindrome."
STORY = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def v4(text: str) -> str:
    """Top-level routing_preferences need Plano's config version 0.4."""
    return text.replace("version: v0.3.0", "version: v0.4.0", 1)


@pytest.fixture(scope="module")
def rgw(emulator, tmp_path_factory):
    port = free_port()
    gw = Gateway(v4(gateway_config(emulator.url, port, extra=ROUTES)),
                 tmp_path_factory.mktemp("routing"), port)
    gw.start(timeout=120)   # the router loads its embedding model before it is healthy
    yield gw
    gw.stop()


def upstream_models(emu) -> list[str]:
    return [r["json"].get("model") for r in emu.requests() if r.get("json")]


def test_openai_sdk_is_routed_by_what_it_asks(rgw, emu):
    client = openai.OpenAI(api_key="k", base_url=f"{rgw.url}/v1", max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": CODE}])
    assert raw.headers["x-switchyard-route"] == "code generation"
    assert raw.headers["x-switchyard-route-model"] == "openai/gpt-4o"
    assert raw.headers["x-switchyard-upstream"] == "openai/gpt-4o"
    assert raw.parse().model == "gpt-4o"
    assert upstream_models(emu) == ["gpt-4o"]


def test_anthropic_sdk_is_routed_to_the_creative_pool(rgw, emu):
    client = anthropic.Anthropic(api_key="k", base_url=rgw.url, max_retries=0, timeout=30)
    raw = client.messages.with_raw_response.create(
        model="gpt-4o-mini", max_tokens=64, messages=[{"role": "user", "content": STORY}])
    assert raw.headers["x-switchyard-route"] == "creative writing"
    assert raw.headers["x-switchyard-route-model"] == "anthropic/claude-3-5-sonnet-20241022"
    assert raw.parse().content[0].text.startswith("Echo: Write a short story")
    assert [r["path"] for r in emu.requests()][-1].endswith("/messages")


def test_google_genai_sdk_is_routed_and_small_talk_keeps_its_model(rgw, emu):
    sdk = gemini_sdk(rgw.url)
    r = sdk.models.generate_content(model="gpt-4o-mini", contents=CODE)
    headers = r.sdk_http_response.headers
    assert headers["x-switchyard-route"] == "code generation"
    assert headers["x-switchyard-upstream"] == "openai/gpt-4o"
    hello = sdk.models.generate_content(model="gpt-4o-mini", contents="hi")
    assert hello.sdk_http_response.headers["x-switchyard-route"] == "none"
    assert hello.sdk_http_response.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"


def test_an_alias_is_a_direct_selection_and_is_not_routed(rgw, emu):
    r = httpx.post(f"{rgw.url}/v1/chat/completions", timeout=30, json={
        "model": "fast-model", "messages": [{"role": "user", "content": CODE}]})
    assert r.status_code == 200
    assert "x-switchyard-route" not in r.headers
    assert r.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"


def test_the_ranked_pool_is_the_fallback_chain(rgw, emu):
    emu.script("gpt-4o", *[{"status": 429, "headers": {"retry-after": "0"}}] * 3)
    r = httpx.post(f"{rgw.url}/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": CODE}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-route"] == "code generation"
    assert r.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"   # the second candidate
    assert upstream_models(emu)[-1] == "gpt-4o-mini"


def test_decision_endpoint_answers_without_calling_an_upstream(rgw, emu):
    for path, body in (
            ("/routing/v1/chat/completions",
             {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": CODE}]}),
            ("/routing/v1/messages",
             {"model": "gpt-4o-mini", "max_tokens": 10,
              "messages": [{"role": "user", "content": CODE}]}),
            ("/routing/v1/responses", {"model": "gpt-4o-mini", "input": CODE})):
        r = httpx.post(f"{rgw.url}{path}", json=body, timeout=30,
                       headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                               "00f067aa0ba902b7-01"})
        assert r.status_code == 200, r.text
        assert r.json() == {"models": ["openai/gpt-4o", "openai/gpt-4o-mini"],
                            "route": "code generation",
                            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    none = httpx.post(f"{rgw.url}/routing/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}).json()
    assert none["models"] == ["gpt-4o-mini"] and none["route"] is None
    assert emu.requests() == []


def test_routes_sent_with_a_request_replace_the_config_and_never_go_upstream(rgw, emu):
    prefs = [{"name": "poetry", "description": "writing poems and verse",
              "models": ["vllm/qwen2.5"]}]
    r = httpx.post(f"{rgw.url}/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "routing_preferences": prefs,
        "messages": [{"role": "user", "content": "Compose a haiku about autumn rain."}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-route"] == "poetry"
    sent = emu.requests()[-1]["json"]
    assert "routing_preferences" not in sent and sent["model"] == "qwen2.5"
    bad = httpx.post(f"{rgw.url}/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}],
        "routing_preferences": [{"name": "x", "description": "y", "models": ["nope/x"]}]})
    assert bad.status_code == 400
    assert "nope/x" in bad.json()["error"]["message"]
    off = httpx.post(f"{rgw.url}/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "routing_preferences": [],
        "messages": [{"role": "user", "content": CODE}]})
    assert off.status_code == 200 and "x-switchyard-route" not in off.headers


def test_route_on_user_only_pins_the_loop_to_its_turns_model(rgw, emu):
    tools = [{"type": "function", "function": {"name": "run", "parameters": {
        "type": "object", "properties": {}}}}]
    turn = [{"role": "user", "content": STORY}]
    first = httpx.post(f"{rgw.url}/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "tools": tools, "messages": turn})
    assert first.headers["x-switchyard-route"] == "creative writing"
    loop = turn + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "def f(): return 1  # some code"}]
    step = httpx.post(f"{rgw.url}/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "tools": tools, "messages": loop})
    assert step.status_code == 200, step.text
    assert step.headers["x-switchyard-route"] == "creative writing"
    assert step.headers["x-switchyard-upstream"] == first.headers["x-switchyard-upstream"]
    metrics = httpx.get(f"{rgw.url}/metrics", timeout=10).text
    assert 'switchyard_routing_skips_total{reason="not_user_turn"}' in metrics
    assert 'switchyard_routing_decisions_total{reason="matched",route="creative writing"' \
        in metrics


# ---- the llm router: a routing model named by overrides.llm_routing_model -----------------

LLM_ROUTES = ROUTES.replace("routing:\n  route_on_user_only: true\n", "") + """
overrides:
  llm_routing_model: ollama/llama3.1
"""


@pytest.fixture(scope="module")
def lgw(emulator, otlp, tmp_path_factory):
    port = free_port()
    traced = LLM_ROUTES + f"""
tracing:
  random_sampling: 100
  opentracing_grpc_endpoint: {otlp.endpoint}
"""
    gw = Gateway(v4(gateway_config(emulator.url, port, extra=traced)),
                 tmp_path_factory.mktemp("llm-routing"), port)
    gw.start()
    yield gw
    gw.stop()


def test_llm_router_asks_the_routing_model_in_plano_format(lgw, emu, otlp):
    emu.script("llama3.1", {"reply": {"text": '{"route": ["creative writing"]}'}})
    r = httpx.post(f"{lgw.url}/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": CODE}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-route"] == "creative writing"   # the model's pick, not ours
    asked = [q for q in emu.requests() if q["json"].get("model") == "llama3.1"]
    (prompt,) = [m["content"] for m in asked[0]["json"]["messages"]]
    assert '{"name": "code generation", "description": "generating new code snippets' in prompt
    assert '"content": "Write a Python function' in prompt
    assert '{{"route": ["route_name_1", "route_name_2", "..."]}}' in prompt
    assert emu.requests()[-1]["path"].endswith("/messages")   # claude served it
    rid = r.headers["x-request-id"]

    def traced(spans):
        edge = [x for x in spans if x.service == "switchyard-edge"
                and x.attributes.get("switchyard.request_id") == rid]
        asked = [x for x in spans if x.service == "switchyard-providers"
                 and x.name.startswith("chat llama3.1")]
        return (edge, asked) if edge and asked else None
    (edge,), asked = otlp.wait_for(traced, 20, "the routed request's spans")
    assert edge.attributes["switchyard.route.name"] == "creative writing"
    assert edge.attributes["switchyard.route.router"] == "llm"
    assert edge.attributes["switchyard.route.reason"] == "matched"
    assert any(x.trace_id == edge.trace_id for x in asked)   # the routing call: same trace


def test_llm_router_bad_answer_keeps_the_requests_model(lgw, emu):
    emu.script("llama3.1", {"reply": {"text": "I think the user wants code, probably."}})
    r = httpx.post(f"{lgw.url}/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": CODE}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-route"] == "none"
    assert r.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"
    emu.script("llama3.1", *[{"status": 500}] * 3)
    r = httpx.post(f"{lgw.url}/routing/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": CODE}]})
    assert r.json()["route"] is None and r.json()["models"] == ["gpt-4o-mini"]
