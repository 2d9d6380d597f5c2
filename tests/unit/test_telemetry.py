"""Config sections, trace context, prices and the tracing switch of the observability code."""
import asyncio

import pytest

from switchyard.common.config import ConfigError, parse_config
from switchyard.common.config.model import CostSource, Price, Tracing
from switchyard.common.proto import chat_pb2
from switchyard.common.telemetry import cost, propagation, tracer

BASE = {"version": "v0.3.0",
        "model_providers": [{"model": "openai/gpt-4o-mini", "access_key": "sk-x"}]}


def config(**sections):
    return parse_config({**BASE, **sections})


def test_tracing_section_is_parsed():
    c = config(tracing={"random_sampling": 25, "opentracing_grpc_endpoint": "http://otel:4317",
                        "trace_arch_internal": True,
                        "span_attributes": {"header_prefixes": ["X-Team-"],
                                            "static": {"env": "prod"}}})
    t = c.tracing
    assert (t.random_sampling, t.endpoint, t.trace_arch_internal) == (25.0, "http://otel:4317",
                                                                      True)
    assert t.span_attributes.header_prefixes == ("x-team-",)
    assert t.span_attributes.static == (("env", "prod"),)
    assert not t.record_content


@pytest.mark.parametrize("section, wording", [
    ({"random_sampling": 150}, "random_sampling must be a percentage"),
    ({"opentracing_grpc_endpoint": "otel:4317"}, "must be a URL"),
    ({"sampling": 10}, "unknown key 'sampling'"),
    ({"span_attributes": {"header_prefixes": "x-"}}, "header_prefixes must be a list"),
])
def test_tracing_errors_are_reported(section, wording):
    with pytest.raises(ConfigError) as info:
        config(tracing=section)
    assert wording in str(info.value)


def test_cost_sources_logging_and_pricing():
    data = {**BASE, "model_metrics_sources": [
        {"type": "cost", "provider": "models.dev", "url": "/tmp/api.json",
         "refresh_interval": 60, "model_aliases": {"openai/x": "openai/gpt-4o-mini"}},
        {"type": "latency", "provider": "prometheus", "url": "http://p", "query": "q"}],
        "logging": {"requests": "json"}}
    data["model_providers"] = [{**BASE["model_providers"][0],
                                "pricing": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}]
    c = parse_config(data)
    assert c.cost_sources == (CostSource("models.dev", "/tmp/api.json", 60.0,
                                         (("openai/x", "openai/gpt-4o-mini"),)),)
    assert c.request_log is True
    assert c.providers[0].pricing == Price(0.15, 0.6)


@pytest.mark.parametrize("sections, wording", [
    ({"model_metrics_sources": [{"type": "cost", "provider": "nope"}]}, "provider must be one of"),
    ({"model_metrics_sources": [{"type": "cost", "provider": "models.dev",
                                 "refresh_interval": 0}]}, "refresh_interval"),
    ({"logging": {"requests": "xml"}}, "requests must be json or off"),
])
def test_observability_errors_are_reported(sections, wording):
    with pytest.raises(ConfigError) as info:
        config(**sections)
    assert wording in str(info.value)


def test_pricing_needs_input_and_output():
    data = {**BASE, "model_providers": [{**BASE["model_providers"][0],
                                         "pricing": {"input_per_mtok": 1}}]}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert "pricing needs input_per_mtok and output_per_mtok" in str(info.value)


def test_traceparent_round_trip_and_malformed_values():
    ctx = propagation.parse_traceparent("00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")
    assert ctx is not None and ctx.is_remote and ctx.trace_flags.sampled
    assert propagation.format_traceparent(ctx) == "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    for bad in ("", "junk", "00-" + "0" * 32 + "-" + "cd" * 8 + "-01",
                "ff-" + "ab" * 16 + "-" + "cd" * 8 + "-01", "00-xyz-abc-01"):
        assert propagation.context_from(bad) is None


def test_models_dev_and_digitalocean_catalogs():
    md = cost.parse_models_dev({"openai": {"models": {"gpt-4o": {"cost": {
        "input": 2.5, "output": 10, "cache_read": 1.25}}, "free": {}}}})
    assert md == {"openai/gpt-4o": Price(2.5, 10.0, 1.25, None)}
    do = cost.parse_digitalocean({"data": [
        {"model_id": "llama3.3-70b-instruct", "creator": "Meta",
         "pricing": {"input_price_per_million": 0.65, "output_price_per_million": 0.65}},
        {"model_id": "no-price"}]})
    assert do == {"meta/llama3.3-70b-instruct": Price(0.65, 0.65)}
    with pytest.raises(ValueError):
        cost.parse_models_dev([1, 2])


def test_cost_of_a_turn_prices_cache_tokens_with_fallback_to_input():
    usage = chat_pb2.Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=500,
                           cache_creation_tokens=200)
    assert cost.cost_usd(Price(3, 15, 0.3, 3.75), usage) == pytest.approx(
        (3000 + 1500 + 150 + 750) / 1e6)
    assert cost.cost_usd(Price(1, 2), usage) == pytest.approx((1000 + 200 + 500 + 200) / 1e6)


async def test_unreadable_catalog_leaves_cost_unknown_and_logs_once(tmp_path, caplog):
    entry = parse_config(BASE).providers[0]
    prices = cost.Prices([CostSource("models.dev", str(tmp_path / "missing.json"))])
    assert not await prices.refresh(0)
    assert not await prices.refresh(0)
    assert prices.price(entry, "gpt-4o-mini") is None
    assert sum("could not be loaded" in r.getMessage() for r in caplog.records) == 1
    (tmp_path / "missing.json").write_text(
        '{"openai": {"models": {"gpt-4o-mini": {"cost": {"input": 1, "output": 2}}}}}')
    assert await asyncio.wait_for(prices.refresh(0), 5)
    assert prices.price(entry, "gpt-4o-mini") == Price(1.0, 2.0)


def test_tracing_is_off_without_sampling_or_endpoint(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not tracer.wanted(Tracing())
    assert not tracer.wanted(Tracing(random_sampling=100))
    assert not tracer.wanted(Tracing(random_sampling=0, endpoint="http://x:4317"))
    assert tracer.wanted(Tracing(random_sampling=100, endpoint="http://x:4317"))
    assert tracer.wanted(Tracing(random_sampling=5), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://y"})
    assert not tracer.wanted(Tracing(random_sampling=5, endpoint="http://x"),
                             {"OTEL_SDK_DISABLED": "true"})
    assert tracer.setup(Tracing(), "edge") is False and tracer.ENABLED is False
