"""Routing pins shared in Redis (Plano's `routing.session_cache: {type: redis}`), through two
real gateways (`switchyard up` each) and a real redis-server: a loop step sent to the other
edge replays the decision its user turn got on the first, without asking the routing model;
the pin is stored under the tenant header's value, with the session TTL; with Redis stopped
a loop step is routed afresh and served, the edge logging one line without the password."""
from __future__ import annotations

import httpx
import pytest
import redis

from tests.e2e.harness import Gateway, gateway_config, gateways
from tests.e2e.test_routing import CODE, ROUTES, v4
from tests.support.redis import redis_server

PASSWORD = "pins-redis-pw-secret"
TTL = 300
ROUTING_MODEL = "llama3.1"
store = redis_server(password=PASSWORD)
TOOLS = [{"type": "function", "function": {"name": "run", "parameters": {
    "type": "object", "properties": {}}}}]
TURN = [{"role": "user", "content": CODE}]
LOOP = TURN + [
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "ran it"}]


def pins_section(redis_port: int) -> str:
    return ROUTES.replace("routing:\n  route_on_user_only: true\n", "") + f"""
routing:
  route_on_user_only: true
  session_ttl_seconds: {TTL}
  session_cache:
    type: redis
    url: "redis://:${{SWITCHYARD_E2E_PINS_PW}}@127.0.0.1:{redis_port}/0"
    tenant_header: x-org-id
overrides:
  llm_routing_model: ollama/{ROUTING_MODEL}
"""


@pytest.fixture(scope="module")
def edges(emulator, store, tmp_path_factory):
    """Two gateways sharing one Redis for their pins."""
    configs = {f"pins-{name}": (lambda port: v4(gateway_config(
        emulator.url, port, extra=pins_section(store.port)))) for name in ("a", "b")}
    with gateways(configs, tmp_path_factory, env={"SWITCHYARD_E2E_PINS_PW": PASSWORD}) as gws:
        yield gws


@pytest.fixture
def db(store):
    client = redis.Redis.from_url(store.url())
    client.flushdb()
    yield client
    client.close()


def chat(gw: Gateway, messages: list[dict], org: str = "acme") -> httpx.Response:
    r = httpx.post(f"{gw.url}/v1/chat/completions", timeout=30, headers={"x-org-id": org},
                   json={"model": "gpt-4o-mini", "tools": TOOLS, "messages": messages})
    assert r.status_code == 200, r.text
    return r


def routing_calls(emu) -> int:
    return sum(1 for r in emu.requests() if (r.get("json") or {}).get("model") == ROUTING_MODEL)


def test_a_loop_step_on_the_other_edge_keeps_its_turns_model(edges, emu, db):
    a, b = edges
    emu.script(ROUTING_MODEL, {"reply": {"text": '{"route": ["creative writing"]}'}})
    first = chat(a, TURN)
    assert first.headers["x-switchyard-route"] == "creative writing"   # the model's pick
    assert routing_calls(emu) == 1
    (key,) = db.keys("switchyard:affinity:*")
    assert key.startswith(b"switchyard:affinity:acme:")   # scoped by the tenant header
    assert 0 < db.ttl(key) <= TTL
    step = chat(b, LOOP)
    assert step.headers["x-switchyard-route"] == "creative writing"
    assert step.headers["x-switchyard-upstream"] == first.headers["x-switchyard-upstream"]
    assert routing_calls(emu) == 1   # replayed from the pin, not routed again
    assert 'switchyard_routing_skips_total{reason="not_user_turn"} 1.0' in \
        httpx.get(f"{b.url}/metrics", timeout=10).text
    # Another tenant's same conversation is not that pin: it is routed afresh.
    emu.script(ROUTING_MODEL, {"reply": {"text": '{"route": ["code generation"]}'}})
    other = chat(b, LOOP, org="globex")
    assert other.headers["x-switchyard-route"] == "code generation"
    assert routing_calls(emu) == 2


def test_with_redis_stopped_a_loop_step_is_routed_afresh(edges, emu, db, store):
    a, b = edges
    emu.script(ROUTING_MODEL, {"reply": {"text": '{"route": ["creative writing"]}'}},
               {"reply": {"text": '{"route": ["code generation"]}'}})
    assert chat(a, TURN, org="initech").headers["x-switchyard-route"] == "creative writing"
    store.stop()
    try:
        step = chat(b, LOOP, org="initech")   # served: the pin is advice
        assert step.headers["x-switchyard-route"] == "code generation"
        assert routing_calls(emu) == 2
        lines = [line for line in b.log().splitlines()
                 if "routing sessions" in line and "is unavailable" in line]
        assert len(lines) == 1 and "routed afresh" in lines[0]
        assert "redis://:***@127.0.0.1" in lines[0] and PASSWORD not in b.log()
    finally:
        store.start()
