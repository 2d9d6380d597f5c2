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
# The beta under which `messages` may hold `{"role": "system"}` turns (Claude Code sends it).
MID_CONVERSATION_BETA = "mid-conversation-tool-changes-2026-07-01"
# The beta under which a message may carry its own `output_config` {effort} (Claude Code sends
# it for current models; without it the field is "Extra inputs are not permitted").
PER_TURN_BETA = "per-turn-control-2026-07-01"
# `context_management.edits` strategies (beta context-management-2025-06-27).
_EDITS = ("clear_tool_uses_20250919", "clear_thinking_20251015", "compact_20260112")
_EFFORTS = ("low", "medium", "high", "xhigh", "max")
_DISPLAY = ("summarized", "omitted")
# Keywords constrained decoding cannot enforce: the API refuses them in output_config.format.
_UNSUPPORTED_SCHEMA = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                 "multipleOf", "minLength", "maxLength", "maxItems",
                                 "uniqueItems", "patternProperties", "minProperties",
                                 "maxProperties"})


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


def _check_message(i: int, m: Any, last: bool, betas: frozenset[str] = frozenset()) -> None:
    if not isinstance(m, dict):
        raise anthropic_invalid(f"messages.{i}: Input should be a valid dictionary")
    role = m.get("role")
    if role == "system" and MID_CONVERSATION_BETA in betas:
        _check_system_message(i, m, betas)
        return
    for k in m:
        if k not in ("role", "content"):
            raise _extra(f"messages.{i}.{k}")
    if "role" not in m:
        raise _required(f"messages.{i}.role")
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


def _check_turn_config(i: int, config: Any) -> None:
    """A system turn's own `output_config` (per-turn control beta): that turn's effort."""
    if not isinstance(config, dict):
        raise anthropic_invalid(f"messages.{i}.output_config: Input should be a valid dictionary")
    for k in config:
        if k != "effort":
            raise _extra(f"messages.{i}.output_config.{k}")
    if config.get("effort") is not None and config["effort"] not in _EFFORTS:
        raise anthropic_invalid(f"messages.{i}.output_config.effort: Input should be 'low', "
                                "'medium', 'high', 'xhigh' or 'max'")


_MAX_BREAKPOINTS = 4


def _check_cache_breakpoints(body: dict) -> None:
    """At most four `cache_control` breakpoints across tools, system and message blocks (an
    agent client already spends three; one more added on the way is the limit)."""
    system = body.get("system")
    found = sum(1 for t in body.get("tools") or [] if isinstance(t, dict) and t.get("cache_control"))
    found += sum(1 for b in system if isinstance(b, dict) and b.get("cache_control")) \
        if isinstance(system, list) else 0
    for m in body["messages"]:
        found += sum(1 for b in _blocks(m) if b.get("cache_control"))
    if found > _MAX_BREAKPOINTS:
        raise anthropic_invalid(f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may "
                                f"be provided. Found {found}.")


def _check_context_management(body: dict) -> None:
    """`context_management.edits`: a list of known strategies."""
    cm = body.get("context_management")
    if cm is None:
        return
    if not isinstance(cm, dict):
        raise anthropic_invalid("context_management: Input should be a valid dictionary")
    for k in cm:
        if k != "edits":
            raise _extra(f"context_management.{k}")
    edits = cm.get("edits")
    if edits is None:
        return
    if not isinstance(edits, list):
        raise anthropic_invalid("context_management.edits: Input should be a valid list")
    for j, edit in enumerate(edits):
        t = edit.get("type") if isinstance(edit, dict) else None
        if t not in _EDITS:
            raise anthropic_invalid(f"context_management.edits.{j}: Input tag '{t}' found using "
                                    "'type' does not match any of the expected tags: "
                                    + ", ".join(f"'{e}'" for e in _EDITS))


def _check_system_message(i: int, m: dict, betas: frozenset[str] = frozenset()) -> None:
    """A mid-conversation system turn (beta): text and tool changes, never first; its own
    `output_config` under the per-turn beta, and `clear_at`."""
    for k in m:
        if k == "output_config" and PER_TURN_BETA in betas:
            _check_turn_config(i, m[k])
        elif k == "clear_at":
            if m[k] not in (None, "next_user_message", "never"):
                raise anthropic_invalid(f"messages.{i}.clear_at: Input should be "
                                        "'next_user_message' or 'never'")
        elif k not in ("role", "content"):
            raise _extra(f"messages.{i}.{k}")
    if i == 0:
        raise anthropic_invalid('messages: first message must use the "user" role')
    if "content" not in m and isinstance(m.get("output_config"), dict):
        return  # a turn that only sets its effort
    content = m.get("content")
    if isinstance(content, str):
        if not content:
            raise anthropic_invalid(f"messages.{i}: system messages must have non-empty content")
        return
    if not isinstance(content, list) or not content:
        raise anthropic_invalid(f"messages.{i}.content: Input should be a valid list")
    for j, b in enumerate(content):
        if isinstance(b, dict) and b.get("type") in _TOOL_CHANGES:
            _check_tool_change(i, j, b)
            continue
        if not isinstance(b, dict) or b.get("type") != "text":
            raise anthropic_invalid(f"messages.{i}.content.{j}: system messages may only hold "
                                    "text blocks")
        _check_block(i, j, "system", b)


_TOOL_CHANGES = ("tool_addition", "tool_removal")


def _check_tool_change(i: int, j: int, b: dict) -> None:
    """`tool_addition` / `tool_removal` in a system turn: a reference to a tool by name."""
    p = f"messages.{i}.content.{j}.{b['type']}"
    for k in b:
        if k not in ("type", "tool", "cache_control"):
            raise _extra(f"{p}.{k}")
    tool = b.get("tool")
    if not isinstance(tool, dict):
        raise _required(f"{p}.tool")
    if tool.get("type") == "tool_reference":
        if not isinstance(tool.get("name"), str):
            raise _required(f"{p}.tool.tool_reference.name")
    elif tool.get("type") not in ("mcp_tool_reference", "mcp_toolset_reference",
                                  "tool_definition"):
        raise anthropic_invalid(f"{p}.tool: Input tag '{tool.get('type')}' found using 'type' "
                                "does not match any of the expected tags: 'tool_reference', "
                                "'mcp_tool_reference', 'mcp_toolset_reference', "
                                "'tool_definition'")


def offered_tools(body: dict) -> dict[str, dict | None]:
    """The tools the model can call at the end of the conversation: those in `tools` without
    `defer_loading`, plus tools a system turn added (or a tool search referenced), less those
    a later system turn removed. Name -> input schema (None for server tools)."""
    declared = {t["name"]: t for t in body.get("tools") or []
                if isinstance(t, dict) and isinstance(t.get("name"), str)}
    offered = {n: t.get("input_schema") for n, t in declared.items() if not t.get("defer_loading")}
    for m in body.get("messages") or []:
        for b in _blocks(m) if isinstance(m, dict) else []:
            t = b.get("type") if isinstance(b, dict) else None
            ref = b.get("tool") if t in _TOOL_CHANGES else None
            name = ref.get("name") if isinstance(ref, dict) else None
            if t == "tool_result" and isinstance(b.get("content"), list):
                for c in b["content"]:  # tool search results load deferred tools by reference
                    if isinstance(c, dict) and c.get("type") == "tool_reference" and \
                            c.get("tool_name") in declared:
                        offered[c["tool_name"]] = declared[c["tool_name"]].get("input_schema")
            elif t == "tool_addition" and name in declared:
                offered[name] = declared[name].get("input_schema")
            elif t == "tool_removal" and name is not None:
                offered.pop(name, None)
    return offered


def _walk_schema(schema: Any, path: str) -> None:
    """Structured outputs' schema rules: objects closed, no constraints it cannot enforce."""
    if isinstance(schema, list):
        for k, v in enumerate(schema):
            _walk_schema(v, f"{path}.{k}")
        return
    if not isinstance(schema, dict):
        return
    for k in schema:
        if k in _UNSUPPORTED_SCHEMA:
            raise anthropic_invalid(f"{path}: JSON schema keyword '{k}' is not supported in "
                                    "structured outputs")
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        raise anthropic_invalid(f"{path}: For 'object' type, 'additionalProperties' must be "
                                "explicitly set to false")
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                _walk_schema(sub, f"{path}.{key}.{name}")
    for key in ("items", "anyOf", "allOf", "oneOf"):
        if key in schema:
            _walk_schema(schema[key], f"{path}.{key}")


def _check_format(fmt: Any, path: str) -> None:
    if not isinstance(fmt, dict):
        raise anthropic_invalid(f"{path}: Input should be a valid dictionary")
    if fmt.get("type") != "json_schema":
        raise anthropic_invalid(f"{path}: Input tag '{fmt.get('type')}' found using 'type' does not "
                                "match any of the expected tags: 'json_schema'")
    for k in fmt:
        if k not in ("type", "schema"):
            raise _extra(f"{path}.json_schema.{k}")
    if not isinstance(fmt.get("schema"), dict):
        raise _required(f"{path}.json_schema.schema")
    _walk_schema(fmt["schema"], f"{path}.schema")


def _check_output(body: dict, betas: frozenset[str]) -> None:
    """`output_config` {format, effort} and the beta's `output_format`."""
    config = body.get("output_config")
    if config is not None:
        if not isinstance(config, dict):
            raise anthropic_invalid("output_config: Input should be a valid dictionary")
        for k in config:
            if k not in ("format", "effort"):
                raise _extra(f"output_config.{k}")
        if config.get("effort") is not None and config["effort"] not in _EFFORTS:
            raise anthropic_invalid("output_config.effort: Input should be 'low', 'medium', "
                                    "'high', 'xhigh' or 'max'")
        if config.get("format") is not None:
            _check_format(config["format"], "output_config.format")
    if body.get("output_format") is not None:
        if isinstance(config, dict) and config.get("format") is not None:
            raise anthropic_invalid("Both output_format and output_config.format were provided")
        _check_format(body["output_format"], "output_format")


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
    for k in th:
        if k not in ("type", "budget_tokens", "display"):
            raise _extra(f"thinking.{th['type']}.{k}")
    if th.get("display") is not None and th["display"] not in _DISPLAY:
        raise anthropic_invalid(f"thinking.{th['type']}.display: Input should be 'summarized' "
                                "or 'omitted'")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise anthropic_invalid("Thinking may not be enabled when tool_choice forces tool use.")
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


def check_anthropic(body: Any, *, count_only: bool = False,
                    betas: frozenset[str] = frozenset()) -> None:
    """Raise `ApiError` (400, Anthropic's wording) if the request would be refused upstream
    (`betas`: the request's `anthropic-beta` values)."""
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
        _check_message(i, m, i == len(messages) - 1, betas)
    if messages[0]["role"] != "user":
        raise anthropic_invalid('messages: first message must use the "user" role')
    # Tool pairing and thinking rules read the conversation without its system turns.
    messages = [m for m in messages if m["role"] != "system"]
    _check_tool_pairing(messages)
    _check_tools(body)
    _check_output(body, betas)
    if _check_thinking(body, count_only):
        _check_thinking_turn(messages)
    _check_context_management(body)
    _check_cache_breakpoints(body)


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
    info = RequestInfo(
        last_user_text=last_user,
        max_tokens=body.get("max_tokens") if _is_int(body.get("max_tokens")) else None,
        stop=list(body.get("stop_sequences") or []),
        thinking=isinstance(th, dict) and th.get("type") in ("enabled", "adaptive"),
        input_tokens=input_tokens(body),
        offered_tools=offered_tools(body),
        thinking_omitted=isinstance(th, dict) and th.get("display") == "omitted",
    )
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
    choice = body.get("tool_choice") or {}
    if fmt:
        info.json_mode, info.json_schema = "text", fmt["schema"]
    elif choice.get("type") == "tool":
        info.force_tool(choice.get("name"))
    elif choice.get("type") == "any":
        info.force_any_tool()
    return info
