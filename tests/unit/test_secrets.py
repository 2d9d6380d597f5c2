"""Configured secrets never leave the providers service: the scrubber, the executor's exit
point, and the emulator's `{key}` echo that the e2e test relies on."""
from __future__ import annotations

import anthropic
import openai
import pytest

from switchyard.common.config.model import (
    Config,
    Listener,
    ProviderEntry,
    ServiceAddresses,
    StateStorage,
)
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2
from switchyard.providers.execution import Executor
from switchyard.providers.http import ClientPool, Timeouts
from switchyard.providers.secrets import ERROR_FIELDS, Secrets, dsn_password, entry_secrets
from tests.emulator import Emulator
from tests.emulator.steps import validate_step, with_key

KEY_A = "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
KEY_B = "sk-ant-api03-BBBBBBBBBBBBBBBBBBBBBB"
PASSWORD = "pg-hunter2-secret"


def provider(name: str, key: str | None, **kw) -> ProviderEntry:
    return ProviderEntry(name=name, provider="openai", model="gpt-4o", interface="openai",
                         endpoint=kw.pop("endpoint", "http://127.0.0.1:1/v1/chat/completions"),
                         auth="bearer", access_key=key, **kw)


def config(*entries: ProviderEntry, dsn: str | None = None) -> Config:
    return Config(path="x.yaml", version="v0.3.0", listener=Listener(), providers=entries,
                  aliases={}, services=ServiceAddresses(),
                  state=StateStorage(type="postgres" if dsn else "memory", connection_string=dsn))


def leaky(text: str) -> chat_pb2.Error:
    return chat_pb2.Error(http_status=401, **{f: f"{f}: {text}" for f in ERROR_FIELDS})


def test_every_error_field_is_scrubbed_of_every_configured_secret():
    secrets = Secrets.from_config(config(provider("a", KEY_A), provider("b", KEY_B)))
    err = secrets.scrub(leaky(f"{KEY_A} and {KEY_B} again {KEY_A}"))
    for field in ERROR_FIELDS:
        value = getattr(err, field)
        assert value == f"{field}: *** and *** again ***", (field, value)
    assert err.http_status == 401


def test_state_dsn_password_is_a_secret():
    dsn = f"postgresql://app:{PASSWORD}@db.internal:5432/switchyard"
    assert dsn_password(dsn) == PASSWORD
    assert dsn_password("postgresql://app@db/x") is None and dsn_password(None) is None
    secrets = Secrets.from_config(config(provider("a", KEY_A), dsn=dsn))
    err = secrets.scrub(chat_pb2.Error(message=f"db said {PASSWORD}", code=PASSWORD))
    assert (err.message, err.code) == ("db said ***", "***")


def test_request_key_is_scrubbed_as_extra():
    client_key = "client-byok-key-0123456789"
    err = Secrets().scrub(leaky(client_key), extra=(client_key, None, ""))
    assert all(client_key not in getattr(err, f) for f in ERROR_FIELDS)
    assert err.param == "param: ***"


def test_short_secrets_are_ignored():
    secrets = Secrets.from_config(config(provider("a", "short"), provider("b", KEY_B)))
    assert secrets.values == (KEY_B,)
    err = secrets.scrub(chat_pb2.Error(message="a short key", type="invalid_request_error"),
                        extra=("error",))   # 5 chars: never blanks a common word
    assert (err.message, err.type) == ("a short key", "invalid_request_error")


def test_longer_secret_wins_over_one_it_contains():
    long_key = KEY_A + "-suffix"
    err = Secrets([KEY_A, long_key]).scrub(chat_pb2.Error(message=f"[{long_key}]"))
    assert err.message == "[***]"


def test_entry_headers_and_url_secrets():
    entry = provider("a", None, headers={"X-Custom-Token": "tok-0123456789",
                                         "Authorization": "Bearer hdr-bearer-0123456789",
                                         "anthropic-version": "2023-06-01"},
                     endpoint="https://u:url-pass-0123@h/v1?key=query-key-0123456789&x=2")
    found = entry_secrets(entry)
    for secret in ("tok-0123456789", "hdr-bearer-0123456789", "url-pass-0123",
                   "query-key-0123456789"):
        assert secret in found
    assert "2023-06-01" not in found


def test_scrub_batch_touches_only_errors():
    secrets = Secrets([KEY_A])
    batch = chat_pb2.EventBatch(events=[
        chat_pb2.StreamEvent(delta=chat_pb2.BlockDelta(text=f"model says {KEY_A}")),
        chat_pb2.StreamEvent(error=chat_pb2.Error(message=KEY_A))])
    secrets.scrub_batch(batch)
    assert batch.events[1].error.message == "***"
    assert KEY_A in batch.events[0].delta.text   # content is the model's, not ours to edit


async def test_executor_scrubs_errors_at_its_exit_point():
    """A gateway-made error (no upstream reached) still passes the scrubber, with the
    config's secrets and the request's own key."""
    client_key = "client-key-9876543210"
    executor = Executor(lambda name: None, ClientPool(Timeouts(1.0, 1.0, 1.0)),
                        secrets=Secrets([KEY_A]))
    gen = providers_pb2.GenerateRequest(
        request_id="r1", client_api_key=client_key,
        plan=router_pb2.RoutePlan(name=f"plan-{KEY_A}-{client_key}",
                                  targets=[router_pb2.Target(provider=f"p-{KEY_A}", model="m")]))
    batches = [b async for b in executor.generate(gen)]
    [err] = [ev.error for b in batches for ev in b.events]
    text = str(err)
    assert KEY_A not in text and client_key not in text and "***" in err.provider
    await executor.pool.close()


# --- the emulator's `{key}` echo -----------------------------------------------------------

def test_with_key_replaces_the_placeholder_in_message_code_and_param():
    step = {"status": 401, "error": {"message": "bad {key}", "code": "c-{key}",
                                     "param": "{key}", "type": "t-{key}"}}
    out = with_key(step, "K")
    assert out["error"] == {"message": "bad K", "code": "c-K", "param": "K", "type": "t-{key}"}
    assert step["error"]["message"] == "bad {key}"   # the script itself is not changed
    assert with_key({"status": 500}, "K") == {"status": 500}


def test_step_error_stays_strict():
    with pytest.raises(ValueError, match="step error"):
        validate_step({"status": 400, "error": {"mesage": "typo"}})
    with pytest.raises(ValueError, match="error.code"):
        validate_step({"status": 400, "error": {"code": 5}})


def test_emulator_echoes_the_presented_key():
    oai_key, ant_key = "sk-echo-openai-123456", "sk-echo-ant-123456"
    with Emulator(openai_keys={oai_key}, anthropic_keys={ant_key}) as emu:
        emu.script("m", {"status": 401, "error": {"message": "bad {key}", "code": "c{key}",
                                                  "param": "p{key}"}})
        oai = openai.OpenAI(base_url=emu.openai_base_url, api_key=oai_key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as e:
            oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
        assert e.value.body == {"message": f"bad {oai_key}", "type": "invalid_request_error",
                                "param": f"p{oai_key}", "code": f"c{oai_key}"}
        emu.script("m", {"error_event_after_chunks": 1, "error": {"message": "boom {key}"}})
        with pytest.raises(openai.APIError, match=f"boom {oai_key}"):
            for _ in oai.chat.completions.create(model="m", stream=True,
                                                 messages=[{"role": "user", "content": "a b"}]):
                pass
        ant = anthropic.Anthropic(base_url=emu.url, api_key=ant_key, max_retries=0)
        emu.script("m", {"status": 429, "error": {"message": "slow {key}"}})
        with pytest.raises(anthropic.RateLimitError, match=f"slow {ant_key}"):
            ant.messages.create(model="m", max_tokens=10,
                                messages=[{"role": "user", "content": "a"}])
