"""Decide what the emulated model says: one format-neutral `Plan` per request."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
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
    # Structured output the request asked for: "text" (the reply's text is the JSON: OpenAI
    # response_format, Anthropic output_config.format, Gemini responseMimeType) or "tool"
    # (a tool_choice forcing `json_tool`, whose input is the answer); None: not asked.
    json_mode: str | None = None
    json_schema: dict | None = None
    json_tool: str = ""
    # The tools the request offered, name -> JSON schema of the arguments (None: a server or
    # built-in tool without one); what an `offered` scripted call is checked against.
    offered_tools: dict[str, dict | None] = field(default_factory=dict)
    # Anthropic `thinking.display: omitted`: thinking blocks come back empty, signed.
    thinking_omitted: bool = False
    # OpenAI's finish_reason for a reply that calls tools when tool_choice named the function:
    # "stop", not "tool_calls" (what its API returns, streamed or not).
    named_call_finish: str | None = None

    def force_any_tool(self) -> None:
        """A tool_choice that forces some tool call (OpenAI `required`, Anthropic `any`)
        with one tool offered forces that one."""
        if len(self.offered_tools) == 1:
            self.force_tool(next(iter(self.offered_tools)))

    def force_tool(self, name: str | None) -> None:
        """A tool_choice forcing the offered tool `name`: a scripted `json` reply is that tool's
        call (how LangChain's and instructor's tool-calling structured output ask for it),
        unless a response format already asked for the JSON as text."""
        if self.json_mode is None and name in self.offered_tools:
            self.json_mode, self.json_tool = "tool", name
            self.json_schema = self.offered_tools[name]


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
    thinking_omitted: bool = False    # render thinking as an empty, signed block (Anthropic)


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


NOT_ASKED = "I was not asked for JSON output."


def structured_reply(info: RequestInfo, reply: dict, new_tool_id: Callable[[], str]) -> dict:
    """A scripted `json` reply as the model would give it: the JSON as the text, or as the
    input of the forced tool; plain prose when the request asked for no structured output,
    and an explanation instead of the JSON when it does not match the requested schema (a
    test that scripted it then fails to parse the reply, loudly)."""
    value = reply["json"]
    rest = {k: v for k, v in reply.items() if k != "json"}
    if info.json_mode is None:
        return {**rest, "text": NOT_ASKED}
    if info.json_schema is not None:
        errors = sorted(jsonschema.Draft202012Validator(info.json_schema).iter_errors(value),
                        key=str)
        if errors:
            return {**rest, "text": f"scripted JSON does not match the requested schema: "
                                    f"{errors[0].message}"}
    if info.json_mode == "tool":
        return {**rest, "tool_calls": [{"id": new_tool_id(), "name": info.json_tool,
                                        "arguments": value}]}
    return {**rest, "text": orjson.dumps(value).decode()}


def _fits(schema: dict, value: Any) -> str | None:
    """Why `value` does not validate against `schema` (a tool's parameters), or None."""
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        errors = sorted(cls(schema).iter_errors(value), key=str)
    except jsonschema.SchemaError as e:
        return f"the tool's schema is not valid: {e.message}"
    return errors[0].message if errors else None


def offered_calls(info: RequestInfo, calls: list[dict]) -> tuple[list[dict], str | None]:
    """Scripted calls with `offered` resolved to a tool the request offered, as a model only
    calls those; else the explanation the reply says instead (the test then fails loudly)."""
    out = []
    for call in calls:
        if not call.get("offered"):
            out.append(call)
            continue
        names = call["name"] if isinstance(call["name"], list) else [call["name"]]
        name = next((n for n in names if n in info.offered_tools), None)
        if name is None:
            return [], (f"scripted call of {' or '.join(names)}: the request offered no such "
                        f"tool (offered: {', '.join(sorted(info.offered_tools)) or 'none'})")
        args = call.get("arguments", {})
        schema = info.offered_tools[name]
        if schema is not None:
            try:
                value = orjson.loads(args) if isinstance(args, str) else args
            except orjson.JSONDecodeError:
                return [], f"scripted arguments for {name} are not JSON: {args!r}"
            why = _fits(schema, value)
            if why is not None:
                return [], f"scripted arguments for {name} do not fit its schema: {why}"
        out.append({k: v for k, v in call.items() if k != "offered"} | {"name": name})
    return out, None


def make_plan(info: RequestInfo, reply: dict | None, new_tool_id: Callable[[], str]) -> Plan:
    """The reply for a request: the default echo, or the scripted reply, limits applied."""
    reply = reply or {}
    if "json" in reply:
        reply = structured_reply(info, reply, new_tool_id)
    if reply.get("tool_calls"):
        calls, refused = offered_calls(info, reply["tool_calls"])
        reply = {**reply, "tool_calls": calls} if refused is None else \
            {**reply, "tool_calls": [], "text": refused}
    calls = reply.get("tool_calls") or []
    refusal = reply.get("refusal")
    if "text" in reply:
        text = reply["text"] or ""
    elif calls or refusal:
        text = ""
    else:
        text = f"Echo: {info.last_user_text}"
    plan = Plan(finish_reason=reply.get("finish_reason"), stop_reason=reply.get("stop_reason"),
                thinking_omitted=info.thinking_omitted)
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
        if plan.finish_reason is None:
            plan.finish_reason = info.named_call_finish

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
