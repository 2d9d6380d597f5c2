"""Responses tools <-> canonical function tools: what every tool type a client may send
becomes, and how the model's calls map back to the item types the client defined.

`function` stays a function; `namespace` tools are flattened into function tools named
`<namespace>__<name>` (calls map back to items carrying `namespace`); `custom` tools (free
text, optionally a grammar) become a function taking one string `input`; a client-executed
`tool_search` becomes a function named `tool_search`. Every other type (web_search,
file_search, code_interpreter, computer_use, image_generation, mcp, local_shell, ...) is
carried as a provider-native tool, which upstreams that cannot run it drop and report.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.errors import echo, invalid_request
from switchyard.common.json_object import parse_json_object
from switchyard.common.proto import chat_pb2

# The one parameter of a custom tool's function form. Closed (additionalProperties false)
# because the Responses API makes function tools strict by default and refuses open schemas.
CUSTOM_INPUT = "input"
CUSTOM_SCHEMA: dict[str, Any] = {"type": "object",
                                 "properties": {CUSTOM_INPUT: {"type": "string"}},
                                 "required": [CUSTOM_INPUT], "additionalProperties": False}
# Function tools the gateway makes out of custom and tool_search tools are sent back to a
# Responses upstream with strict off: their schemas are the client's, not written for strict.
NOT_STRICT = orjson.dumps({"strict": False})
TOOL_SEARCH = "tool_search"
_TOOL_SEARCH_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"query": {"type": "string",
                                               "description": "What the tools should do"}},
    "required": ["query"], "additionalProperties": False}
_TOOL_SEARCH_DESCRIPTION = "Search for more tools by what they do; found tools become callable."
# Function names every upstream accepts: OpenAI's pattern and length (Anthropic allows 128).
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
MAX_NAME = 64
_FUNCTION_KEYS = frozenset({"type", "name", "description", "parameters"})
# How the API names its tool types (`web_search_preview`, `computer_use_preview`, ...): a
# type of this shape the gateway does not know is carried (and reported); any other is a 400.
_TOOL_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class Origin:
    """What a canonical tool name stands for in the client's own terms."""
    kind: str            # "function", "custom" or "tool_search"
    name: str            # the client's name for it (inside its namespace)
    namespace: str = ""


@dataclass
class ToolMap:
    """Canonical tool name -> the client's tool, for the tools that are not plain functions."""
    origins: dict[str, Origin] = field(default_factory=dict)

    def origin(self, canonical: str) -> Origin:
        return self.origins.get(canonical) or Origin("function", canonical)


def flat_name(namespace: str, name: str) -> str:
    """A namespaced tool's function name: `<namespace>__<name>`, fit for every upstream
    (other characters become `_`; a name too long is cut and keeps a hash of the whole)."""
    flat = _NAME_CHARS.sub("_", f"{namespace}__{name}" if namespace else name)
    if len(flat) <= MAX_NAME:
        return flat
    digest = hashlib.sha256(flat.encode()).hexdigest()[:8]
    return f"{flat[:MAX_NAME - 9]}_{digest}"


def canonical_name(kind: str, name: str, namespace: str = "") -> str:
    """The canonical tool name of a client tool (and of the call items that name it)."""
    if kind == TOOL_SEARCH:
        return TOOL_SEARCH
    return flat_name(namespace, name) if namespace else name


@dataclass
class DecodedTools:
    """A tools array decoded: canonical tools, what the Responses object echoes, the map."""
    tools: list[chat_pb2.Tool] = field(default_factory=list)
    echo: list[dict[str, Any]] = field(default_factory=list)
    map: ToolMap = field(default_factory=ToolMap)

    def add(self, tool: chat_pb2.Tool, origin: Origin | None = None) -> None:
        """Add a canonical tool (the first of a name wins: a later duplicate is skipped)."""
        if tool.type == "function" and any(t.name == tool.name and t.type == "function"
                                           for t in self.tools):
            return
        self.tools.append(tool)
        if origin is not None and (origin.kind != "function" or origin.namespace):
            self.map.origins[tool.name] = origin


def decode_tools(raw: Any, param: str, into: DecodedTools) -> None:
    """A Responses `tools` array (or one loaded by tool search) into `into`."""
    if not isinstance(raw, list):
        raise invalid_request("tools must be an array", param)
    for i, tool in enumerate(raw):
        _decode_tool(tool, f"{param}[{i}]", into)


def _decode_tool(tool: Any, param: str, into: DecodedTools) -> None:
    if not isinstance(tool, dict):
        raise invalid_request("each tool must be an object", param)
    kind = tool.get("type")
    if not isinstance(kind, str) or not kind:
        raise invalid_request("each tool needs a 'type'", f"{param}.type")
    if kind == "function":
        into.add(_function(tool, param, ""), Origin("function", tool["name"]))
        into.echo.append(_echo_function(tool))
    elif kind == "custom":
        into.add(_custom(tool, param, ""), Origin("custom", tool["name"]))
        into.echo.append(dict(tool))
    elif kind == "namespace":
        _namespace(tool, param, into)
        into.echo.append(dict(tool))
    elif kind == TOOL_SEARCH and tool.get("execution") == "client":
        into.add(_tool_search(tool, param), Origin(TOOL_SEARCH, TOOL_SEARCH))
        into.echo.append(dict(tool))
    elif _TOOL_TYPE.fullmatch(kind) is None:
        raise invalid_request(f"tool type '{echo(kind)}' is not a Responses tool type",
                              f"{param}.type")
    else:
        # A tool the API runs itself (web_search, file_search, mcp, ...): carried as a
        # provider-native tool; an upstream that cannot run it drops it and says so.
        rest = {k: v for k, v in tool.items() if k != "type"}
        into.tools.append(chat_pb2.Tool(type=kind, extra_json=orjson.dumps(rest) if rest
                                        else b""))
        into.echo.append(dict(tool))


def _str(tool: dict[str, Any], key: str, param: str, *, required: bool = False) -> str:
    value = tool.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise invalid_request(f"'{key}' must be a non-empty string" if required
                              else f"'{key}' must be a string", f"{param}.{key}")
    return value


def _function(tool: dict[str, Any], param: str, namespace: str) -> chat_pb2.Tool:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise invalid_request("Missing required parameter: function tools take a top-level "
                              "'name' in the Responses API", f"{param}.name")
    out = chat_pb2.Tool(name=canonical_name("function", name, namespace), type="function",
                        description=_str(tool, "description", param))
    params = tool.get("parameters")
    if params is not None:
        if not isinstance(params, dict):
            raise invalid_request("parameters must be a JSON Schema object",
                                  f"{param}.parameters")
        out.parameters_json = orjson.dumps(params).decode()
    extra = {k: v for k, v in tool.items() if k not in _FUNCTION_KEYS}
    if extra:
        out.extra_json = orjson.dumps(extra)  # strict, defer_loading, ...
    return out


def _custom(tool: dict[str, Any], param: str, namespace: str) -> chat_pb2.Tool:
    name = _str(tool, "name", param, required=True)
    description = _str(tool, "description", param)
    fmt = tool.get("format")
    if fmt is not None and not isinstance(fmt, dict):
        raise invalid_request("format must be an object", f"{param}.format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar":
        # The model must know the grammar the client would have enforced.
        syntax = str(fmt.get("syntax") or "lark")
        definition = str(fmt.get("definition") or "")
        description = (f"{description}\n\n" if description else "") + (
            f"The `{CUSTOM_INPUT}` string must follow this {syntax} grammar:\n{definition}")
    return chat_pb2.Tool(name=canonical_name("custom", name, namespace), type="function",
                         description=description, extra_json=NOT_STRICT,
                         parameters_json=orjson.dumps(CUSTOM_SCHEMA).decode())


def _namespace(tool: dict[str, Any], param: str, into: DecodedTools) -> None:
    namespace = _str(tool, "name", param, required=True)
    about = _str(tool, "description", param)
    inner = tool.get("tools")
    if not isinstance(inner, list):
        raise invalid_request("namespace tools need a 'tools' array", f"{param}.tools")
    for j, t in enumerate(inner):
        p = f"{param}.tools[{j}]"
        if not isinstance(t, dict) or t.get("type") not in ("function", "custom"):
            raise invalid_request("a namespace holds function and custom tools", f"{p}.type")
        kind = t["type"]
        out = _function(t, p, namespace) if kind == "function" else _custom(t, p, namespace)
        if about:
            out.description = (f"{out.description}\n\n" if out.description else "") + \
                f"({namespace}: {about})"
        into.add(out, Origin(kind, t["name"], namespace))


def _tool_search(tool: dict[str, Any], param: str) -> chat_pb2.Tool:
    params = tool.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise invalid_request("parameters must be a JSON Schema object", f"{param}.parameters")
    return chat_pb2.Tool(name=TOOL_SEARCH, type="function",
                         description=_str(tool, "description", param) or _TOOL_SEARCH_DESCRIPTION,
                         extra_json=NOT_STRICT,
                         parameters_json=orjson.dumps(params or _TOOL_SEARCH_SCHEMA).decode())


def _echo_function(tool: dict[str, Any]) -> dict[str, Any]:
    """A function tool as the API echoes it (strict defaults to true in the Responses API)."""
    return {"type": "function", "name": tool["name"], "description": tool.get("description"),
            "parameters": tool.get("parameters"), "strict": tool.get("strict", True)}


# ---- tool_choice -------------------------------------------------------------------------
def decode_tool_choice(choice: Any, req: chat_pb2.ChatRequest, tools: DecodedTools,
                       dropped: list[str]) -> None:
    """`tool_choice` -> the canonical mode; `allowed_tools` narrows the tools themselves; a
    hosted tool's choice (which no upstream here can honour) is dropped and reported."""
    _TC = chat_pb2.ToolChoice
    if isinstance(choice, str):
        if choice not in mappings.OPENAI_TOOL_CHOICE:
            raise invalid_request("tool_choice must be 'auto', 'none', 'required' or an "
                                  "object", "tool_choice")
        req.tool_choice.mode = mappings.OPENAI_TOOL_CHOICE[choice]
        return
    if not isinstance(choice, dict):
        raise invalid_request("tool_choice must be a string or an object", "tool_choice")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request("tool_choice.name is required", "tool_choice.name")
        namespace = choice.get("namespace")
        req.tool_choice.mode = _TC.MODE_NAMED
        req.tool_choice.name = canonical_name(
            kind, name, namespace if isinstance(namespace, str) else "")
    elif kind == "allowed_tools":
        mode = choice.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise invalid_request("tool_choice.mode must be 'auto' or 'required'",
                                  "tool_choice.mode")
        req.tool_choice.mode = mappings.OPENAI_TOOL_CHOICE[mode]
        allowed = choice.get("tools")
        if not isinstance(allowed, list):
            raise invalid_request("tool_choice.tools must be an array", "tool_choice.tools")
        names = {canonical_name(str(t.get("type")), str(t.get("name")),
                                str(t.get("namespace") or ""))
                 for t in allowed if isinstance(t, dict) and t.get("name")}
        keep = [t for t in tools.tools if t.type != "function" or t.name in names]
        del req.tools[:]
        req.tools.extend(keep)
    elif isinstance(kind, str) and kind:
        dropped.append("tool_choice")   # a hosted tool's choice: that tool is not run here
        req.tool_choice.mode = _TC.MODE_AUTO
    else:
        raise invalid_request("tool_choice needs a 'type'", "tool_choice.type")


# ---- calls back to items -----------------------------------------------------------------
def call_item(tc: chat_pb2.ToolCallPart, origin: Origin, item_id: str,
              status: str) -> dict[str, Any]:
    """A canonical tool call as the output item of the tool the client defined."""
    if origin.kind == "custom":
        item: dict[str, Any] = {"id": item_id, "type": "custom_tool_call", "status": status,
                                "call_id": tc.id, "name": origin.name,
                                "input": custom_input(tc.arguments_json)}
    elif origin.kind == TOOL_SEARCH:
        return {"id": item_id, "type": "tool_search_call", "status": status,
                "call_id": tc.id, "execution": "client",
                "arguments": parse_json_object(tc.arguments_json)}
    else:
        item = {"id": item_id, "type": "function_call", "status": status, "call_id": tc.id,
                "name": origin.name, "arguments": tc.arguments_json or "{}"}
    if origin.namespace:
        item["namespace"] = origin.namespace
    return item


def item_prefix(origin: Origin) -> str:
    """The id prefix of a call item of this origin."""
    return {"custom": "ctc", TOOL_SEARCH: "tsc"}.get(origin.kind, "fc")


def custom_input(arguments_json: str) -> str:
    """A custom tool's raw input from its function form's arguments (`{"input": "..."}`);
    arguments of any other shape are passed on as they are."""
    args = parse_json_object(arguments_json)
    value = args.get(CUSTOM_INPUT)
    if isinstance(value, str):
        return value
    return arguments_json

