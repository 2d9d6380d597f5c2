"""Script steps: what a test can ask the emulator to do for one request."""
from __future__ import annotations

from typing import Any

STEP_KEYS = frozenset({
    "status",                    # answer with this HTTP error status (provider's error body)
    "error",                     # {"message", "type", "code", "param", "retry_delay"} for status /
                                 # error events (Gemini: type = status name, retry_delay = RetryInfo);
                                 # `{key}` in message/code/param = the key the request presented
    "body",                      # raw error body (str or JSON) instead of the provider's shape
    "headers",                   # extra response headers (e.g. retry-after)
    "delay",                     # seconds to wait before answering
    "chunk_delay",               # seconds to wait between stream frames
    "chunks",                    # number of text fragments in the stream
    "reply",                     # the reply content (see REPLY_KEYS)
    "abort_after_chunks",        # close the connection after N stream frames
    "error_event_after_chunks",  # send an in-stream error after N stream frames
    "interleave",                # interleave parallel tool-call fragments (OpenAI streams)
})
REPLY_KEYS = frozenset({
    "text", "tool_calls", "thinking", "refusal", "usage",
    "json",           # a JSON value to answer with, as structured output the request asked for
                      # (checked against the request's schema; see plan.structured_reply)
    "stop_reason",    # Anthropic stop_reason override (e.g. "pause_turn")
    "finish_reason",  # OpenAI finish_reason override (e.g. "content_filter"); an upper-case
                      # value is Gemini's finishReason (e.g. "RECITATION")
})
TOOL_CALL_KEYS = frozenset({
    "id", "name", "arguments",
    "offered",   # true: call a tool the request offered, as a model would: `name` (or the first
                 # offered of a list of names) must be one, and `arguments` must fit its schema
})
ERROR_KEYS = frozenset({"message", "type", "code", "param", "retry_delay"})
KEY_PLACEHOLDER = "{key}"
KEYED_ERROR_FIELDS = ("message", "code", "param")   # where `{key}` is replaced


def with_key(step: dict, key: str) -> dict:
    """The step with `{key}` in its error's message, code and param replaced by `key`, the
    credential the request presented (an upstream that echoes a key into its error)."""
    err = step.get("error")
    if not err or not any(isinstance(err.get(f), str) and KEY_PLACEHOLDER in err[f]
                          for f in KEYED_ERROR_FIELDS):
        return step
    err = {k: v.replace(KEY_PLACEHOLDER, key) if k in KEYED_ERROR_FIELDS and isinstance(v, str)
           else v for k, v in err.items()}
    return {**step, "error": err}


def validate_step(step: Any) -> dict:
    """Check a step's shape and return it; unknown keys raise so typos fail loudly."""
    if not isinstance(step, dict):
        raise ValueError(f"a script step must be an object, got {step!r}")
    unknown = set(step) - STEP_KEYS
    if unknown:
        raise ValueError(f"unknown script step keys {sorted(unknown)}; known: {sorted(STEP_KEYS)}")
    if "status" in step and not (isinstance(step["status"], int) and 400 <= step["status"] <= 599):
        raise ValueError(f"step status must be an int 400..599, got {step['status']!r}")
    for key in ("delay", "chunk_delay"):
        if key in step and not (isinstance(step[key], (int, float)) and step[key] >= 0):
            raise ValueError(f"step {key} must be a non-negative number")
    for key in ("chunks", "abort_after_chunks", "error_event_after_chunks"):
        if key in step and not (isinstance(step[key], int) and step[key] >= 0):
            raise ValueError(f"step {key} must be a non-negative int")
    err = step.get("error")
    if err is not None:
        if not isinstance(err, dict) or set(err) - ERROR_KEYS:
            raise ValueError(f"step error must be an object with keys among {sorted(ERROR_KEYS)}, "
                             f"got {err!r}")
        for key, value in err.items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"step error.{key} must be a string or null, got {value!r}")
    reply = step.get("reply")
    if reply is not None:
        if not isinstance(reply, dict):
            raise ValueError("step reply must be an object")
        unknown = set(reply) - REPLY_KEYS
        if unknown:
            raise ValueError(f"unknown reply keys {sorted(unknown)}; known: {sorted(REPLY_KEYS)}")
        for call in reply.get("tool_calls") or []:
            if not isinstance(call, dict) or "name" not in call or set(call) - TOOL_CALL_KEYS:
                raise ValueError(f"a tool call needs name (and optional id, arguments, "
                                 f"offered): {call!r}")
            names = call["name"]
            if call.get("offered") and isinstance(names, list):
                if not names or not all(isinstance(n, str) for n in names):
                    raise ValueError(f"an offered call's name is a string or a list of them: "
                                     f"{call!r}")
            elif not isinstance(names, str):
                raise ValueError(f"a tool call's name is a string (a list needs offered): "
                                 f"{call!r}")
    return step
