"""What each scenario sends to each target: path, JSON body and headers (pure data)."""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from bench import streams

MODEL = "gpt-4o-mini"
API_KEY = "sk-bench-0000000000"
USER_TEXT = "Hello, how are you today? Please answer briefly."
HISTORY = [{"role": "user", "content": "My name is Ada."},
           {"role": "assistant", "content": "Nice to meet you, Ada."}]
TARGETS = ("direct", "switchyard", "litellm", "switchyard-routed", "switchyard-auth",
           "litellm-auth")
# Gateways with client auth on (`*-auth` targets) accept this key; LiteLLM as its master key.
GATEWAY_KEY = "sk-bench-gateway-0000000000"
# The routed gateway's routes (every pool is the one emulated model: only routing differs).
ROUTING = """routing_preferences:
  - {name: code generation, description: "generating new code snippets, functions, or boilerplate based on user prompts", models: [openai/gpt-4o-mini]}
  - {name: code understanding, description: "understand and explain existing code snippets, functions, or libraries", models: [openai/gpt-4o-mini]}
  - {name: complex reasoning, description: "deep analysis, mathematical problem solving, and logical reasoning", models: [openai/gpt-4o-mini]}
  - {name: creative writing, description: "creative content generation, storytelling, and writing assistance", models: [openai/gpt-4o-mini]}
"""
_PARAGRAPH = ("We are migrating the billing service from a cron job to an event-driven worker. "
              "The worker reads invoices from a queue, applies discounts, writes ledger rows "
              "and emails a receipt; retries must be idempotent and failures go to a dead "
              "letter queue that the on-call engineer reviews every morning. ")


def routing_conversation() -> list[dict]:
    """About 1,000 tokens: four earlier exchanges, then a long last user turn asking for code
    (the router embeds only its head and tail: routing/minilm.py)."""
    messages: list[dict] = []
    for i in range(4):
        messages.append({"role": "user", "content": f"Step {i}: " + _PARAGRAPH * 2})
        messages.append({"role": "assistant", "content": "Understood. " + _PARAGRAPH})
    messages.append({"role": "user", "content": _PARAGRAPH * 2 + "Write a Python function "
                     "that consumes the queue and retries each invoice at most three times."})
    return messages


@dataclass(frozen=True)
class Scenario:
    """One measured workload: a request kind at a fixed concurrency. Streams also name the
    client format the gateway is sent and the upstream family it routes to (bench/streams.py);
    upstream "slow" is the slow emulator (`--slow-chunk-delay-ms`)."""
    name: str
    kind: str          # chat | stream | anthropic | responses | routing
    concurrency: int
    client: str = "chat"        # streams: chat | messages | responses | gemini
    upstream: str = "openai"    # streams: openai | anthropic | gemini | bedrock | responses | slow

    @property
    def stream(self) -> bool:
        return self.kind == "stream"


SCENARIOS = {s.name: s for s in (
    Scenario("chat-c1", "chat", 1),
    Scenario("chat-c16", "chat", 16),
    Scenario("chat-c64", "chat", 64),
    Scenario("stream-c1", "stream", 1),     # one stream at a time: the path's own TTFT cost
    Scenario("stream-c16", "stream", 16),
    Scenario("stream-c64", "stream", 64),   # paced chunks at saturation: chunks/s
    # One client format each, to the OpenAI upstream (direct: the upstream's own stream).
    Scenario("stream-c16-client-messages", "stream", 16, client="messages"),
    Scenario("stream-c16-client-responses", "stream", 16, client="responses"),
    Scenario("stream-c16-client-gemini", "stream", 16, client="gemini"),
    # Chat clients, one upstream family each (direct: that family's own streaming API).
    Scenario("stream-c16-upstream-anthropic", "stream", 16, upstream="anthropic"),
    Scenario("stream-c16-upstream-gemini", "stream", 16, upstream="gemini"),
    Scenario("stream-c16-upstream-bedrock", "stream", 16, upstream="bedrock"),
    Scenario("stream-c16-upstream-responses", "stream", 16, upstream="responses"),
    # Many concurrent slow streams: CPU and memory per open stream.
    Scenario("slow-c1000", "stream", 1000, upstream="slow"),
    Scenario("anthropic-c16", "anthropic", 16),
    Scenario("responses-c16", "responses", 16),
    # The same 1,000-token request to `switchyard` (no routes) and `switchyard-routed`.
    Scenario("routing-c1", "routing", 1),
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
    """The request `target` gets for `scenario`; `direct` gets what the upstream would get.
    A gateway with client auth on (`*-auth` targets) is sent its gateway key."""
    return keyed(_build(scenario, target, previous_response_id), target)


def keyed(req: HttpRequest, target: str) -> HttpRequest:
    """`req` as `target` takes it: a gateway with client auth on (`*-auth`) its gateway key."""
    if not target.endswith("-auth"):
        return req
    return HttpRequest(req.path, req.body, {
        k: (v.replace(API_KEY, GATEWAY_KEY) if k in ("authorization", "x-api-key",
                                                       "x-goog-api-key") else v)
        for k, v in req.headers.items()})


def _build(scenario: Scenario, target: str, previous_response_id: str) -> HttpRequest:
    user = [{"role": "user", "content": USER_TEXT}]
    if scenario.stream:
        r = (streams.upstream_request(scenario.upstream, USER_TEXT, API_KEY)
             if target == "direct" else
             streams.client_request(scenario.client, streams.MODELS[scenario.upstream],
                                    USER_TEXT, API_KEY))
        return HttpRequest(r.path, r.body, r.headers)
    if scenario.kind == "routing":
        return _chat(routing_conversation(), False)
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
