"""The edge's probes against real service processes: /healthz is liveness (a backend outage
never fails it), /readyz is routes loaded and providers reachable — a state outage leaves the
edge ready, and calls that need state get a 503 in the client's format saying so."""
from __future__ import annotations

import subprocess
import sys

import httpx

from tests.e2e.harness import ROOT, ServiceSet, free_port, gateway_config, wait_for

STATE_OFF = {"router": True, "providers": True, "state": False}


def ready(url: str, expect: dict[str, bool]) -> bool:
    try:
        r = httpx.get(f"{url}/readyz", timeout=2.0)
    except httpx.HTTPError:
        return False
    return r.json().get("services") == expect


def probe(services: ServiceSet, *extra: str) -> int:
    return subprocess.run([sys.executable, "-m", "switchyard", "probe", "edge", "--config",
                           str(services.config_path), *extra], cwd=ROOT, timeout=30).returncode


def test_probes_follow_the_backends_and_state_down_is_only_degraded(emulator, tmp_path):
    port = free_port()
    services = ServiceSet(gateway_config(emulator.url, port, state="state_storage: {type: memory}"),
                          tmp_path, port)
    try:
        for name in ("router", "providers", "edge"):   # state stays down
            services.start(name)
        wait_for(lambda: ready(services.url, STATE_OFF), 60, "edge ready without state")

        live = httpx.get(f"{services.url}/healthz")
        assert live.status_code == 200 and live.json()["services"] == STATE_OFF
        r = httpx.get(f"{services.url}/readyz")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ready" and body["routes_loaded"] is True
        assert body["degraded"] == ["state"]
        assert set(body["replicas"]) == {"router", "providers", "state"}
        assert list(body["replicas"]["state"].values()) == ["down"]
        assert probe(services) == 0 and probe(services, "--ready") == 0

        # Stateless calls are served; a call that needs state is a 503 in its own format.
        r = httpx.post(f"{services.url}/v1/messages", json={
            "model": "gpt-4o-mini", "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
        assert r.status_code == 200, r.text
        r = httpx.post(f"{services.url}/v1/responses", json={
            "model": "gpt-4o-mini", "input": "and then?",
            "previous_response_id": "resp_" + "ab" * 12}, timeout=30)
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert "degraded" in error["message"] and "state" in error["message"]
        assert error["type"]

        # State comes up: ready says so, and the conversation works.
        services.start("state")
        wait_for(lambda: ready(services.url, dict.fromkeys(STATE_OFF, True)), 60,
                 "state up in /readyz")
        first = httpx.post(f"{services.url}/v1/responses", json={
            "model": "gpt-4o-mini", "input": "remember 7"}, timeout=30)
        assert first.status_code == 200, first.text

        # Providers down: not ready (k8s stops sending traffic), still alive (no restart).
        services.kill("providers")
        down = {"router": True, "providers": False, "state": True}
        wait_for(lambda: httpx.get(f"{services.url}/readyz").status_code == 503, 30,
                 "not ready without providers")
        assert httpx.get(f"{services.url}/readyz").json()["services"] == down
        assert httpx.get(f"{services.url}/healthz").status_code == 200
        assert probe(services) == 0 and probe(services, "--ready") == 1
    finally:
        services.stop_all()
