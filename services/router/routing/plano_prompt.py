"""The routing model's protocol: the prompt Plano's routing models (Arch-Router,
Plano-Orchestrator) were trained on and how their answer is read. Follows the format of
Plano's `orchestrator_model_v1.rs` (katanemo/plano, Apache-2.0; see NOTICE): routes as one
spaced JSON object per line, the conversation as 4-space-indented JSON, the answer
`{"route": [names]}`. Pure functions, no I/O."""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from switchyard.common.config.model import RoutePreference
from switchyard.common.proto import chat_pb2, router_pb2

# Kept byte for byte (including the doubled braces the model saw in training).
SYSTEM_PROMPT = """
You are a helpful assistant that selects the most suitable routes based on user intent.
You are provided with a list of available routes enclosed within <routes></routes> XML tags:
<routes>
{routes}
</routes>

You are also given the conversation context enclosed within <conversation></conversation> XML tags:
<conversation>
{conversation}
</conversation>

## Instructions
1. Analyze the latest user intent from the conversation.
2. Compare it against the available routes to find which routes can help fulfill the request.
3. Respond only with the exact route names from <routes>.
4. If no routes can help or the intent is already fulfilled, return an empty list.

## Response Format
Return your answer strictly in JSON as follows:
{{"route": ["route_name_1", "route_name_2", "..."]}}
If no routes are needed, return an empty list for `route`.
"""
MAX_TURNS = 16          # recent turns the prompt may hold
CHARS_PER_TOKEN = 4     # the cheap token estimate the protocol uses
TRIM_MARKER = "…"
_PARAMETERS = {"type": "object", "properties": {}, "required": []}
_ROLES = {chat_pb2.ROLE_USER: "user", chat_pb2.ROLE_ASSISTANT: "assistant"}
_OBJECT = re.compile(r"\{.*\}", re.S)


class BadAnswer(ValueError):
    """The routing model's answer is not the protocol's JSON."""


def routes_block(routes: Sequence[RoutePreference]) -> str:
    """One `{"name": ..., "description": ..., "parameters": {...}}` line per route."""
    return "\n".join(json.dumps({"name": r.name, "description": r.description,
                                 "parameters": _PARAMETERS}, ensure_ascii=False)
                     for r in routes)


def trim_middle(text: str, max_chars: int) -> str:
    """At most `max_chars`: 60 % head, the marker, 40 % tail (the ask often ends a paste)."""
    if len(text) <= max_chars:
        return text
    if max_chars <= len(TRIM_MARKER):
        return text[:max_chars]
    room = max_chars - len(TRIM_MARKER)
    head = room * 3 // 5
    return text[:head] + TRIM_MARKER + text[len(text) - (room - head):]


def conversation(messages: Sequence[router_pb2.RouteMessage],
                 max_tokens: int) -> list[dict[str, str]]:
    """The turns the prompt shows: user and assistant text, the last MAX_TURNS, newest kept
    first within the token budget (a user turn that overflows it is middle-trimmed)."""
    turns = [m for m in messages if m.role in _ROLES and m.text][-MAX_TURNS:]
    budget = max_tokens - len(SYSTEM_PROMPT) // CHARS_PER_TOKEN
    kept: list[dict[str, str]] = []
    used = 0
    for m in reversed(turns):
        cost = len(m.text) // CHARS_PER_TOKEN
        if used + cost > budget:
            left = budget - used
            if m.role == chat_pb2.ROLE_USER and left > 0:
                kept.append({"role": "user", "content": trim_middle(m.text,
                                                                    left * CHARS_PER_TOKEN)})
            break
        used += cost
        kept.append({"role": _ROLES[m.role], "content": m.text})
    if not kept and turns:
        kept.append({"role": _ROLES[turns[-1].role], "content": turns[-1].text})
    kept.reverse()
    return kept


def build_prompt(routes: Sequence[RoutePreference],
                 messages: Sequence[router_pb2.RouteMessage], max_tokens: int) -> str:
    """The single user message sent to the routing model."""
    convo = json.dumps(conversation(messages, max_tokens), indent=4, ensure_ascii=False)
    return SYSTEM_PROMPT.replace("{routes}", routes_block(routes)).replace(
        "{conversation}", convo)


def parse_answer(content: str, routes: Sequence[RoutePreference]) -> list[str]:
    """The route names the answer picks, in its order, unknown names dropped; [] for "no
    route". Tolerant of what small models do: single quotes, escaped newlines, prose or a
    code fence around the object, a bare string instead of a list. BadAnswer otherwise."""
    text = content.strip()
    if not text:
        return []
    fixed = text.replace("'", '"').replace("\\n", "")
    found = _OBJECT.search(fixed)
    if found is None:
        raise BadAnswer(f"no JSON object in the answer ({len(text)} characters)")
    try:
        doc: Any = json.loads(found.group(0))
    except json.JSONDecodeError as exc:
        raise BadAnswer(f"the answer is not JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise BadAnswer("the answer is not a JSON object")
    picked = doc.get("route")
    if picked is None:
        return []
    if isinstance(picked, str):
        picked = [picked]
    if not isinstance(picked, list):
        raise BadAnswer("`route` is neither a list nor a string")
    names = {r.name for r in routes}
    return [p for p in picked if isinstance(p, str) and p in names]
