"""Traces, usage and cost end to end: a real `switchyard up` exporting over OTLP/gRPC to an
in-test receiver, with a local cost catalog and the JSON request log on."""
import json
import uuid

import httpx
import orjson
import pytest

from switchyard.common import service_metrics
from tests.e2e.harness import OPENAI_KEY, Gateway, free_port, gateway_config, wait_for
from tests.support.metrics import metric_value
from tests.support.otlp import has, one, trace_of

SERVER, CLIENT = 2, 3   # OTLP span kinds
CATALOG = {"openai": {"models": {"gpt-4o-mini": {"cost": {"input": 0.15, "output": 0.6,
                                                          "cache_read": 0.075}}}},
           "anthropic": {"models": {"claude-3-5-sonnet-20241022": {
               "cost": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}}}}
USER = [{"role": "user", "content": "hello there"}]
GRPC_SERVICES = ("router", "providers", "state")


@pytest.fixture(scope="module")
def tgw(emulator, otlp, tmp_path_factory):
    work = tmp_path_factory.mktemp("observability")
    catalog = work / "api.json"
    catalog.write_bytes(orjson.dumps(CATALOG))
    port = free_port()
    providers = f"""
  - model: openai/priced-model
    access_key: {OPENAI_KEY}
    base_url: {emulator.url}
    pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
"""
    aliases = """
  resilient-model:
    target: claude-3-5-sonnet-20241022
    fallbacks: [gpt-4o-mini]
"""
    extra = f"""
tracing:
  random_sampling: 100
  opentracing_grpc_endpoint: {otlp.endpoint}
  span_attributes:
    header_prefixes: [x-team-]
    static: {{environment: e2e}}
model_metrics_sources:
  - {{type: cost, provider: models.dev, url: {catalog}, refresh_interval: 3600}}
logging: {{requests: json}}
"""
    text = gateway_config(emulator.url, port, state="state_storage: {type: memory}",
                          providers=providers, aliases=aliases, extra=extra)
    # Each gRPC service serves its own /metrics on these (SWITCHYARD_<SERVICE>_METRICS).
    addresses = {s: f"127.0.0.1:{free_port()}" for s in GRPC_SERVICES}
    gw = Gateway(text, work, port,
                 env={service_metrics.env_name(s): a for s, a in addresses.items()}).start()
    gw.service_metrics = {s: f"http://{a}" for s, a in addresses.items()}
    yield gw
    gw.stop()


def test_chat_request_is_one_trace_across_edge_and_providers(tgw, emu, otlp):
    r = httpx.post(f"{tgw.url}/v1/chat/completions", timeout=30,
                   headers={"authorization": "Bearer client-key", "x-team-name": "blue"},
                   json={"model": "gpt-4o-mini", "messages": USER, "max_tokens": 50})
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    spans = trace_of(otlp, rid, has(("switchyard-edge", "chat"),
                                    ("switchyard-providers", "execute"),
                                    ("switchyard-providers", "chat"),
                                    ("switchyard-providers", "POST")))
    assert len({s.trace_id for s in spans}) == 1
    edge = one(spans, "switchyard-edge", "chat")
    execute = one(spans, "switchyard-providers", "execute")
    attempt = one(spans, "switchyard-providers", "chat")
    http = one(spans, "switchyard-providers", "POST")
    # Parent links: edge root → providers execution → attempt → HTTP call.
    assert edge.parent_id == "" and edge.kind == SERVER
    assert execute.parent_id == edge.span_id
    assert attempt.parent_id == execute.span_id and attempt.kind == CLIENT
    assert http.parent_id == attempt.span_id
    a = edge.attributes
    assert edge.name == "chat gpt-4o-mini"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"]
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["switchyard.attempts"] == 1
    assert a["switchyard.tenant"] == "default"
    assert a["switchyard.route"] == "openai_chat→openai"
    assert a["name"] == "blue" and a["environment"] == "e2e"   # header prefix, static
    assert a["http.response.status_code"] == 200
    assert a["switchyard.cost_usd"] > 0                     # priced from the catalog
    assert "gen_ai.input.messages" not in a                 # no content unless asked
    assert not any("hello there" in str(v) for s in spans for v in s.attributes.values())
    assert attempt.attributes["switchyard.attempt"] == 1
    assert http.attributes["http.response.status_code"] == 200
    # No key anywhere on any span.
    for s in spans:
        for v in s.attributes.values():
            assert OPENAI_KEY not in str(v) and "client-key" not in str(v)


def test_streamed_messages_continue_the_clients_traceparent(tgw, emu, otlp):
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    emu.script("claude-3-5-sonnet-20241022", {"reply": {"text": "streamed answer", "usage": {
        "input_tokens": 11, "output_tokens": 7, "cache_read_input_tokens": 3}}})
    with httpx.stream("POST", f"{tgw.url}/v1/messages", timeout=30,
                      headers={"x-api-key": "k", "anthropic-version": "2023-06-01",
                               "traceparent": f"00-{trace_id}-{parent}-01"},
                      json={"model": "claude-3-5-sonnet-20241022", "max_tokens": 64,
                            "stream": True, "messages": USER}) as r:
        assert r.status_code == 200
        body = b"".join(r.iter_bytes())
        rid = r.headers["x-request-id"]
    assert b"message_stop" in body
    spans = trace_of(otlp, rid, has(("switchyard-edge", "chat"),
                                    ("switchyard-providers", "execute")))
    edge = one(spans, "switchyard-edge", "chat")
    assert edge.trace_id == trace_id and edge.parent_id == parent
    a = edge.attributes
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["gen_ai.usage.output_tokens"] == 7
    assert a["gen_ai.usage.input_tokens"] == 14            # cache reads included
    assert a["gen_ai.usage.cache_read.input_tokens"] == 3
    assert a["switchyard.route"] == "anthropic_messages→anthropic"
    assert one(spans, "switchyard-providers", "execute").parent_id == edge.span_id


def test_a_clients_unsampled_traceparent_is_kept_and_nothing_is_recorded(tgw, emu, otlp):
    """Flags 00: the client's decision holds (ParentBased), even at 100 %: no service
    records a span of that trace, the answer is whole and its request log line names the client's trace.
    A sampled request sent after it shows the export is running (spans ship in order)."""
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    r = httpx.post(f"{tgw.url}/v1/chat/completions", timeout=30,
                   headers={"authorization": "Bearer k",
                            "traceparent": f"00-{trace_id}-{parent}-00"},
                   json={"model": "gpt-4o-mini", "messages": USER})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    after = httpx.post(f"{tgw.url}/v1/chat/completions", timeout=30,
                       headers={"authorization": "Bearer k"},
                       json={"model": "gpt-4o-mini", "messages": USER})
    trace_of(otlp, after.headers["x-request-id"], has(("switchyard-edge", "chat"),
                                                      ("switchyard-providers", "execute")))
    assert [s for s in otlp.spans() if s.trace_id == trace_id] == []
    rid = r.headers["x-request-id"]

    def logged():
        return [json.loads(line) for line in tgw.log().splitlines()
                if line.startswith("{") and f'"request_id":"{rid}"' in line]
    wait_for(logged, 10, "the request's log line")
    assert logged()[0]["status"] == 200 and logged()[0]["trace_id"] == trace_id


def test_dropped_params_and_the_route_pair_are_on_the_edge_span(tgw, emu, otlp):
    """Thinking asked of a model without reasoning is dropped (the header says so); the
    span names the same parameters and the client format → upstream wire pair."""
    r = httpx.post(f"{tgw.url}/v1/messages", timeout=30,
                   headers={"anthropic-version": "2023-06-01", "x-api-key": "k"},
                   json={"model": "gpt-4o-mini", "max_tokens": 16000, "messages": USER,
                         "thinking": {"type": "enabled", "budget_tokens": 8192}})
    assert r.status_code == 200, r.text
    dropped = r.headers["x-switchyard-dropped-params"].split(",")
    assert "reasoning_effort" in dropped
    spans = trace_of(otlp, r.headers["x-request-id"], has(("switchyard-edge", "chat")))
    edge = one(spans, "switchyard-edge", "chat")
    assert edge.attributes["switchyard.dropped_params"] == dropped
    assert edge.attributes["switchyard.route"] == "anthropic_messages→openai"


def test_responses_trace_has_state_spans(tgw, emu, otlp):
    first = httpx.post(f"{tgw.url}/v1/responses", timeout=30,
                       json={"model": "gpt-4o-mini", "input": "remember 42"})
    assert first.status_code == 200
    second = httpx.post(f"{tgw.url}/v1/responses", timeout=30,
                        json={"model": "gpt-4o-mini", "input": "what number?",
                              "previous_response_id": first.json()["id"]})
    assert second.status_code == 200
    spans = trace_of(otlp, second.headers["x-request-id"],
                     has(("switchyard-state", "switchyard.v1.State/GetHistory"),
                         ("switchyard-state", "switchyard.v1.State/Put"),
                         ("switchyard-providers", "execute")))
    edge = one(spans, "switchyard-edge", "chat")
    for method in ("GetHistory", "Put"):
        client = one(spans, "switchyard-edge", f"state {method}")
        server = one(spans, "switchyard-state", f"switchyard.v1.State/{method}")
        assert client.parent_id == edge.span_id and client.kind == CLIENT
        assert server.parent_id == client.span_id and server.kind == SERVER
        assert server.attributes["rpc.grpc.status_code"] == 0


def test_fallback_attempts_are_siblings(tgw, emu, otlp):
    emu.script("claude-3-5-sonnet-20241022", *[{"status": 500}] * 3)
    r = httpx.post(f"{tgw.url}/v1/chat/completions", timeout=30,
                   json={"model": "resilient-model", "messages": USER})
    assert r.status_code == 200
    assert r.headers["x-switchyard-attempts"] == "4"    # 1 + 2 retries, then the fallback
    spans = trace_of(otlp, r.headers["x-request-id"], lambda ss: sum(
        1 for s in ss if s.service == "switchyard-providers" and s.name.startswith("chat ")) == 4)
    execute = one(spans, "switchyard-providers", "execute")
    attempts = sorted((s for s in spans if s.service == "switchyard-providers"
                       and s.name.startswith("chat ")),
                      key=lambda s: s.attributes["switchyard.attempt"])
    assert {s.parent_id for s in attempts} == {execute.span_id}   # siblings
    assert [s.name for s in attempts] == ["chat claude-3-5-sonnet-20241022"] * 3 + \
        ["chat gpt-4o-mini"]
    assert [s.attributes["switchyard.outcome"] for s in attempts] == ["500"] * 3 + ["ok"]
    assert [s.status_code for s in attempts] == [2, 2, 2, 0]       # ERROR ×3, then unset
    assert execute.attributes["switchyard.fallback"] is True
    assert execute.attributes["switchyard.attempts"] == 4


def test_token_and_cost_counters_match_the_upstream_usage(tgw, emu):
    usage = {"input_tokens": 1000, "output_tokens": 500, "cache_read_input_tokens": 200,
             "reasoning_tokens": 40}
    labels = {"provider": "openai", "model": "gpt-4o-mini", "tenant": "default"}
    before = {t: metric_value(tgw.url, "switchyard_tokens_total", type=t, **labels)
              for t in ("input", "output", "cache_read", "reasoning")}
    cost_before = metric_value(tgw.url, "switchyard_cost_usd_total", **labels)
    emu.script("gpt-4o-mini", {"reply": {"text": "counted", "usage": usage}})
    r = httpx.post(f"{tgw.url}/v1/chat/completions", timeout=30,
                   json={"model": "gpt-4o-mini", "messages": USER})
    assert r.status_code == 200 and r.json()["model"] == "gpt-4o-mini"
    after = {t: metric_value(tgw.url, "switchyard_tokens_total", type=t, **labels)
             for t in before}
    assert {t: after[t] - before[t] for t in before} == {
        "input": 1000, "output": 500, "cache_read": 200, "reasoning": 40}
    cost = metric_value(tgw.url, "switchyard_cost_usd_total", **labels) - cost_before
    assert cost == pytest.approx((1000 * 0.15 + 500 * 0.6 + 200 * 0.075) / 1e6)


def test_cache_write_tokens_are_counted_and_priced(tgw, emu):
    model = "claude-3-5-sonnet-20241022"
    usage = {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 400,
             "cache_creation_input_tokens": 800}
    labels = {"provider": "anthropic", "model": model, "tenant": "default"}
    kinds = ("input", "output", "cache_read", "cache_write")
    before = {k: metric_value(tgw.url, "switchyard_tokens_total", type=k, **labels)
              for k in kinds}
    cost_before = metric_value(tgw.url, "switchyard_cost_usd_total", **labels)
    emu.script(model, {"reply": {"text": "cached", "usage": usage}})
    r = httpx.post(f"{tgw.url}/v1/messages", timeout=30, json={
        "model": model, "max_tokens": 64, "messages": USER})
    assert r.status_code == 200 and r.json()["usage"]["cache_creation_input_tokens"] == 800
    after = {k: metric_value(tgw.url, "switchyard_tokens_total", type=k, **labels)
             for k in kinds}
    assert {k: after[k] - before[k] for k in kinds} == {
        "input": 100, "output": 50, "cache_read": 400, "cache_write": 800}
    cost = metric_value(tgw.url, "switchyard_cost_usd_total", **labels) - cost_before
    assert cost == pytest.approx((100 * 3 + 50 * 15 + 400 * 0.3 + 800 * 3.75) / 1e6)


def test_entry_pricing_and_streamed_ttft_histogram(tgw, emu):
    labels = {"provider": "openai", "model": "priced-model", "tenant": "default"}
    cost_before = metric_value(tgw.url, "switchyard_cost_usd_total", **labels)
    ttft_before = metric_value(tgw.url, "switchyard_time_to_first_token_seconds_count",
                               format="openai_chat")
    emu.script("priced-model", {"reply": {"text": "priced", "usage": {
        "input_tokens": 3000, "output_tokens": 1000}}})
    with httpx.stream("POST", f"{tgw.url}/v1/chat/completions", timeout=30,
                      json={"model": "priced-model", "messages": USER, "stream": True}) as r:
        assert r.status_code == 200
        assert b"[DONE]" in b"".join(r.iter_bytes())
    cost = metric_value(tgw.url, "switchyard_cost_usd_total", **labels) - cost_before
    assert cost == pytest.approx((3000 * 1.0 + 1000 * 2.0) / 1e6)
    assert metric_value(tgw.url, "switchyard_time_to_first_token_seconds_count",
                        format="openai_chat") == ttft_before + 1


STREAMS = {   # every streaming route: (client format label, path, body)
    "openai_chat": ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": USER,
                                              "stream": True}),
    "anthropic_messages": ("/v1/messages", {"model": "gpt-4o-mini", "messages": USER,
                                            "max_tokens": 32, "stream": True}),
    "openai_responses": ("/v1/responses", {"model": "gpt-4o-mini", "input": "hello there",
                                           "stream": True}),
    "gemini": ("/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse",
               {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}),
}


@pytest.mark.parametrize("fmt", sorted(STREAMS))
def test_every_streaming_route_observes_time_to_first_token(tgw, emu, fmt):
    path, body = STREAMS[fmt]
    labels = {"format": fmt, "provider": "openai"}
    before = metric_value(tgw.url, "switchyard_time_to_first_token_seconds_count", **labels)
    with httpx.stream("POST", f"{tgw.url}{path}", json=body, timeout=30,
                      headers={"x-goog-api-key": "k"}) as r:
        assert r.status_code == 200
        assert b"data: " in b"".join(r.iter_bytes())
    after = metric_value(tgw.url, "switchyard_time_to_first_token_seconds_count", **labels)
    assert after == before + 1


def test_request_log_is_one_json_line_without_content_or_keys(tgw, emu):
    r = httpx.post(f"{tgw.url}/v1/chat/completions", timeout=30,
                   headers={"authorization": "Bearer secret-client-key"},
                   json={"model": "gpt-4o-mini", "messages": [
                       {"role": "user", "content": "a very private sentence"}]})
    assert r.status_code == 200
    rid = r.headers["x-request-id"]

    def line():
        for text in tgw.log().splitlines():
            if text.startswith("{") and f'"request_id":"{rid}"' in text:
                return json.loads(text)
        return None
    wait_for(lambda: line() is not None, 10, "the request's log line")
    entry = line()
    assert entry["status"] == 200 and entry["model"] == "gpt-4o-mini"
    assert entry["tenant"] == "default" and entry["upstream"] == "openai/gpt-4o-mini"
    assert len(entry["trace_id"]) == 32
    assert entry["input_tokens"] > 0 and entry["output_tokens"] > 0
    assert entry["latency_ms"] >= entry["overhead_ms"] >= 0
    log = tgw.log()
    assert "a very private sentence" not in log
    assert "secret-client-key" not in log and OPENAI_KEY not in log


def test_grpc_server_metrics_and_process_metrics_on_edge(tgw):
    text = httpx.get(f"{tgw.url}/metrics", timeout=10).text
    assert "process_cpu_seconds_total" in text


def test_every_grpc_service_serves_process_and_grpc_server_metrics(tgw, emu):
    """One call each service answers: state Put (a stored response), router Resolve (a name
    outside the route table), providers CountTokens."""
    def handled(service, method, code):
        return metric_value(tgw.service_metrics[service], "switchyard_grpc_server_handled_total",
                            method=method, code=code)
    calls = {("state", "/switchyard.v1.State/Put", "OK"),
             ("router", "/switchyard.v1.Router/Resolve", "NOT_FOUND"),
             ("providers", "/switchyard.v1.Providers/CountTokens", "OK")}
    before = {c: handled(*c) for c in calls}
    assert httpx.post(f"{tgw.url}/v1/responses", timeout=30, json={
        "model": "gpt-4o-mini", "input": "store me"}).status_code == 200
    assert httpx.post(f"{tgw.url}/v1/chat/completions", timeout=30, json={
        "model": "no-such-model", "messages": USER}).status_code == 404
    assert httpx.post(f"{tgw.url}/v1/messages/count_tokens", timeout=30, json={
        "model": "claude-3-5-sonnet-20241022", "messages": USER}).status_code == 200
    assert {c: handled(*c) - before[c] for c in calls} == {c: 1 for c in calls}
    for service, url in tgw.service_metrics.items():
        text = httpx.get(f"{url}/metrics", timeout=10).text
        assert "process_cpu_seconds_total" in text, service
        assert "process_resident_memory_bytes" in text, service
        assert "switchyard_grpc_server_handling_seconds_bucket" in text, service
