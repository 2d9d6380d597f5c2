"""Same-format fidelity: client decoder -> upstream encoder gives back the client's body."""
from __future__ import annotations

from pathlib import Path

import orjson

from switchyard.common.config.model import ProviderEntry
from switchyard.edge.formats import anthropic_messages, openai_chat
from switchyard.providers.adapters import anthropic, openai_compat

FIX = Path(__file__).parent / "fixtures" / "upstream"


def entry(provider: str, interface: str, endpoint: str = "https://example.test/v1/x",
          auth: str = "bearer") -> ProviderEntry:
    return ProviderEntry(name=f"{provider}/m", provider=provider, model="m", interface=interface,
                         endpoint=endpoint, auth=auth, access_key="sk-test")


def load(name: str) -> dict:
    return orjson.loads((FIX / name).read_bytes())


def test_openai_same_format_round_trip_equals_input_apart_from_model():
    body = load("openai_request_roundtrip.json")
    req = openai_chat.decode_request(body)
    out, dropped = openai_compat.encode_request(req, entry("openai", "openai"), "gpt-4o-2024-08-06")
    got = orjson.loads(out)
    assert got.pop("model") == "gpt-4o-2024-08-06"
    body.pop("model")
    assert got == body
    assert dropped == []


def test_openai_round_trip_keeps_max_tokens_when_client_used_it():
    body = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7,
            "stream": False, "seed": 1}
    req = openai_chat.decode_request(body)
    got = orjson.loads(openai_compat.encode_request(req, entry("ollama", "openai"), "llama3")[0])
    assert got == body


def test_anthropic_same_format_round_trip_equals_input_apart_from_model():
    body = load("anthropic_request_roundtrip.json")
    req = anthropic_messages.decode_request(body)
    out, dropped = anthropic.encode_request(req, entry("anthropic", "anthropic", auth="x-api-key"),
                                            "claude-sonnet-4-20250514")
    got = orjson.loads(out)
    assert got == body
    assert dropped == []


def test_anthropic_round_trip_string_system_and_plain_messages():
    body = {"model": "claude-3-5-haiku-latest", "max_tokens": 1024, "system": "Be terse.",
            "messages": [{"role": "user", "content": "Hello, Claude"},
                         {"role": "assistant", "content": "Hello!"},
                         {"role": "user", "content": "Can you describe LLMs to me?"}],
            "temperature": 0.7, "top_k": 5, "stream": False,
            "thinking": {"type": "disabled"}}
    req = anthropic_messages.decode_request(body)
    got = orjson.loads(anthropic.encode_request(req, entry("anthropic", "anthropic"),
                                                "claude-3-5-haiku-latest")[0])
    assert got == body
