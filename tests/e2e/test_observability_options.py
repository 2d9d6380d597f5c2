"""The tracing and cost options the main observability gateway leaves off: message content on
the span (`record_content`), spans of the internal hops (`trace_arch_internal`), and a cost
catalog fetched over HTTP and refreshed on its `refresh_interval`."""
import threading

import httpx
import orjson
import pytest
from aiohttp import web

from tests.e2e.harness import Gateway, free_port, gateway_config, wait_for
from tests.emulator.app_thread import AppThread
from tests.support.metrics import metric_value
from tests.support.otlp import has, one, trace_of

SECRET_SENTENCE = "the launch code is tangerine"


class CatalogServer:
    """A models.dev-shaped catalog over HTTP whose gpt-4o-mini price a test can change."""

    def __init__(self) -> None:
        self.input_per_mtok = 1.0
        self.fetches = 0
        self._lock = threading.Lock()
        self._app = AppThread(self._build, host="127.0.0.1", port=0, name="catalog",
                              shutdown_timeout=1.0)

    def _build(self) -> web.Application:
        async def catalog(request: web.Request) -> web.Response:
            with self._lock:
                self.fetches += 1
                price = self.input_per_mtok
            body = {"openai": {"models": {"gpt-4o-mini": {"cost": {"input": price,
                                                                    "output": 2.0}}}}}
            return web.Response(body=orjson.dumps(body), content_type="application/json")
        app = web.Application()
        app.router.add_get("/api.json", catalog)
        return app

    def __enter__(self) -> "CatalogServer":
        self.url = f"http://127.0.0.1:{self._app.start()}/api.json"
        return self

    def __exit__(self, *exc: object) -> None:
        self._app.stop()


@pytest.fixture(scope="module")
def catalog():
    with CatalogServer() as server:
        yield server


@pytest.fixture(scope="module")
def ogw(emulator, otlp, catalog, tmp_path_factory):
    port = free_port()
    extra = f"""
tracing:
  random_sampling: 100
  opentracing_grpc_endpoint: {otlp.endpoint}
  trace_arch_internal: true
  record_content: true
model_metrics_sources:
  - {{type: cost, provider: models.dev, url: {catalog.url}, refresh_interval: 1}}
"""
    gw = Gateway(gateway_config(emulator.url, port, state="state_storage: {type: memory}",
                                extra=extra),
                 tmp_path_factory.mktemp("observability-options"), port).start()
    yield gw
    gw.stop()


def test_record_content_puts_the_messages_on_the_edge_span(ogw, emu, otlp):
    r = httpx.post(f"{ogw.url}/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": SECRET_SENTENCE}]})
    assert r.status_code == 200
    spans = trace_of(otlp, r.headers["x-request-id"])
    edge = one(spans, "switchyard-edge", "chat")
    assert SECRET_SENTENCE in edge.attributes["gen_ai.input.messages"]
    assert orjson.loads(edge.attributes["gen_ai.input.messages"])[0]["role"] == "user"


def test_trace_arch_internal_adds_the_router_lookup_to_the_trace(ogw, emu, otlp):
    # A name outside the route table: the edge asks the router (Resolve) on the way.
    r = httpx.post(f"{ogw.url}/v1/messages", timeout=30, json={
        "model": "anthropic/claude-opus-4-1", "max_tokens": 32,
        "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    spans = trace_of(otlp, r.headers["x-request-id"],
                     has(("switchyard-edge", "chat"), ("switchyard-router", "switchyard.v1"),
                         ("switchyard-providers", "execute")))
    edge = one(spans, "switchyard-edge", "chat")
    resolve = one(spans, "switchyard-router", "switchyard.v1.Router/Resolve")
    assert resolve.trace_id == edge.trace_id


def test_a_catalog_over_http_is_fetched_and_refreshed_on_its_interval(ogw, emu, catalog):
    labels = {"provider": "openai", "model": "gpt-4o-mini", "tenant": "default"}
    usage = {"input_tokens": 1_000_000, "output_tokens": 0}

    def cost_of_one_request() -> float:
        before = metric_value(ogw.url, "switchyard_cost_usd_total", **labels)
        emu.script("gpt-4o-mini", {"reply": {"text": "priced", "usage": usage}})
        r = httpx.post(f"{ogw.url}/v1/chat/completions", timeout=30, json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "price me"}]})
        assert r.status_code == 200
        return metric_value(ogw.url, "switchyard_cost_usd_total", **labels) - before

    wait_for(lambda: cost_of_one_request() == pytest.approx(1.0), 20,
             "the catalog's first price (1 USD per million input tokens)")
    fetched = catalog.fetches
    catalog.input_per_mtok = 4.0
    wait_for(lambda: cost_of_one_request() == pytest.approx(4.0), 20,
             "the refreshed price (4 USD per million input tokens)")
    assert catalog.fetches > fetched
