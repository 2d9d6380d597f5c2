"""Faults: malformed input never breaks the gateway; a backend killed under load gives
clean 503s, is restarted by the launcher, and traffic recovers with nothing lost."""
import concurrent.futures
import json
import os
import signal
import threading
import time

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.harness import Gateway, free_port, gateway_config, wait_for
from tests.e2e.test_launcher import cmdline
from tests.support.postgres import PostgresServer

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20)
message = st.fixed_dictionaries({}, optional={
    "role": st.one_of(st.sampled_from(["user", "assistant", "system", "tool", "bogus"]),
                      json_value),
    "content": st.one_of(json_value, st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "image", "tool_result", "input_text",
                                  "weird"])}, optional={"text": json_value}), max_size=3))})
body = st.one_of(
    st.binary(max_size=200),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={
        "model": st.one_of(st.sampled_from(["gpt-4o-mini", "claude-3-5-sonnet-20241022",
                                            "nope"]), json_value),
        "messages": st.one_of(json_value, st.lists(message, max_size=3)),
        "input": json_value, "max_tokens": json_value, "stream": json_value,
        "tools": json_value, "tool_choice": json_value, "temperature": json_value,
    }).map(lambda v: json.dumps(v).encode()))
ENDPOINTS = ["/v1/chat/completions", "/v1/messages", "/v1/responses"]


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(endpoint=st.sampled_from(ENDPOINTS), payload=body)
def test_fuzzed_bodies_get_client_errors_in_the_right_format(gateway, endpoint, payload):
    r = httpx.post(f"{gateway.url}{endpoint}", content=payload, timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        err = r.json()
        if endpoint == "/v1/messages":
            assert err["type"] == "error" and err["error"]["type"] and err["error"]["message"]
        else:
            assert err["error"]["message"] and err["error"]["type"]


def test_gateway_is_healthy_after_fuzzing(gateway):
    assert httpx.get(f"{gateway.url}/healthz").status_code == 200


def pid_of(gw: Gateway, service: str) -> int:
    return [p for p in gw.children() if f" serve {service}" in cmdline(p)][0]


class Load:
    """Requests in a loop from a few threads, recording every outcome."""

    def __init__(self, fn, threads: int = 4) -> None:
        self.fn = fn
        self.stop = threading.Event()
        self.outcomes: list = []
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)
        self.futures = [self.pool.submit(self._run) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=15) as client:
            while not self.stop.is_set():
                self.outcomes.append(self.fn(client))

    def finish(self) -> list:
        self.stop.set()
        for f in self.futures:
            f.result(timeout=60)
        self.pool.shutdown()
        return self.outcomes


def test_kill_providers_under_load(emulator, tmp_path):
    port = free_port()
    gw = Gateway(gateway_config(emulator.url, port), tmp_path, port).start()
    try:
        def call(client):
            started = time.monotonic()
            r = client.post(f"{gw.url}/v1/chat/completions", json={
                "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
            return r.status_code, r.json(), time.monotonic() - started
        load = Load(call)
        wait_for(lambda: len(load.outcomes) > 20, 20, "load to flow")
        os.kill(pid_of(gw, "providers"), signal.SIGKILL)
        wait_for(lambda: "providers restarted" in gw.log(), 20, "the launcher to restart it")
        mark = len(load.outcomes)
        wait_for(lambda: any(s == 200 for s, _, _ in load.outcomes[mark:]), 30,
                 "traffic to recover")
        outcomes = load.finish()
    finally:
        gw.stop()
    statuses = {s for s, _, _ in outcomes}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses  # the outage was seen, and seen cleanly
    for status, body, elapsed in outcomes:
        assert elapsed < 10  # nothing hangs
        if status == 503:
            assert body["error"]["type"] == "service_unavailable"


def test_kill_state_under_load_loses_nothing(emulator, tmp_path):
    with PostgresServer() as pg:
        port = free_port()
        state = f"state_storage:\n  type: postgres\n  connection_string: {pg.create_database()}\n"
        gw = Gateway(gateway_config(emulator.url, port, state=state), tmp_path, port).start()
        try:
            def call(client):
                r = client.post(f"{gw.url}/v1/responses",
                                json={"model": "gpt-4o-mini", "input": "remember me"})
                return r.status_code, r.json()
            load = Load(call)
            wait_for(lambda: len(load.outcomes) > 20, 20, "load to flow")
            os.kill(pid_of(gw, "state"), signal.SIGKILL)
            wait_for(lambda: "state restarted" in gw.log(), 20, "the launcher to restart it")
            mark = len(load.outcomes)
            wait_for(lambda: any(s == 200 for s, _ in load.outcomes[mark:]), 30,
                     "traffic to recover")
            outcomes = load.finish()
            assert {s for s, _ in outcomes} <= {200, 503}
            stored = [b["id"] for s, b in outcomes if s == 200]
            assert len(stored) > 20
            with httpx.Client(base_url=gw.url) as client:
                for rid in stored:  # every response a client saw succeed is still there
                    assert client.get(f"/v1/responses/{rid}").status_code == 200, rid
        finally:
            gw.stop()
