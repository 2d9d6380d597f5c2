"""Conversations on the PostgreSQL store survive restarts of the gateway and of the state
service; while state is down, requests that need it get a quick 503 and the rest work."""
import time

import httpx
import openai
import pytest

from tests.e2e.harness import Gateway, ServiceSet, free_port, gateway_config, wait_for
from tests.support.postgres import PostgresServer


@pytest.fixture(scope="module")
def pg():
    with PostgresServer() as server:
        yield server


def pg_state(dsn: str) -> str:
    return f"state_storage:\n  type: postgres\n  connection_string: {dsn}\n"


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="k", base_url=f"{url}/v1", max_retries=0, timeout=20)


def test_conversation_survives_a_gateway_restart(emulator, pg, tmp_path):
    port = free_port()
    config = gateway_config(emulator.url, port, state=pg_state(pg.create_database()))
    gw = Gateway(config, tmp_path, port).start()
    try:
        r1 = client(gw.url).responses.create(model="gpt-4o-mini", input="My name is Alice")
        c1 = client(gw.url).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "I like tea"}])
    finally:
        gw.stop()
    emulator.reset()
    gw = Gateway(config, tmp_path, port).start()
    try:
        r2 = client(gw.url).responses.create(model="gpt-4o-mini", input="What's my name?",
                                             previous_response_id=r1.id)
        assert r2.status == "completed"
        client(gw.url).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What do I like?"}],
            metadata={"response_id": c1.id})
    finally:
        gw.stop()
    bodies = [r["json"]["messages"] for r in emulator.requests()]
    assert bodies[0][0] == {"role": "user", "content": "My name is Alice"}
    assert bodies[1][0] == {"role": "user", "content": "I like tea"}


def test_state_service_restart_while_edge_keeps_serving(emulator, pg, tmp_path):
    port = free_port()
    services = ServiceSet(gateway_config(emulator.url, port,
                                         state=pg_state(pg.create_database())),
                          tmp_path, port).start_all()
    try:
        oa = client(services.url)
        r1 = oa.responses.create(model="gpt-4o-mini", input="remember the number 7")
        services.kill("state")
        # Needs state: a quick, clean 503.
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            oa.responses.create(model="gpt-4o-mini", input="x", previous_response_id=r1.id)
        assert info.value.status_code == 503
        assert time.monotonic() - started < 5
        # Stateless requests keep working.
        ok = oa.chat.completions.create(model="gpt-4o-mini", store=False,
                                        messages=[{"role": "user", "content": "still up?"}])
        assert ok.choices[0].message.content
        r = httpx.post(f"{services.url}/v1/messages", json={
            "model": "gpt-4o-mini", "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        services.start("state")
        wait_for(services.healthy, 30, "state back")
        r2 = oa.responses.create(model="gpt-4o-mini", input="which number?",
                                 previous_response_id=r1.id)
        assert r2.status == "completed"
        last = [r for r in emulator.requests() if r["path"].endswith("/chat/completions")][-1]
        assert last["json"]["messages"][0]["content"] == "remember the number 7"
    finally:
        services.stop_all()
