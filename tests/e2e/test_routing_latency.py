"""`prefer: fastest` ranked by Plano's latency source: a real Prometheus (scraping a gauge the
test sets) queried by the router every `refresh_interval`, through a real gateway. The pool
follows the query's answer as it changes; a source that cannot be queried is logged once,
without the URL's password, and the others keep ranking."""
from __future__ import annotations

import httpx
import pytest

from tests.e2e.harness import Gateway, free_port, gateway_config, wait_for
from tests.e2e.test_routing import CODE, v4
from tests.support.prometheus import METRIC, PrometheusServer

GPT, CLAUDE = "openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022"
ROUTING_MODEL = "llama3.1"
PASSWORD = "prom-pw-secret"


def routes(prometheus_url: str, dead_port: int) -> str:
    return f"""
routing_preferences:
  - name: code generation
    description: generating new code snippets, functions, or boilerplate
    models: [{GPT}, {CLAUDE}]
    selection_policy: {{prefer: fastest}}
overrides:
  llm_routing_model: ollama/{ROUTING_MODEL}
model_metrics_sources:
  - type: latency
    provider: prometheus
    url: "http://admin:{PASSWORD}@127.0.0.1:{dead_port}"
    query: {METRIC}
    refresh_interval: 1
  - type: latency
    provider: prometheus
    url: {prometheus_url}
    query: max by (model_name) ({METRIC})
    refresh_interval: 1
"""


@pytest.fixture(scope="module")
def prom():
    with PrometheusServer() as server:
        yield server


@pytest.fixture(scope="module")
def fgw(emulator, prom, tmp_path_factory):
    port = free_port()
    gw = Gateway(v4(gateway_config(emulator.url, port, extra=routes(prom.url, free_port()))),
                 tmp_path_factory.mktemp("fastest"), port)
    gw.start()
    yield gw
    gw.stop()


def ranked(gw: Gateway, emu) -> list[str]:
    """The pool the decision endpoint answers for a code request (no upstream called)."""
    emu.script(ROUTING_MODEL, {"reply": {"text": '{"route": ["code generation"]}'}})
    r = httpx.post(f"{gw.url}/routing/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": CODE}]})
    assert r.status_code == 200, r.text
    assert r.json()["route"] == "code generation"
    return r.json()["models"]


def test_fastest_follows_what_prometheus_says(fgw, prom, emu):
    prom.latency.labels(model_name=GPT).set(2.5)
    prom.latency.labels(model_name=CLAUDE).set(0.4)
    prom.wait_for_value(f'{METRIC}{{model_name="{GPT}"}}', 2.5)
    wait_for(lambda: ranked(fgw, emu) == [CLAUDE, GPT], 20, "claude ranked first")
    prom.latency.labels(model_name=GPT).set(0.1)   # gpt got faster
    wait_for(lambda: ranked(fgw, emu) == [GPT, CLAUDE], 20, "gpt ranked first")


def test_a_source_that_cannot_be_queried_is_logged_once_without_its_password(fgw, prom, emu):
    def warned() -> list[str]:
        return [line for line in fgw.log().splitlines()
                if "latency source http://admin:***@127.0.0.1" in line]
    wait_for(lambda: warned(), 20, "the unreachable source's warning")
    assert [ranked(fgw, emu) for _ in range(2)]   # the router ran refreshes since
    (line,) = warned()
    assert "keeps its last values" in line and PASSWORD not in fgw.log()
