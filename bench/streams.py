"""Streamed scenarios: what each target is sent (client format x upstream family) and how a
reply's content tokens are counted, whatever its wire format (pure data and parsers)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

# The model each upstream family is reached by (the gateways route it there; `direct` asks
# the emulator for it in the family's own API). Bedrock's is an alias: its id holds ':'.
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-sonnet-20241022",
          "gemini": "gemini-2.0-flash", "bedrock": "bedrock-claude",
          "responses": "gpt-5-codex", "slow": "slow-gpt"}
BEDROCK_MODEL_ID = "us.anthropic.claude-sonnet-4-20250514-v1:0"
MAX_TOKENS = 64


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    headers: dict[str, str]


def _json(path: str, body: dict[str, Any], headers: dict[str, str]) -> Request:
    return Request(path, orjson.dumps(body), {"content-type": "application/json", **headers})


def client_request(client: str, model: str, text: str, key: str) -> Request:
    """A streamed request in a client format (what a gateway is sent)."""
    user = [{"role": "user", "content": text}]
    if client == "chat":
        return _json("/v1/chat/completions", {"model": model, "messages": user,
                                              "max_tokens": MAX_TOKENS, "stream": True},
                     {"authorization": f"Bearer {key}"})
    if client == "messages":
        return _json("/v1/messages", {"model": model, "max_tokens": MAX_TOKENS,
                                      "messages": user, "stream": True},
                     {"x-api-key": key, "anthropic-version": "2023-06-01"})
    if client == "responses":
        return _json("/v1/responses", {"model": model, "input": text,
                                       "max_output_tokens": MAX_TOKENS, "stream": True},
                     {"authorization": f"Bearer {key}"})
    if client == "gemini":
        return _json(f"/v1beta/models/{model}:streamGenerateContent?alt=sse",
                     {"contents": [{"role": "user", "parts": [{"text": text}]}],
                      "generationConfig": {"maxOutputTokens": MAX_TOKENS}},
                     {"x-goog-api-key": key})
    raise ValueError(f"unknown client format {client!r}")


def upstream_request(upstream: str, text: str, key: str) -> Request:
    """The family's own streamed request, as the upstream (the emulator) gets it."""
    if upstream in ("openai", "slow"):
        return client_request("chat", MODELS[upstream], text, key)
    if upstream == "anthropic":
        return client_request("messages", MODELS[upstream], text, key)
    if upstream == "gemini":
        return client_request("gemini", MODELS[upstream], text, key)
    if upstream == "responses":
        return client_request("responses", MODELS[upstream], text, key)
    if upstream == "bedrock":   # a Bedrock API key; the emulator checks its shape only
        return _json(f"/model/{BEDROCK_MODEL_ID}/converse-stream",
                     {"messages": [{"role": "user", "content": [{"text": text}]}],
                      "inferenceConfig": {"maxTokens": MAX_TOKENS}},
                     {"authorization": f"Bearer {key}"})
    raise ValueError(f"unknown upstream family {upstream!r}")


def wire_of(client: str, upstream: str, target: str) -> str:
    """The stream grammar `target` answers in: a gateway speaks the client's format, the
    emulator its own family's."""
    if target != "direct":
        return client
    return {"openai": "chat", "slow": "chat", "anthropic": "messages", "gemini": "gemini",
            "responses": "responses", "bedrock": "bedrock"}[upstream]


# ---- counting content tokens ---------------------------------------------------------------

Counter = Callable[[bytes], tuple[int, bool]]   # bytes read -> (tokens seen, stream finished)


def sse_counter(on_event: Callable[[str, Any], tuple[int, bool]]) -> Counter:
    """An SSE reader feeding each complete event's (name, JSON data) to `on_event`."""
    buf = bytearray()

    def feed(chunk: bytes) -> tuple[int, bool]:
        buf.extend(chunk)
        tokens, finished = 0, False
        while True:
            end = buf.find(b"\n\n")
            crlf = buf.find(b"\r\n\r\n")
            if crlf >= 0 and (end < 0 or crlf < end):
                end, skip = crlf, 4
            else:
                skip = 2
            if end < 0:
                return tokens, finished
            event, data = "", b""
            for line in bytes(buf[:end]).splitlines():
                if line.startswith(b"event:"):
                    event = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data = line[5:].strip()
            del buf[:end + skip]
            if not data:
                continue
            if data == b"[DONE]":
                finished = True
                continue
            n, done = on_event(event, orjson.loads(data))
            tokens += n
            finished = finished or done
    return feed


def _chat(event: str, obj: Any) -> tuple[int, bool]:
    choices = obj.get("choices") or ()
    return (1 if choices and (choices[0].get("delta") or {}).get("content") else 0), False


def _messages(event: str, obj: Any) -> tuple[int, bool]:
    kind = obj.get("type")
    if kind == "content_block_delta" and (obj.get("delta") or {}).get("text"):
        return 1, False
    return 0, kind == "message_stop"


def _responses(event: str, obj: Any) -> tuple[int, bool]:
    kind = obj.get("type")
    if kind == "response.output_text.delta" and obj.get("delta"):
        return 1, False
    return 0, kind in ("response.completed", "response.incomplete")


def _gemini(event: str, obj: Any) -> tuple[int, bool]:
    cands = obj.get("candidates") or ()
    parts = ((cands[0].get("content") or {}).get("parts") or ()) if cands else ()
    text = any(p.get("text") and not p.get("thought") for p in parts)
    return (1 if text else 0), bool(cands and cands[0].get("finishReason"))


def bedrock_counter() -> Counter:
    """Bedrock's binary event stream: contentBlockDelta text counts, messageStop ends."""
    from botocore.eventstream import EventStreamBuffer
    buf = EventStreamBuffer()

    def feed(chunk: bytes) -> tuple[int, bool]:
        buf.add_data(chunk)
        tokens, finished = 0, False
        for message in buf:
            kind = message.headers.get(":event-type")
            if kind == "contentBlockDelta":
                delta = orjson.loads(message.payload).get("delta") or {}
                tokens += 1 if delta.get("text") else 0
            elif kind == "messageStop":
                finished = True
        return tokens, finished
    return feed


def counter(wire: str) -> Counter:
    """A fresh token counter for one reply in `wire` (see `wire_of`)."""
    if wire == "bedrock":
        return bedrock_counter()
    return sse_counter({"chat": _chat, "messages": _messages, "responses": _responses,
                        "gemini": _gemini}[wire])
