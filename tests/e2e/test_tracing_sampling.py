"""Sampling below 100 %: only the edge starts a trace. A request it does not sample leaves it
with no traceparent, and state, router and providers record nothing for it — no orphan root
spans sampled on their own — while a sampled request is still one trace across them."""
import os

import httpx
import pytest

from tests.e2e.harness import Gateway, free_port, gateway_config
from tests.support.otlp import has, trace_of

# Half the roots would be sampled: a service that started its own traces would show up.
SAMPLING = 50
UNSAMPLED_REQUESTS = 8


def traceparent(sampled: bool) -> tuple[str, str]:
    """A client's traceparent (sampled flag as asked) and its trace id."""
    trace_id = os.urandom(16).hex()
    return f"00-{trace_id}-{os.urandom(8).hex()}-{'01' if sampled else '00'}", trace_id


@pytest.fixture(scope="module")
def sgw(emulator, otlp, tmp_path_factory):
    port = free_port()
    extra = f"""
tracing:
  random_sampling: {SAMPLING}
  opentracing_grpc_endpoint: {otlp.endpoint}
  trace_arch_internal: true
"""
    gw = Gateway(gateway_config(emulator.url, port, state="state_storage: {type: memory}",
                                extra=extra),
                 tmp_path_factory.mktemp("tracing-sampling"), port).start()
    yield gw
    gw.stop()


def test_an_unsampled_request_is_recorded_nowhere(sgw, emu, otlp):
    otlp.clear()
    previous = ""
    for _ in range(UNSAMPLED_REQUESTS):
        header, _ = traceparent(sampled=False)
        body = {"model": "gpt-4o-mini", "input": "hi"}
        if previous:   # a state read as well as a write
            body["previous_response_id"] = previous
        r = httpx.post(f"{sgw.url}/v1/responses", json=body, timeout=30,
                       headers={"traceparent": header})
        assert r.status_code == 200, r.text
        previous = r.json()["id"]
        # A name outside the route table: the router is asked too (Resolve).
        r = httpx.post(f"{sgw.url}/v1/messages", timeout=30, headers={"traceparent": header},
                       json={"model": "anthropic/claude-opus-4-1", "max_tokens": 16,
                             "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text

    # Then a sampled one through the same paths: once its spans from every service are in,
    # anything the requests before it had recorded would have been shipped ahead of them.
    header, trace_id = traceparent(sampled=True)
    r = httpx.post(f"{sgw.url}/v1/responses", timeout=30, headers={"traceparent": header},
                   json={"model": "gpt-4o-mini", "input": "hi", "previous_response_id": previous})
    assert r.status_code == 200, r.text
    spans = trace_of(otlp, r.headers["x-request-id"],
                     has(("switchyard-edge", "chat"), ("switchyard-providers", "execute"),
                         ("switchyard-state", "switchyard.v1.State/GetHistory"),
                         ("switchyard-state", "switchyard.v1.State/Put")))
    assert {s.trace_id for s in spans} == {trace_id}
    # Another name outside the table (the edge keeps what the router resolved).
    r = httpx.post(f"{sgw.url}/v1/messages", timeout=30, headers={"traceparent": header},
                   json={"model": "anthropic/claude-sonnet-4-5", "max_tokens": 16,
                         "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    trace_of(otlp, r.headers["x-request-id"],
             has(("switchyard-edge", "chat"), ("switchyard-router", "switchyard.v1.Router/Resolve"),
                 ("switchyard-providers", "execute")))

    strays = [(s.service, s.name, s.trace_id) for s in otlp.spans() if s.trace_id != trace_id]
    assert not strays, strays
