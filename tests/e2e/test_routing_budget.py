"""Plano's `routing.routing_budget` through a real gateway: a session warm on one model stays
on it when routing proposes a switch that would cost more in lost cache than its budget
allows (the answer says so, and the span names the counterfactual), takes the switch with
a larger cap from Plano's per-request header, and a bad header is the client's 400.
Prices come from a models.dev-format catalog file; the `llm` router is the emulator."""
from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from tests.e2e.harness import Gateway, free_port, gateway_config
from tests.e2e.test_routing import v4

ROUTING_MODEL = "llama3.1"
CATALOG = {"openai": {"models": {
    "gpt-4o-mini": {"cost": {"input": 0.15, "output": 0.6, "cache_read": 0.075}},
    "gpt-4o": {"cost": {"input": 0.20, "output": 0.8}}}}}
FIRST = "Write a Python function that parses a CSV file into a list of dictionaries, with " \
        "a header row, quoted fields and embedded newlines handled correctly."
SECOND = "Now a poem about it."


def budget_section(catalog: str, otlp_endpoint: str) -> str:
    return f"""
routing_preferences:
  - {{name: code generation, description: writing code, models: [openai/gpt-4o-mini]}}
  - {{name: creative writing, description: poems and stories, models: [openai/gpt-4o]}}
routing:
  routing_budget: {{max_switch_spend_pct: 20, record_counterfactual: true}}
overrides:
  llm_routing_model: ollama/{ROUTING_MODEL}
model_metrics_sources:
  - {{type: cost, provider: models.dev, url: "{catalog}"}}
tracing:
  random_sampling: 100
  opentracing_grpc_endpoint: {otlp_endpoint}
"""


@pytest.fixture(scope="module")
def bgw(emulator, otlp, tmp_path_factory):
    work = tmp_path_factory.mktemp("budget")
    catalog = work / "catalog.json"
    catalog.write_text(json.dumps(CATALOG))
    port = free_port()
    gw = Gateway(v4(gateway_config(emulator.url, port,
                                   extra=budget_section(str(catalog), otlp.endpoint))),
                 work, port)
    gw.start()
    yield gw
    gw.stop()


def turn(gw: Gateway, emu, session: str, route: str, messages: list[dict],
         cap: str | None = None) -> httpx.Response:
    emu.script(ROUTING_MODEL, {"reply": {"text": json.dumps({"route": [route]})}})
    headers = {"x-model-affinity": session}
    if cap is not None:
        headers["x-plano-max-switch-spend-pct"] = cap
    r = httpx.post(f"{gw.url}/v1/chat/completions", timeout=30, headers=headers,
                   json={"model": "gpt-4o-mini", "messages": messages})
    assert r.status_code == 200, r.text
    return r


def conversation(gw: Gateway, emu, session: str, cap: str | None = None
                 ) -> tuple[httpx.Response, httpx.Response]:
    """A code turn, then a creative one in the same session."""
    history = [{"role": "user", "content": FIRST}]
    first = turn(gw, emu, session, "code generation", history)
    history += [first.json()["choices"][0]["message"], {"role": "user", "content": SECOND}]
    return first, turn(gw, emu, session, "creative writing", history, cap)


def test_a_warm_session_stays_when_the_switch_is_over_budget(bgw, emu, otlp):
    first, second = conversation(bgw, emu, "session-over")
    assert first.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"
    assert second.headers["x-switchyard-route"] == "creative writing"
    assert second.headers["x-switchyard-route-model"] == "openai/gpt-4o-mini"   # kept
    assert second.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"
    assert second.json()["model"] == "gpt-4o-mini"
    metrics = httpx.get(f"{bgw.url}/metrics", timeout=10).text
    assert 'reason="budget_kept",route="creative writing"' in metrics
    rid = second.headers["x-request-id"]
    (span,) = otlp.wait_for(lambda spans: [s for s in spans if s.service == "switchyard-edge"
                                           and s.attributes.get("switchyard.request_id") == rid],
                            20, "the kept request's span")
    assert span.attributes["switchyard.routing.budget"] == "over"
    assert span.attributes["switchyard.route.reason"] == "budget_kept"
    assert span.attributes["plano.switch.counterfactual_route"] == "openai/gpt-4o"


def test_a_larger_cap_from_the_header_takes_the_switch(bgw, emu):
    _, second = conversation(bgw, emu, "session-within", cap="100")
    assert second.headers["x-switchyard-route-model"] == "openai/gpt-4o"
    assert second.headers["x-switchyard-upstream"] == "openai/gpt-4o"


def test_a_bad_cap_header_is_the_clients_400(bgw, emu):
    emu.script(ROUTING_MODEL, {"reply": {"text": '{"route": ["code generation"]}'}},
               {"reply": {"text": '{"route": ["code generation"]}'}})
    headers = {"x-plano-max-switch-spend-pct": "250"}
    oa = openai.OpenAI(api_key="k", base_url=f"{bgw.url}/v1", max_retries=0, timeout=30,
                       default_headers=headers)
    with pytest.raises(openai.BadRequestError) as err:
        oa.chat.completions.create(model="gpt-4o-mini",
                                   messages=[{"role": "user", "content": FIRST}])
    assert "x-plano-max-switch-spend-pct must be a percentage from 0 to 100" in \
        err.value.message
    an = anthropic.Anthropic(api_key="k", base_url=bgw.url, max_retries=0, timeout=30,
                             default_headers=headers)
    with pytest.raises(anthropic.BadRequestError) as aerr:
        an.messages.create(model="gpt-4o-mini", max_tokens=20,
                           messages=[{"role": "user", "content": FIRST}])
    assert aerr.value.body["type"] == "error"
    assert aerr.value.body["error"]["type"] == "invalid_request_error"
