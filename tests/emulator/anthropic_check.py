"""Validate an Anthropic Messages request the way api.anthropic.com does (same wording)."""
from __future__ import annotations

import re
from typing import Any

from tests.emulator.errors import anthropic_invalid
from tests.emulator.plan import RequestInfo, count_json_tokens
from tests.emulator.text import verify_thinking

# Top-level fields the Messages API knows (anthropic-sdk 2.x params plus older sampling fields);
# anything else is "Extra inputs are not permitted", which catches OpenAI-only fields leaking.
_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management", "output_format", "output_config",
    "cache_control", "diagnostics", "inference_geo", "speed", "user_profile_id", "workspace_id",
})
_COUNT_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking",
                           "mcp_servers", "context_management", "output_format", "output_config",
                           "cache_control", "speed", "user_profile_id", "workspace_id"})
_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema", "cache_control", "strict",
                        "allowed_callers", "defer_loading", "eager_input_streaming", "input_examples"})
# Allowed keys per content block type (anything else is "Extra inputs are not permitted").
_BLOCK_KEYS: dict[str, frozenset[str] | None] = {
    "text": frozenset({"type", "text", "cache_control", "citations"}),
    "image": frozenset({"type", "source", "cache_control", "transformations"}),
    "document": frozenset({"type", "source", "title", "context", "citations", "cache_control"}),
    "tool_use": frozenset({"type", "id", "name", "input", "cache_control", "caller", "toolset_name"}),
    "tool_result": frozenset({"type", "tool_use_id", "content", "is_error", "cache_control",
                              "toolset_name"}),
    "thinking": frozenset({"type", "thinking", "signature"}),
    "redacted_thinking": frozenset({"type", "data"}),
    "search_result": None, "server_tool_use": None, "web_search_tool_result": None,
}
_TAGS = ", ".join(f"'{t}'" for t in _BLOCK_KEYS)
_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_SERVER_TOOL = re.compile(r"^[a-z_]+_\d{8}$")
_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


def _extra(path: str):
    return anthropic_invalid(f"{path}: Extra inputs are not permitted")


def _required(path: str):
    return anthropic_invalid(f"{path}: Field required")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_block(i: int, j: int, role: str, b: Any) -> None:
    p = f"messages.{i}.content.{j}"
    if not isinstance(b, dict):
        raise anthropic_invalid(f"{p}: Input should be a valid dictionary or object to extract fields from")
    t = b.get("type")
    if t is None:
        raise anthropic_invalid(f"{p}: Unable to extract tag using discriminator 'type'")
    if t not in _BLOCK_KEYS:
        raise anthropic_invalid(f"{p}: Input tag '{t}' found using 'type' does not match any of the "
                                f"expected tags: {_TAGS}")
    allowed = _BLOCK_KEYS[t]
    if allowed is not None:
        for k in b:
            if k not in allowed:
                raise _extra(f"{p}.{t}.{k}")
    if t == "text":
        if not isinstance(b.get("text"), str):
            raise _required(f"{p}.text.text")
        if not b["text"]:
            raise anthropic_invalid("messages: text content blocks must be non-empty")
    elif t == "image":
        src = b.get("source")
        if not isinstance(src, dict):
            raise _required(f"{p}.image.source")
        if src.get("type") == "base64":
            if src.get("media_type") not in _MEDIA_TYPES:
                raise anthropic_invalid(f"{p}.image.source.base64.media_type: Input should be "
                                        "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
            if not isinstance(src.get("data"), str):
                raise _required(f"{p}.image.source.base64.data")
        elif src.get("type") == "url":
            if not isinstance(src.get("url"), str):
                raise _required(f"{p}.image.source.url.url")
        else:
            raise anthropic_invalid(f"{p}.image.source: Input tag '{src.get('type')}' found using 'type' "
                                    "does not match any of the expected tags: 'base64', 'url', 'file'")
    elif t == "tool_use":
        if role != "assistant":
            raise anthropic_invalid(f"{p}: `tool_use` blocks can only be in `assistant` messages")
        for k in ("id", "name", "input"):
            if k not in b:
                raise _required(f"{p}.tool_use.{k}")
        if not isinstance(b["input"], dict):
            raise anthropic_invalid(f"{p}.tool_use.input: Input should be a valid dictionary")
    elif t == "tool_result":
        if role != "user":
            raise anthropic_invalid(f"{p}: `tool_result` blocks can only be in `user` messages")
        if not isinstance(b.get("tool_use_id"), str):
            raise _required(f"{p}.tool_result.tool_use_id")
        c = b.get("content")
        if c is not None and not isinstance(c, (str, list)):
            raise anthropic_invalid(f"{p}.tool_result.content: Input should be a valid list")
    elif t == "thinking":
        if role != "assistant":
            raise anthropic_invalid(f"{p}: `thinking` blocks can only be in `assistant` messages")
        if not isinstance(b.get("thinking"), str):
            raise _required(f"{p}.thinking.thinking")
        if not isinstance(b.get("signature"), str):
            raise _required(f"{p}.thinking.signature")
        if not verify_thinking(b["thinking"], b["signature"]):
            raise anthropic_invalid(f"{p}: Invalid `signature` in `thinking` block")
    elif t == "redacted_thinking":
        if not isinstance(b.get("data"), str):
            raise _required(f"{p}.redacted_thinking.data")


def _check_message(i: int, m: Any, last: bool) -> None:
    if not isinstance(m, dict):
        raise anthropic_invalid(f"messages.{i}: Input should be a valid dictionary")
    for k in m:
        if k not in ("role", "content"):
            raise _extra(f"messages.{i}.{k}")
    if "role" not in m:
        raise _required(f"messages.{i}.role")
    role = m["role"]
    if role not in ("user", "assistant"):
        raise anthropic_invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    if "content" not in m:
        raise _required(f"messages.{i}.content")
    content = m["content"]
    if not isinstance(content, (str, list)):
        raise anthropic_invalid(f"messages.{i}.content: Input should be a valid list")
    if not content and not (last and role == "assistant"):
        raise anthropic_invalid(f"messages.{i}: all messages must have non-empty content except for "
                                "the optional final assistant message")
    if isinstance(content, list):
        for j, b in enumerate(content):
            _check_block(i, j, role, b)


def _blocks(m: dict) -> list[dict]:
    c = m.get("content")
    return c if isinstance(c, list) else []


def _unexpected(i: int, j: int, tool_use_id: str):
    return anthropic_invalid(
        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
        f"{tool_use_id}. Each `tool_result` block must have a corresponding `tool_use` block in the "
        "previous message.")


def _check_tool_pairing(messages: list) -> None:
    """tool_result blocks answer the previous assistant's tool_use ids, first in the next message."""
    for i, m in enumerate(messages):  # every result names a tool_use of the message before it
        if m["role"] != "user":
            continue
        prev = messages[i - 1] if i > 0 else None
        prev_ids = ({b["id"] for b in _blocks(prev) if b.get("type") == "tool_use"}
                    if prev is not None and prev["role"] == "assistant" else set())
        for j, b in enumerate(_blocks(m)):
            if b.get("type") == "tool_result" and b["tool_use_id"] not in prev_ids:
                raise _unexpected(i, j, b["tool_use_id"])
    for i, m in enumerate(messages):  # every tool_use is answered at the head of the next message
        ids = [b["id"] for b in _blocks(m) if b.get("type") == "tool_use"] if m["role"] == "assistant" else []
        if not ids:
            continue
        answered: set[str] = set()
        nxt = messages[i + 1] if i + 1 < len(messages) else None
        if nxt is not None and nxt["role"] == "user":
            for b in _blocks(nxt):  # only the leading run of tool_result blocks counts
                if b.get("type") != "tool_result":
                    break
                answered.add(b["tool_use_id"])
        missing = [x for x in ids if x not in answered]
        if missing:
            raise anthropic_invalid(
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message.")


def _check_thinking_turn(messages: list) -> None:
    """With thinking on, the assistant turn before trailing tool results must open with thinking."""
    if len(messages) < 2:
        return
    last, prev = messages[-1], messages[-2]
    first = _blocks(last)[:1]
    if last["role"] != "user" or not first or first[0].get("type") != "tool_result":
        return
    blocks = _blocks(prev)
    head = blocks[0].get("type") if blocks else "text"
    if prev["role"] == "assistant" and head not in ("thinking", "redacted_thinking"):
        raise anthropic_invalid(
            f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            f"but found `{head}`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` "
            "blocks). We recommend you include thinking blocks from previous turns. To avoid this "
            f"requirement, disable `thinking`. Please consult our documentation at {_THINKING_DOCS}")


def _check_tools(body: dict) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise anthropic_invalid("tools: Input should be a valid list")
        for j, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise anthropic_invalid(f"tools.{j}: Input should be a valid dictionary")
            ttype = tool.get("type")
            if ttype not in (None, "custom"):
                if not isinstance(ttype, str) or not _SERVER_TOOL.match(ttype):
                    raise anthropic_invalid(f"tools.{j}: Input tag '{ttype}' found using 'type' does not "
                                            "match any of the expected tags: 'custom', 'bash_20250124', "
                                            "'text_editor_20250124', 'web_search_20250305', ...")
                continue
            for k in tool:
                if k not in _TOOL_KEYS:
                    raise _extra(f"tools.{j}.custom.{k}")
            for k in ("name", "input_schema"):
                if k not in tool:
                    raise _required(f"tools.{j}.custom.{k}")
            if not isinstance(tool["name"], str) or not _TOOL_NAME.match(tool["name"]):
                raise anthropic_invalid(f"tools.{j}.custom.name: String should match pattern "
                                        "'^[a-zA-Z0-9_-]{1,128}$'")
            if not isinstance(tool["input_schema"], dict):
                raise anthropic_invalid(f"tools.{j}.custom.input_schema: Input should be a valid dictionary")
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict):
            raise anthropic_invalid("tool_choice: Input should be a valid dictionary or object to "
                                    "extract fields from")
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            raise anthropic_invalid(f"tool_choice: Input tag '{choice.get('type')}' found using 'type' "
                                    "does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise _required("tool_choice.tool.name")


def _check_thinking(body: dict, count_only: bool) -> bool:
    """Validate `thinking`; True when it is enabled."""
    th = body.get("thinking")
    if th is None:
        return False
    if not isinstance(th, dict) or th.get("type") not in ("enabled", "disabled", "adaptive"):
        raise anthropic_invalid("thinking: Input tag found using 'type' does not match any of the "
                                "expected tags: 'enabled', 'disabled', 'adaptive'")
    if th["type"] == "disabled":
        return False
    if th["type"] == "enabled":
        budget = th.get("budget_tokens")
        if budget is None:
            raise _required("thinking.enabled.budget_tokens")
        if not _is_int(budget):
            raise anthropic_invalid("thinking.enabled.budget_tokens: Input should be a valid integer")
        if budget < 1024:
            raise anthropic_invalid("thinking.enabled.budget_tokens: Input should be greater than or "
                                    "equal to 1024")
        if not count_only and body["max_tokens"] <= budget:
            raise anthropic_invalid("`max_tokens` must be greater than `thinking.budget_tokens`. Please "
                                    f"consult our documentation at {_THINKING_DOCS}"
                                    "#max-tokens-and-context-window-size")
    if body.get("temperature") is not None and body["temperature"] != 1:
        raise anthropic_invalid("`temperature` may only be set to 1 when thinking is enabled. Please "
                                f"consult our documentation at {_THINKING_DOCS}#feature-compatibility")
    if body.get("top_k") is not None:
        raise anthropic_invalid("`top_k` is not supported when thinking is enabled. Please consult our "
                                f"documentation at {_THINKING_DOCS}#feature-compatibility")
    return True


def _check_scalars(body: dict, count_only: bool) -> None:
    if not count_only:
        if "max_tokens" not in body:
            raise _required("max_tokens")
        mt = body["max_tokens"]
        if not _is_int(mt):
            raise anthropic_invalid("max_tokens: Input should be a valid integer")
        if mt < 1:
            raise anthropic_invalid("max_tokens: Input should be greater than or equal to 1")
    system = body.get("system")
    if system is not None:
        if isinstance(system, list):
            for j, b in enumerate(system):
                if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
                    raise anthropic_invalid(f"system.{j}: Input should be a valid text block")
                for k in b:
                    if k not in _BLOCK_KEYS["text"]:
                        raise _extra(f"system.{j}.{k}")
        elif not isinstance(system, str):
            raise anthropic_invalid("system: Input should be a valid string")
    md = body.get("metadata")
    if md is not None:
        if not isinstance(md, dict):
            raise anthropic_invalid("metadata: Input should be a valid dictionary")
        for k in md:
            if k != "user_id":
                raise _extra(f"metadata.{k}")
        if md.get("user_id") is not None and not isinstance(md["user_id"], str):
            raise anthropic_invalid("metadata.user_id: Input should be a valid string")
    ss = body.get("stop_sequences")
    if ss is not None and (not isinstance(ss, list) or not all(isinstance(s, str) for s in ss)):
        raise anthropic_invalid("stop_sequences: Input should be a valid list")
    t = body.get("temperature")
    if t is not None:
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise anthropic_invalid("temperature: Input should be a valid number")
        if not 0 <= t <= 1:
            raise anthropic_invalid("temperature: Input should be less than or equal to 1"
                                    if t > 1 else "temperature: Input should be greater than or equal to 0")
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise anthropic_invalid("stream: Input should be a valid boolean")


def check_anthropic(body: Any, *, count_only: bool = False) -> None:
    """Raise `ApiError` (400, Anthropic's wording) if the request would be refused upstream."""
    if not isinstance(body, dict):
        raise anthropic_invalid("There was an issue with the request body: the body must be a JSON object")
    for k in body:
        if k not in (_COUNT_FIELDS if count_only else _FIELDS):
            raise _extra(k)
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _required("model")
    _check_scalars(body, count_only)
    messages = body.get("messages")
    if messages is None:
        raise _required("messages")
    if not isinstance(messages, list):
        raise anthropic_invalid("messages: Input should be a valid list")
    if not messages:
        raise anthropic_invalid("messages: at least one message is required")
    for i, m in enumerate(messages):
        _check_message(i, m, i == len(messages) - 1)
    if messages[0]["role"] != "user":
        raise anthropic_invalid('messages: first message must use the "user" role')
    _check_tool_pairing(messages)
    _check_tools(body)
    if _check_thinking(body, count_only):
        _check_thinking_turn(messages)


def input_tokens(body: dict) -> int:
    """Rough prompt size: words in system, messages and tool definitions."""
    return max(count_json_tokens(body.get("system") or "") + count_json_tokens(body.get("messages") or [])
               + count_json_tokens(body.get("tools") or []), 1)


def anthropic_info(body: dict) -> RequestInfo:
    """The reply-relevant facts of a (valid) Anthropic request."""
    last_user = ""
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            last_user = c if isinstance(c, str) else " ".join(
                b.get("text", "") for b in c if isinstance(b, dict) and b.get("type") == "text")
            if last_user:
                break
    th = body.get("thinking")
    return RequestInfo(
        last_user_text=last_user,
        max_tokens=body.get("max_tokens") if _is_int(body.get("max_tokens")) else None,
        stop=list(body.get("stop_sequences") or []),
        thinking=isinstance(th, dict) and th.get("type") in ("enabled", "adaptive"),
        input_tokens=input_tokens(body),
    )
