"""Config sections, trace context, prices, the tracing switch, and the span recorder and its
OTLP encoding (checked against the SDK's own encoder) of the observability code."""
import asyncio
import enum
import marshal
import random

import pytest
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from switchyard.common.config import ConfigError, parse_config
from switchyard.common.config.model import CostSource, Price, Tracing
from switchyard.common.proto import chat_pb2
from switchyard.common.telemetry import cost, exporter, propagation, shipper, spans, tracer
from tests.support.fresh_python import run_fresh

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


class FakeShipper:
    def __init__(self, settings, max_queue):
        self.settings, self.records, self.stopped = settings, [], False

    def add(self, record):
        self.records.append(record)

    def shutdown(self, timeout_s=10.0):
        self.stopped = True


def test_a_reload_switches_tracing_in_place(monkeypatch):
    """On, a new ratio (same exporter), a new endpoint (a new one, the old handed back to be
    shut down), off (the last one handed back, no tracer left), on again."""
    monkeypatch.setattr(shipper, "Shipper", FakeShipper)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    try:
        assert tracer.reconfigure(Tracing(), "edge") is None and not tracer.ENABLED
        assert tracer.reconfigure(Tracing(random_sampling=100, endpoint="http://a:4317"),
                                  "edge") is None
        first = tracer._shipper
        assert tracer.ENABLED and first.settings["endpoint"] == "http://a:4317"
        tracer.TRACER.start_span("chat").end()
        assert len(first.records) == 1
        assert tracer.reconfigure(Tracing(random_sampling=0.0001, endpoint="http://a:4317",
                                          trace_arch_internal=True), "edge") is None
        assert tracer._shipper is first and tracer.INTERNAL
        tracer.TRACER.start_span("chat").end()   # a root is kept 1 in a million times
        assert len(first.records) == 1
        moved = tracer.reconfigure(Tracing(random_sampling=100, endpoint="http://b:4317"),
                                   "edge")
        assert moved is first and tracer._shipper.settings["endpoint"] == "http://b:4317"
        second = tracer._shipper
        assert tracer.reconfigure(Tracing(random_sampling=0, endpoint="http://b:4317"),
                                  "edge") is second
        assert not tracer.ENABLED and not tracer.TRACER.start_span("x").is_recording()
        assert tracer.reconfigure(Tracing(), "edge") is None
        assert tracer.reconfigure(Tracing(random_sampling=50, endpoint="http://b:4317"),
                                  "edge") is None and tracer.ENABLED
    finally:
        tracer.shutdown()
    assert not tracer.ENABLED


# ---- the span recorder, its records and their OTLP encoding ------------------------------

def recording_tracer(ratio=1.0):
    records = []
    return spans.SpanTracer(records.append, ratio), records


def test_spans_keep_parents_kinds_and_the_sdk_status_rules():
    t, records = recording_tracer()
    root = t.start_span("chat", kind=SpanKind.SERVER, attributes={"a": 1})
    child = t.start_span("execute", context=trace.set_span_in_context(root),
                         kind=SpanKind.CLIENT)
    child.set_status(Status(StatusCode.ERROR, "boom"))
    child.set_status(StatusCode.UNSET)            # UNSET never overwrites
    child.end()
    child.set_attribute("late", 1)                # after end: ignored
    child.update_name("renamed")
    child.end()                                   # a second end records nothing
    root.set_status(Status(StatusCode.OK, "ignored description"))
    root.set_status(Status(StatusCode.ERROR, "after OK"))   # OK is final
    root.update_name("chat gpt-4o-mini")
    root.end()
    (c, r) = records
    assert c[0] == "execute" and c[1] == r[1] and c[4] == r[2] and c[5] is False
    assert (c[6], c[10], c[11], c[9]) == (SpanKind.CLIENT.value, 2, "boom", {})
    assert r[0] == "chat gpt-4o-mini" and r[4] == 0 and r[6] == SpanKind.SERVER.value
    assert (r[10], r[11], r[9]) == (1, None, {"a": 1})
    assert r[3] == 0x03 and r[7] <= r[8]          # sampled, random trace id; start ≤ end


def test_sampling_is_parent_based_then_by_trace_id_ratio():
    t, records = recording_tracer(ratio=0.0)
    root = t.start_span("chat")
    assert not root.is_recording() and not root.get_span_context().trace_flags.sampled
    child = t.start_span("execute", context=trace.set_span_in_context(root))
    assert not child.is_recording()
    assert child.get_span_context().trace_id == root.get_span_context().trace_id
    # A sampled remote parent is followed even at 0 %, an unsampled one even at 100 %.
    trace_id, parent = "ab" * 16, "cd" * 8
    followed = t.start_span("chat", context=propagation.context_from(
        f"00-{trace_id}-{parent}-01"))
    followed.end()
    assert records[-1][1] == int(trace_id, 16) and records[-1][4] == int(parent, 16)
    assert records[-1][5] is True and records[-1][3] == 0x01
    t100, kept = recording_tracer(ratio=1.0)
    t100.start_span("chat", context=propagation.context_from(
        f"00-{trace_id}-{parent}-00")).end()
    assert kept == []
    random.seed(7)
    half, sampled = recording_tracer(ratio=0.5)
    for _ in range(2000):
        half.start_span("chat").end()
    assert 850 < len(sampled) < 1150


def test_current_span_exceptions_and_traceparent():
    t, records = recording_tracer()
    with pytest.raises(RuntimeError):
        with t.start_as_current_span("state Get", kind=SpanKind.CLIENT) as span:
            assert propagation.current_traceparent() == propagation.format_traceparent(
                span.get_span_context())
            raise RuntimeError("unreachable store")
    (name, *_, status, description, events) = records[0]
    assert name == "state Get" and status == 2
    assert description == "RuntimeError: unreachable store"
    assert events[0][0] == "exception" and events[0][2]["exception.type"] == "RuntimeError"
    with pytest.raises(ValueError):
        with t.start_as_current_span("filter f", record_exception=False,
                                     set_status_on_exception=False):
            raise ValueError("refused")
    assert records[1][10] == 0 and records[1][12] is None
    assert propagation.current_traceparent() == ""


def sdk_request(records, resource, scope, limits):
    """What the SDK's own encoder makes of the same spans: the reference for ours."""
    def readable(r):
        (name, tid, sid, flags, pid, remote, kind, start, end, attrs, code, desc, events) = r
        return ReadableSpan(
            name=name, context=SpanContext(tid, sid, False, TraceFlags(flags)),
            parent=SpanContext(tid, pid, remote) if pid else None, resource=resource,
            attributes=BoundedAttributes(limits.max_span_attributes, attrs, True,
                                         limits.max_span_attribute_length),
            events=tuple(Event(n, BoundedAttributes(limits.max_event_attributes, a, True,
                                                    limits.max_attribute_length), ts)
                         for n, ts, a in (events or ())),
            kind=SpanKind(kind), status=Status(StatusCode(code), desc), start_time=start,
            end_time=end, instrumentation_scope=InstrumentationScope(scope))
    return encode_spans([readable(r) for r in records])


def sample_records():
    t, records = recording_tracer()
    root = t.start_span("chat", kind=SpanKind.SERVER, attributes={
        "http.request.method": "POST", "gen_ai.request.stream": False, "switchyard.attempts": 1,
        "switchyard.overhead_ms": 1.25, "negative": -5, "big": 2 ** 62, "empty": "",
        "text": "naïve ✓ text", "finish": ["stop", "length"], "flags": [True, False],
        "nums": (1, 2), "raw": b"\x00\x01"})
    ctx = trace.set_span_in_context(root)
    with pytest.raises(KeyError):
        with t.start_as_current_span("state Put", context=ctx, kind=SpanKind.CLIENT):
            raise KeyError("k")
    attempt = t.start_span("chat gpt-4o-mini", context=ctx, kind=SpanKind.CLIENT)
    attempt.set_status(Status(StatusCode.ERROR, "rate_limit_error"))
    attempt.set_attribute("switchyard.outcome", "429")
    attempt.end()
    remote = t.start_span("execute", context=propagation.context_from(
        "00-" + "12" * 16 + "-" + "34" * 8 + "-01"), kind=SpanKind.SERVER)
    remote.set_status(StatusCode.OK)
    remote.end()
    root.end()
    return marshal.loads(marshal.dumps(records))   # what the exporter process reads


@pytest.mark.parametrize("env", [{}, {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "3",
                                      "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4",
                                      "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "2"}])
def test_hand_encoding_is_the_sdks_message(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    records = sample_records()
    encoder = exporter.encoder_for("edge")
    ours = ExportTraceServiceRequest.FromString(
        encoder.request([encoder.span(r) for r in records]))
    resource = Resource.create({"service.name": "switchyard-edge",
                                "service.namespace": "switchyard"})
    reference = sdk_request(records, resource, exporter.SCOPE, SpanLimits())
    # The resource's random service.instance.id differs between the two Resource.create calls.
    for req in (ours, reference):
        attrs = req.resource_spans[0].resource.attributes
        keep = [kv for kv in attrs if kv.key != "service.instance.id"]
        del attrs[:]
        attrs.extend(keep)
    assert ours == reference
    # The second pass comes from the (key, value) cache and must be the same bytes.
    assert [encoder.span(r) for r in records] == [encoder.span(r) for r in records]


def test_values_marshal_cannot_carry_are_sent_as_the_sdk_keeps_them():
    class Colour(enum.Enum):
        RED = "red"
    class Level(enum.IntEnum):
        HIGH = 3
    t, records = recording_tracer()
    span = t.start_span("chat", attributes={"colour": Colour.RED, "level": Level.HIGH,
                                            "tags": ("a", Colour.RED)})
    span.end()
    with pytest.raises(ValueError):
        marshal.dumps(records)
    plain = marshal.loads(marshal.dumps([shipper.plain_record(r) for r in records]))
    assert plain[0][9] == {"colour": "Colour.RED", "level": 3, "tags": ["a", "Colour.RED"]}


def test_tracing_off_loads_no_opentelemetry_and_starts_nothing():
    """Not even the API (0.3 MB a process, docs/benchmarks.md, Memory): every service's
    modules imported, tracing set up off."""
    code = ("import sys, threading\n"
            "import switchyard.edge.app, switchyard.edge.server, switchyard.providers.service, "
            "switchyard.router.service, switchyard.state.service, switchyard.cli\n"
            "from switchyard.common.config.model import Tracing\n"
            "from switchyard.common.telemetry import tracer\n"
            "assert tracer.setup(Tracing(), 'edge') is False\n"
            "loaded = [m for m in sys.modules if m.startswith('opentelemetry')]\n"
            "assert not loaded, loaded\n"
            "assert 'switchyard.common.telemetry.shipper' not in sys.modules\n"
            "assert threading.active_count() == 1\n")
    run_fresh(code, drop_env=lambda name: name.startswith("OTEL_"))


def test_a_whole_answers_span_ends_after_its_body_is_sent(monkeypatch):
    """The span's attributes and end are off the answer's latency: built once the body went
    out, and a background task the response already had still runs."""
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import Response

    from switchyard.edge import observe
    t, records = recording_tracer()
    monkeypatch.setattr(tracer, "TRACER", t)
    monkeypatch.setattr(tracer, "ENABLED", True)
    monkeypatch.setattr(tracer, "SETTINGS", Tracing(random_sampling=100))
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "query_string": b"", "headers": []}
    obs = observe.begin(Request(scope), "create_chat_completion", "openai_chat")
    assert obs is not None
    events: list[str] = []

    async def earlier_task() -> None:
        events.append(f"task, {len(records)} span")

    async def send(message: dict) -> None:
        events.append(f"{message['type']}, {len(records)} span")

    response = observe.finish(obs, Response(b"{}", status_code=201,
                                            background=BackgroundTask(earlier_task)))
    assert not records
    asyncio.run(response(scope, None, send))
    assert events == ["http.response.start, 0 span", "http.response.body, 0 span",
                      "task, 1 span"]
    assert records[0][9]["http.response.status_code"] == 201


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/odd%3Fpath#x\\y"])
def test_edge_server_span_records_the_path_as_the_url_has_it(monkeypatch, path):
    from starlette.requests import Request

    from switchyard.edge import observe
    t, records = recording_tracer()
    monkeypatch.setattr(tracer, "TRACER", t)
    monkeypatch.setattr(tracer, "SETTINGS", Tracing(random_sampling=100))
    request = Request({"type": "http", "method": "POST", "path": path, "query_string": b"k=v",
                       "scheme": "http", "server": ("127.0.0.1", 8080),
                       "headers": [(b"host", b"gw.example:8080")]})
    monkeypatch.setattr(tracer, "ENABLED", True)
    obs = observe.begin(request, "create_chat_completion", "openai_chat")
    assert obs is not None and not records   # the span's attributes come at its end
    observe._close(obs, 200)
    assert records[0][9]["url.path"] == request.url.path
    assert records[0][9]["http.request.method"] == "POST"


def test_is_sampled_reads_the_sampled_flag_of_a_well_formed_traceparent():
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    assert propagation.is_sampled(f"00-{tid}-{sid}-01")
    assert propagation.is_sampled(f"00-{tid}-{sid}-03")
    assert not propagation.is_sampled(f"00-{tid}-{sid}-00")
    assert not propagation.is_sampled(f"00-{'0' * 32}-{sid}-01")   # invalid trace id
    assert not propagation.is_sampled("not a traceparent")
    assert not propagation.is_sampled("") and not propagation.is_sampled(None)
