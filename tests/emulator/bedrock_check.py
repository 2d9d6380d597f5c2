"""Validate a Converse / ConverseStream request the way Bedrock does.

The shapes come from Bedrock Runtime's own service model (botocore's
`bedrock-runtime/2023-09-30/service-2.json`, the definition AWS's SDKs are generated from):
members, required members, unions with exactly one member set, enums, lengths, ranges and
patterns, blobs as base64, in AWS's "validation error detected" wording. On top of them the
conversation rules Converse enforces: a user turn first, alternating roles, no blank text,
toolConfig whenever tool blocks appear, every toolUse answered by the next turn's
toolResults, and Claude's thinking rules (signed reasoning back, budgets).
"""
from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any

import orjson

from tests.emulator.bedrock_sigv4 import aws_error
from tests.emulator.errors import ApiError
from tests.emulator.plan import RequestInfo, count_json_tokens
from tests.emulator.text import verify_thinking

_BEDROCK_NS = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_DOC_NAME = re.compile(r"^[A-Za-z0-9\-()\[\]]+( [A-Za-z0-9\-()\[\]]+)*$")


def validation(message: str) -> ApiError:
    return aws_error(400, "ValidationException", message, _BEDROCK_NS)


@functools.cache
def _shapes() -> dict[str, Any]:
    from botocore.loaders import Loader
    return Loader().load_service_model("bedrock-runtime", "service-2")["shapes"]


def _fail(path: str, constraint: str, value: Any = None) -> ApiError:
    shown = "null" if value is None else (value if isinstance(value, str) else
                                          orjson.dumps(value).decode())[:80]
    at = f" at '{path}'" if path else ""
    return validation(f"1 validation error detected: Value {shown}{at} failed to satisfy "
                      f"constraint: {constraint}")


def _check_shape(name: str, value: Any, path: str) -> None:
    shape = _shapes()[name]
    kind = shape["type"]
    if kind == "structure":
        if shape.get("document"):
            return
        if not isinstance(value, dict):
            raise _fail(path, "Member must be an object", value)
        members = shape["members"]
        for key in value:
            if key not in members or members[key].get("location"):
                raise validation(f"Malformed input request: extraneous key [{key}] is not "
                                 f"permitted{' at ' + repr(path) if path else ''}, please "
                                 "reformat your input and try again.")
        for key in shape.get("required", ()):
            if members[key].get("location") == "uri":
                continue
            if value.get(key) is None:
                raise _fail(f"{path}.{key}".lstrip("."), "Member must not be null")
        set_members = [k for k, v in value.items() if v is not None]
        if shape.get("union") and len(set_members) != 1:
            raise validation(f"1 validation error detected: Value at '{path}' failed to satisfy "
                             "constraint: Member must have exactly one member set (union)")
        for key, item in value.items():
            if item is not None:
                _check_shape(members[key]["shape"], item, f"{path}.{key}".lstrip("."))
    elif kind == "list":
        if not isinstance(value, list):
            raise _fail(path, "Member must be an array", value)
        _length(shape, len(value), path, value)
        for i, item in enumerate(value):
            _check_shape(shape["member"]["shape"], item, f"{path}.{i + 1}.member")
    elif kind == "map":
        if not isinstance(value, dict):
            raise _fail(path, "Member must be an object", value)
        for key, item in value.items():
            _check_shape(shape["value"]["shape"], item, f"{path}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            raise _fail(path, "Member must be a string", value)
        if "enum" in shape and value not in shape["enum"]:
            raise _fail(path, f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]",
                        value)
        _length(shape, len(value), path, value)
        if "pattern" in shape and not re.fullmatch(shape["pattern"], value):
            raise _fail(path, f"Member must satisfy regular expression pattern: "
                              f"{shape['pattern']}", value)
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, "Member must be an integer", value)
        _range(shape, value, path)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, "Member must be a number", value)
        _range(shape, value, path)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(path, "Member must be a boolean", value)
    elif kind == "blob":
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None:
            raise validation(f"Invalid input for '{path}': blobs are base64-encoded strings")
        _length(shape, len(raw), path, "<bytes>")


def _length(shape: dict, n: int, path: str, value: Any) -> None:
    if "min" in shape and n < shape["min"]:
        raise _fail(path, f"Member must have length greater than or equal to {shape['min']}",
                    value)
    if "max" in shape and n > shape["max"]:
        raise _fail(path, f"Member must have length less than or equal to {shape['max']}",
                    value)


def _range(shape: dict, v: float, path: str) -> None:
    if "min" in shape and v < shape["min"]:
        raise _fail(path, f"Member must have value greater than or equal to {shape['min']}", v)
    if "max" in shape and v > shape["max"]:
        raise _fail(path, f"Member must have value less than or equal to {shape['max']}", v)


def check_converse(body: Any, model_id: str, stream: bool) -> dict:
    """Raise the ValidationException Bedrock would send; the body when it is acceptable."""
    if not isinstance(body, dict):
        raise aws_error(400, "SerializationException", "Unable to parse request body",
                        _BEDROCK_NS)
    shape = "ConverseStreamRequest" if stream else "ConverseRequest"
    _check_shape("ConversationalModelId", model_id, "modelId")
    _check_shape(shape, body, "")
    _check_conversation(body)
    if "claude" in model_id:
        _check_claude(body)
    fmt = ((body.get("outputConfig") or {}).get("textFormat") or {}).get("structure") or {}
    schema = (fmt.get("jsonSchema") or {}).get("schema")
    if schema is not None:
        try:
            if not isinstance(orjson.loads(schema), dict):
                raise ValueError
        except (ValueError, orjson.JSONDecodeError):
            raise validation("The provided JSON schema is invalid: it must be a JSON object "
                             "serialized as a string.") from None
    return body


def _check_conversation(body: dict) -> None:
    messages = body.get("messages") or []
    if not messages or messages[0]["role"] != "user":
        raise validation("A conversation must start with a user message. Try again with a "
                         "conversation that starts with a user message.")
    tool_blocks = False
    pending: list[str] = []
    for i, m in enumerate(messages):
        if i and m["role"] == messages[i - 1]["role"]:
            raise validation("A conversation must alternate between user and assistant roles. "
                             "Make sure the conversation alternates between user and assistant "
                             "roles and try again.")
        if not m["content"]:
            raise validation(f"The content field in the Message object at messages.{i} is "
                             "empty. Add a ContentBlock object to the content field and try "
                             "again.")
        results = []
        for j, block in enumerate(m["content"]):
            if "text" in block and not block["text"].strip():
                raise validation(f"The text field in the ContentBlock object at "
                                 f"messages.{i}.content.{j} is blank. Add text to the text "
                                 "field, and try again.")
            if "document" in block and not _DOC_NAME.match(block["document"]["name"]):
                raise validation(f"The format of the value at messages.{i}.content.{j}.document."
                                 "name is invalid. Document names can only contain "
                                 "alphanumeric characters, whitespace characters, hyphens, "
                                 "parentheses, and square brackets, and can't contain more than "
                                 "one consecutive whitespace character.")
            if "toolUse" in block or "toolResult" in block:
                tool_blocks = True
            if "toolResult" in block:
                if m["role"] != "user":
                    raise validation(f"toolResult blocks at messages.{i}.content are only "
                                     "allowed in user messages.")
                results.append(block["toolResult"]["toolUseId"])
        if m["role"] == "user":
            if len(results) > len(pending):
                raise validation(f"The number of toolResult blocks at messages.{i}.content "
                                 "exceeds the number of toolUse blocks of previous turn.")
            unanswered = [t for t in pending if t not in results]
            if unanswered:
                raise validation(f"Expected toolResult blocks at messages.{i}.content for the "
                                 f"following Ids: {', '.join(unanswered)}")
            pending = []
        else:
            pending = [b["toolUse"]["toolUseId"] for b in m["content"] if "toolUse" in b]
    config = body.get("toolConfig")
    if tool_blocks and not config:
        raise validation("The toolConfig field must be defined when using toolUse and "
                         "toolResult content blocks.")
    if config:
        names = {t["toolSpec"]["name"] for t in config["tools"] if "toolSpec" in t}
        choice = (config.get("toolChoice") or {}).get("tool")
        if choice and choice["name"] not in names:
            raise validation(f"The tool {choice['name']} specified in toolChoice was not found "
                             "in toolConfig.tools.")


def _check_claude(body: dict) -> None:
    """Claude's own checks, relayed by Bedrock as "The model returned the following errors"."""
    fields = body.get("additionalModelRequestFields") or {}
    thinking = fields.get("thinking") if isinstance(fields, dict) else None
    enabled = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    inference = body.get("inferenceConfig") or {}

    def model_error(detail: str) -> ApiError:
        return validation(f"The model returned the following errors: {detail}")

    if enabled:
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise model_error("thinking.enabled.budget_tokens: Input should be greater than or "
                              "equal to 1024")
        if budget >= inference.get("maxTokens", 0):
            raise model_error("`max_tokens` must be greater than `thinking.budget_tokens`.")
        if "temperature" in inference:
            raise model_error("`temperature` may only be set to 1 when thinking is enabled.")
    for i, m in enumerate(body["messages"]):
        for j, block in enumerate(m["content"]):
            r = block.get("reasoningContent")
            text = r.get("reasoningText") if isinstance(r, dict) else None
            if text and not verify_thinking(text["text"], text.get("signature") or ""):
                raise model_error(f"messages.{i}.content.{j}: Invalid `signature` in "
                                  "`thinking` block")
    last = next((m for m in reversed(body["messages"]) if m["role"] == "assistant"), None)
    if enabled and last is not None and any("toolUse" in b for b in last["content"]) \
            and "reasoningContent" not in last["content"][0]:
        raise model_error("messages.1.content.0.type: Expected `thinking` or "
                          "`redacted_thinking`, but found `tool_use`. When `thinking` is "
                          "enabled, a final `assistant` message must start with a thinking "
                          "block (preceeding the lastmost set of `tool_use` and `tool_result` "
                          "blocks).")


def _text_of(content: list) -> str:
    return " ".join(b["text"] for b in content if isinstance(b.get("text"), str))


def converse_info(body: dict) -> RequestInfo:
    """The reply-relevant facts of a valid Converse request."""
    messages = body.get("messages") or []
    last_user = next((_text_of(m["content"]) for m in reversed(messages)
                      if m["role"] == "user" and _text_of(m["content"])), "")
    inference = body.get("inferenceConfig") or {}
    fields = body.get("additionalModelRequestFields") or {}
    thinking = isinstance(fields, dict) and (
        (fields.get("thinking") or {}).get("type") == "enabled"
        or (fields.get("reasoningConfig") or {}).get("type") == "enabled")
    fmt = ((body.get("outputConfig") or {}).get("textFormat") or {}).get("structure") or {}
    schema = (fmt.get("jsonSchema") or {}).get("schema")
    return RequestInfo(
        last_user_text=last_user, max_tokens=inference.get("maxTokens"),
        stop=list(inference.get("stopSequences") or []), thinking=thinking,
        input_tokens=max(count_json_tokens(messages) + count_json_tokens(body.get("system") or [])
                         + count_json_tokens(body.get("toolConfig") or {}), 1),
        json_mode="text" if schema else None,
        json_schema=orjson.loads(schema) if schema else None)
