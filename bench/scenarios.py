"""What each scenario sends to each target: path, JSON body and headers (pure data)."""
from __future__ import annotations

from dataclasses import dataclass

import orjson

MODEL = "gpt-4o-mini"
API_KEY = "sk-bench-0000000000"
USER_TEXT = "Hello, how are you today? Please answer briefly."
HISTORY = [{"role": "user", "content": "My name is Ada."},
           {"role": "assistant", "content": "Nice to meet you, Ada."}]
TARGETS = ("direct", "switchyard", "litellm")


@dataclass(frozen=True)
class Scenario:
    """One measured workload: a request kind at a fixed concurrency."""
    name: str
    kind: str          # chat | stream | anthropic | responses
    concurrency: int

    @property
    def stream(self) -> bool:
        return self.kind == "stream"


SCENARIOS = {s.name: s for s in (
    Scenario("chat-c1", "chat", 1),
    Scenario("chat-c16", "chat", 16),
    Scenario("chat-c64", "chat", 64),
    Scenario("stream-c16", "stream", 16),
    Scenario("anthropic-c16", "anthropic", 16),
    Scenario("responses-c16", "responses", 16),
)}
SOAK = Scenario("soak-c16", "chat", 16)


@dataclass(frozen=True)
class HttpRequest:
    """A ready-to-send request (the load generators replay it unchanged)."""
    path: str
    body: bytes
    headers: dict[str, str]


def _openai_headers() -> dict[str, str]:
    return {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"}


def _chat(messages: list[dict], stream: bool) -> HttpRequest:
    body: dict = {"model": MODEL, "messages": messages, "max_tokens": 64}
    if stream:
        body["stream"] = True
    return HttpRequest("/v1/chat/completions", orjson.dumps(body), _openai_headers())


def build_request(scenario: Scenario, target: str, previous_response_id: str = "") -> HttpRequest:
    """The request `target` gets for `scenario`; `direct` gets what the upstream would get."""
    user = [{"role": "user", "content": USER_TEXT}]
    if scenario.kind in ("chat", "stream"):
        return _chat(user, scenario.stream)
    if scenario.kind == "anthropic":
        if target == "direct":   # the upstream is OpenAI: the floor is its own format
            return _chat(user, False)
        body = {"model": MODEL, "max_tokens": 64, "messages": user}
        return HttpRequest("/v1/messages", orjson.dumps(body), {
            "content-type": "application/json", "x-api-key": API_KEY,
            "anthropic-version": "2023-06-01"})
    if scenario.kind == "responses":
        if target == "direct":   # what the upstream receives: history + the new turn
            return _chat(HISTORY + user, False)
        body = {"model": MODEL, "input": USER_TEXT, "max_output_tokens": 64,
                "previous_response_id": previous_response_id}
        return HttpRequest("/v1/responses", orjson.dumps(body), _openai_headers())
    raise ValueError(f"unknown scenario kind {scenario.kind!r}")


def seed_request() -> HttpRequest:
    """The first turn of the Responses scenario, whose id the measured turns continue."""
    body = {"model": MODEL, "input": HISTORY[0]["content"], "max_output_tokens": 64}
    return HttpRequest("/v1/responses", orjson.dumps(body), _openai_headers())
