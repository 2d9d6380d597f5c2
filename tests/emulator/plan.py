"""Decide what the emulated model says: one format-neutral `Plan` per request."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.emulator.text import count_tokens, truncate_tokens

DEFAULT_REFUSAL = "I'm sorry, but I can't help with that."
_FAST_WORDS = "the quick brown fox jumps over the lazy dog".split()


@dataclass
class RequestInfo:
    """What a reply depends on, extracted from either wire format."""
    last_user_text: str = ""
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    thinking: bool = False
    input_tokens: int = 1
    n: int = 1


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI carries it


@dataclass
class Usage:
    """Anthropic meaning: input excludes cache reads/writes; renderers convert for OpenAI."""
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0


@dataclass
class Plan:
    text: str = ""
    thinking: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    refusal: str | None = None
    # Why generation ended: end_turn | max_tokens | stop_sequence | tool_use | refusal.
    stop: str = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None  # OpenAI override from a script
    stop_reason: str | None = None    # Anthropic override from a script


def count_json_tokens(value: Any) -> int:
    """Rough token count of every string inside a JSON value."""
    if isinstance(value, str):
        return count_tokens(value)
    if isinstance(value, dict):
        return sum(count_json_tokens(v) for k, v in value.items()
                   if k not in ("type", "role", "id", "tool_use_id", "tool_call_id", "signature"))
    if isinstance(value, list):
        return sum(count_json_tokens(v) for v in value)
    return 0


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
    """Text up to the earliest stop sequence, and the sequence that matched."""
    best, seq = len(text), None
    for s in stops:
        if s:
            i = text.find(s)
            if i != -1 and i < best:
                best, seq = i, s
    return text[:best], seq


def _usage(plan: Plan, info: RequestInfo, override: dict | None) -> Usage:
    """Computed usage, with any scripted numbers (either vocabulary) taking precedence."""
    reasoning = count_tokens(plan.thinking or "")
    output = (count_tokens(plan.text) + count_tokens(plan.refusal or "") + reasoning
              + sum(count_tokens(c.arguments) + 1 for c in plan.tool_calls))
    u = Usage(input=info.input_tokens, output=max(output, 1), reasoning=reasoning)
    if not override:
        return u
    o = override
    u.cache_read = int(o.get("cache_read_input_tokens", o.get("cached_tokens", 0)))
    u.cache_creation = int(o.get("cache_creation_input_tokens", 0))
    if "input_tokens" in o:
        u.input = int(o["input_tokens"])
    elif "prompt_tokens" in o:
        u.input = max(int(o["prompt_tokens"]) - u.cache_read - u.cache_creation, 0)
    if "output_tokens" in o or "completion_tokens" in o:
        u.output = int(o.get("output_tokens", o.get("completion_tokens", 0)))
    if "reasoning_tokens" in o:
        u.reasoning = int(o["reasoning_tokens"])
    return u


def make_plan(info: RequestInfo, reply: dict | None, new_tool_id: Callable[[], str]) -> Plan:
    """The reply for a request: the default echo, or the scripted reply, limits applied."""
    reply = reply or {}
    calls = reply.get("tool_calls") or []
    refusal = reply.get("refusal")
    if "text" in reply:
        text = reply["text"] or ""
    elif calls or refusal:
        text = ""
    else:
        text = f"Echo: {info.last_user_text}"
    plan = Plan(finish_reason=reply.get("finish_reason"), stop_reason=reply.get("stop_reason"))
    if reply.get("thinking"):
        plan.thinking = reply["thinking"]
    elif info.thinking:
        plan.thinking = f"The user wrote: {info.last_user_text[:200]}. I will echo it back."
    if refusal:
        plan.refusal = refusal if isinstance(refusal, str) else (text or DEFAULT_REFUSAL)
        text = text if isinstance(refusal, str) else ""
        plan.stop = "refusal"
    for call in calls:
        args = call.get("arguments", {})
        plan.tool_calls.append(ToolCall(
            id=call.get("id") or new_tool_id(), name=call["name"],
            arguments=args if isinstance(args, str) else orjson.dumps(args).decode()))
    if plan.tool_calls and plan.stop == "end_turn":
        plan.stop = "tool_use"

    text, seq = _cut_at_stop(text, info.stop)
    if seq is not None:
        plan.stop, plan.stop_sequence, plan.tool_calls = "stop_sequence", seq, []
    if info.max_tokens is not None:
        budget = max(info.max_tokens - count_tokens(plan.thinking or ""), 0)
        text, cut = truncate_tokens(text, budget)
        if cut:
            plan.stop, plan.stop_sequence, plan.tool_calls = "max_tokens", None, []
    plan.text = text
    plan.usage = _usage(plan, info, reply.get("usage"))
    return plan


@functools.lru_cache(maxsize=8)
def fast_plan(chunks: int | None) -> Plan:
    """Fast mode's fixed reply: `chunks` words (default 16), computed once and shared."""
    n = chunks or 16
    words = [_FAST_WORDS[i % len(_FAST_WORDS)] for i in range(n)]
    return Plan(text=" ".join(words), usage=Usage(input=10, output=n))
