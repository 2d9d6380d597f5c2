"""Mapping tables between the canonical model and the wire-format families (OpenAI,
Anthropic, Gemini).

Every codec imports from here; no codec keeps a table of its own.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from switchyard.common.proto import chat_pb2

SR = chat_pb2.StopReason

# ---- wire formats ------------------------------------------------------------------------
# A provider entry's `interface` -> the wire format its upstream speaks.
INTERFACE_WIRE: dict[str, chat_pb2.WireFormat] = {
    "openai": chat_pb2.WIRE_FORMAT_OPENAI_CHAT,
    "anthropic": chat_pb2.WIRE_FORMAT_ANTHROPIC,
    "gemini": chat_pb2.WIRE_FORMAT_GEMINI,
    "bedrock": chat_pb2.WIRE_FORMAT_BEDROCK_CONVERSE,
    "openai_responses": chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES}

# ---- stop reasons ------------------------------------------------------------------------
OPENAI_FINISH_TO_STOP: dict[str, chat_pb2.StopReason] = {
    "stop": SR.STOP_REASON_END_TURN,
    "length": SR.STOP_REASON_MAX_TOKENS,
    "tool_calls": SR.STOP_REASON_TOOL_USE,
    "function_call": SR.STOP_REASON_TOOL_USE,
    "content_filter": SR.STOP_REASON_REFUSAL,
}
STOP_TO_OPENAI_FINISH: dict[int, str] = {
    SR.STOP_REASON_UNSPECIFIED: "stop",
    SR.STOP_REASON_END_TURN: "stop",
    SR.STOP_REASON_STOP_SEQUENCE: "stop",
    SR.STOP_REASON_PAUSE_TURN: "stop",
    SR.STOP_REASON_MAX_TOKENS: "length",
    SR.STOP_REASON_TOOL_USE: "tool_calls",
    SR.STOP_REASON_REFUSAL: "content_filter",
}
ANTHROPIC_STOP_TO_STOP: dict[str, chat_pb2.StopReason] = {
    "end_turn": SR.STOP_REASON_END_TURN,
    "max_tokens": SR.STOP_REASON_MAX_TOKENS,
    "stop_sequence": SR.STOP_REASON_STOP_SEQUENCE,
    "tool_use": SR.STOP_REASON_TOOL_USE,
    "refusal": SR.STOP_REASON_REFUSAL,
    "pause_turn": SR.STOP_REASON_PAUSE_TURN,
    "model_context_window_exceeded": SR.STOP_REASON_MAX_TOKENS,
}
STOP_TO_ANTHROPIC_STOP: dict[int, str] = {
    SR.STOP_REASON_UNSPECIFIED: "end_turn",
    SR.STOP_REASON_END_TURN: "end_turn",
    SR.STOP_REASON_MAX_TOKENS: "max_tokens",
    SR.STOP_REASON_STOP_SEQUENCE: "stop_sequence",
    SR.STOP_REASON_TOOL_USE: "tool_use",
    SR.STOP_REASON_REFUSAL: "refusal",
    SR.STOP_REASON_PAUSE_TURN: "pause_turn",
}
# Gemini `finishReason` (Candidate.FinishReason) <-> canonical. A function call ends with
# STOP on Gemini's wire; the encoders look at the parts to say "tool use" where a wire has it.
GEMINI_FINISH_TO_STOP: dict[str, chat_pb2.StopReason] = {
    "STOP": SR.STOP_REASON_END_TURN,
    "MAX_TOKENS": SR.STOP_REASON_MAX_TOKENS,
    "SAFETY": SR.STOP_REASON_REFUSAL,
    "RECITATION": SR.STOP_REASON_REFUSAL,
    "BLOCKLIST": SR.STOP_REASON_REFUSAL,
    "PROHIBITED_CONTENT": SR.STOP_REASON_REFUSAL,
    "SPII": SR.STOP_REASON_REFUSAL,
    "IMAGE_SAFETY": SR.STOP_REASON_REFUSAL,
    "LANGUAGE": SR.STOP_REASON_END_TURN,
    "OTHER": SR.STOP_REASON_END_TURN,
    "MALFORMED_FUNCTION_CALL": SR.STOP_REASON_END_TURN,
    "UNEXPECTED_TOOL_CALL": SR.STOP_REASON_END_TURN,
    "FINISH_REASON_UNSPECIFIED": SR.STOP_REASON_END_TURN,
}
STOP_TO_GEMINI_FINISH: dict[int, str] = {
    SR.STOP_REASON_UNSPECIFIED: "STOP",
    SR.STOP_REASON_END_TURN: "STOP",
    SR.STOP_REASON_STOP_SEQUENCE: "STOP",
    SR.STOP_REASON_PAUSE_TURN: "STOP",
    SR.STOP_REASON_TOOL_USE: "STOP",
    SR.STOP_REASON_MAX_TOKENS: "MAX_TOKENS",
    SR.STOP_REASON_REFUSAL: "SAFETY",
}

_TC = chat_pb2.ToolChoice
# Tool-choice modes by wire name (OpenAI's names serve Chat Completions and the Responses API;
# a named tool is an object on both wires, so only Anthropic names the mode).
OPENAI_TOOL_CHOICE: dict[str, chat_pb2.ToolChoice.Mode] = {
    "auto": _TC.MODE_AUTO, "none": _TC.MODE_NONE, "required": _TC.MODE_REQUIRED}
TOOL_CHOICE_TO_OPENAI: dict[int, str] = {v: k for k, v in OPENAI_TOOL_CHOICE.items()}
ANTHROPIC_TOOL_CHOICE: dict[str, chat_pb2.ToolChoice.Mode] = {
    "auto": _TC.MODE_AUTO, "none": _TC.MODE_NONE, "any": _TC.MODE_REQUIRED,
    "tool": _TC.MODE_NAMED}
TOOL_CHOICE_TO_ANTHROPIC: dict[int, str] = {v: k for k, v in ANTHROPIC_TOOL_CHOICE.items()}
# Gemini `toolConfig.functionCallingConfig.mode` (a named function is ANY plus
# `allowedFunctionNames`; VALIDATED has no canonical counterpart and reads as AUTO).
GEMINI_TOOL_CHOICE: dict[str, chat_pb2.ToolChoice.Mode] = {
    "AUTO": _TC.MODE_AUTO, "NONE": _TC.MODE_NONE, "ANY": _TC.MODE_REQUIRED,
    "VALIDATED": _TC.MODE_AUTO, "MODE_UNSPECIFIED": _TC.MODE_AUTO}
TOOL_CHOICE_TO_GEMINI: dict[int, str] = {
    _TC.MODE_AUTO: "AUTO", _TC.MODE_NONE: "NONE", _TC.MODE_REQUIRED: "ANY",
    _TC.MODE_NAMED: "ANY"}

# ---- errors ------------------------------------------------------------------------------
# Canonical error types (chat_pb2.Error.type) -> (OpenAI error type, Anthropic error type).
# The HTTP status travels separately in Error.http_status.
ERROR_TYPES: dict[str, tuple[str, str]] = {
    "invalid_request": ("invalid_request_error", "invalid_request_error"),
    "authentication": ("authentication_error", "authentication_error"),
    "permission": ("permission_error", "permission_error"),
    "not_found": ("not_found_error", "not_found_error"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit": ("rate_limit_error", "rate_limit_error"),
    "api_error": ("api_error", "api_error"),
    "overloaded": ("service_unavailable", "overloaded_error"),
    "upstream_unreachable": ("api_error", "api_error"),
    "timeout": ("timeout", "timeout_error"),
    "unavailable": ("service_unavailable", "overloaded_error"),
}
# Canonical error type for an HTTP status an upstream (or the gateway) answered with.
STATUS_TO_ERROR_TYPE: dict[int, str] = {
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    413: "request_too_large",
    422: "invalid_request",
    429: "rate_limit",
    500: "api_error",
    502: "upstream_unreachable",
    503: "unavailable",
    504: "timeout",
    529: "overloaded",
}
# Status an Anthropic client sees for an upstream status (Anthropic uses 529 for overload).
ANTHROPIC_STATUS: dict[int, int] = {}
# Status an OpenAI client sees: OpenAI has no 529, overload is a 503.
OPENAI_STATUS: dict[int, int] = {529: 503}
# Status a Gemini client sees: Google has no 529, overload is a 503.
GEMINI_STATUS: dict[int, int] = {529: 503}
# Anthropic error type -> HTTP status when an Anthropic upstream's status is not at hand.
ANTHROPIC_ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
# Google's error `status` (google.rpc.Code names) for the HTTP status a Gemini client sees,
# and the HTTP status of each name when a Gemini upstream's status is not at hand.
GEMINI_STATUS_NAME: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
GEMINI_NAME_STATUS: dict[str, int] = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ABORTED": 409,
    "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500,
    "UNKNOWN": 500, "DATA_LOSS": 500, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def error_type_for_status(status: int) -> str:
    """Canonical error type for an HTTP status (4xx default invalid_request, 5xx api_error)."""
    found = STATUS_TO_ERROR_TYPE.get(status)
    if found:
        return found
    return "invalid_request" if 400 <= status < 500 else "api_error"


# ---- usage -------------------------------------------------------------------------------
def usage_from_openai(u: Mapping[str, Any] | None) -> chat_pb2.Usage:
    """OpenAI usage (prompt_tokens includes cached tokens) -> canonical (excludes them)."""
    out = chat_pb2.Usage()
    if not u:
        return out
    prompt = int(u.get("prompt_tokens") or 0)
    cached = int(((u.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
    out.input_tokens = max(prompt - cached, 0)
    out.cache_read_tokens = cached
    out.output_tokens = int(u.get("completion_tokens") or 0)
    details = u.get("completion_tokens_details") or {}
    out.reasoning_tokens = int(details.get("reasoning_tokens") or 0)
    return out


def usage_to_openai(u: chat_pb2.Usage) -> dict[str, Any]:
    """Canonical usage -> OpenAI chat usage object."""
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_creation_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def usage_from_anthropic(u: Mapping[str, Any] | None) -> chat_pb2.Usage:
    """Anthropic usage -> canonical (same meaning; no separate reasoning count)."""
    out = chat_pb2.Usage()
    if not u:
        return out
    out.input_tokens = int(u.get("input_tokens") or 0)
    out.output_tokens = int(u.get("output_tokens") or 0)
    out.cache_read_tokens = int(u.get("cache_read_input_tokens") or 0)
    out.cache_creation_tokens = int(u.get("cache_creation_input_tokens") or 0)
    return out


def usage_to_anthropic(u: chat_pb2.Usage) -> dict[str, Any]:
    """Canonical usage -> Anthropic usage object."""
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    }


def usage_from_gemini(u: Mapping[str, Any] | None) -> chat_pb2.Usage:
    """Gemini usageMetadata -> canonical: promptTokenCount includes cached tokens (excluded
    here); output is candidates plus thoughts, thoughts also counted as reasoning."""
    out = chat_pb2.Usage()
    if not u:
        return out
    cached = int(u.get("cachedContentTokenCount") or 0)
    out.input_tokens = max(int(u.get("promptTokenCount") or 0)
                           + int(u.get("toolUsePromptTokenCount") or 0) - cached, 0)
    out.cache_read_tokens = cached
    thoughts = int(u.get("thoughtsTokenCount") or 0)
    out.output_tokens = int(u.get("candidatesTokenCount") or 0) + thoughts
    out.reasoning_tokens = thoughts
    return out


def usage_to_responses(u: chat_pb2.Usage) -> dict[str, Any]:
    """Canonical usage -> OpenAI Responses usage object."""
    inp = u.input_tokens + u.cache_read_tokens + u.cache_creation_tokens
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens,
                                 "cache_write_tokens": u.cache_creation_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": inp + u.output_tokens,
    }


def usage_to_gemini(u: chat_pb2.Usage) -> dict[str, Any]:
    """Canonical usage -> Gemini `usageMetadata` (prompt includes cached tokens, candidates
    exclude thoughts; zero optional counts are left out, as Gemini does)."""
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_creation_tokens
    out: dict[str, Any] = {"promptTokenCount": prompt,
                           "candidatesTokenCount": max(u.output_tokens - u.reasoning_tokens, 0),
                           "totalTokenCount": prompt + u.output_tokens}
    if u.reasoning_tokens:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    if u.cache_read_tokens:
        out["cachedContentTokenCount"] = u.cache_read_tokens
    return out


# Gemini `thinkingConfig.thinkingLevel` -> canonical reasoning effort.
GEMINI_THINKING_LEVEL: dict[str, str] = {
    "MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}


# ---- reasoning ---------------------------------------------------------------------------
# OpenAI reasoning_effort -> Anthropic thinking budget, and back (nearest at or below).
EFFORT_TO_BUDGET: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}


def budget_to_effort(budget: int) -> str:
    """The largest effort whose budget does not exceed `budget` (at least 'minimal')."""
    best = "minimal"
    for effort, b in EFFORT_TO_BUDGET.items():
        if b <= budget:
            best = effort
    return best


# Anthropic `output_config.effort` -> canonical (OpenAI) reasoning effort; `max` has no
# OpenAI counterpart above `xhigh`.
ANTHROPIC_EFFORT_TO_EFFORT: dict[str, str] = {
    "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
# OpenAI model families that refuse `reasoning_effort` (non-reasoning models): an effort
# translated from another format is dropped for them rather than turned into a 400.
OPENAI_NO_REASONING_PREFIXES: tuple[str, ...] = ("gpt-4", "gpt-3.5", "chatgpt-4o")


def takes_reasoning_effort(model: str) -> bool:
    """Whether an OpenAI-family model accepts `reasoning_effort` (unknown names: yes)."""
    return not model.startswith(OPENAI_NO_REASONING_PREFIXES)


# ---- structured output -------------------------------------------------------------------
# Claude models take `output_config.format` (constrained JSON) from this version on
# (Sonnet 4.5, Opus 4.5, Haiku 4.5 and every later family; Opus 4.1 had it only as a
# beta). Older Claude models, and Anthropic-compatible servers whose model names are not
# Claude's, get a forced tool whose input is the answer.
ANTHROPIC_STRUCTURED_OUTPUT_SINCE: tuple[int, int] = (4, 5)
_CLAUDE_VERSION = re.compile(r"^claude-(?:[a-z]+-)?(\d+)(?:-(\d{1,2}))?(?=-|$)")
# The forced tool's name: reserved, so the Anthropic response decoder can turn its input
# back into the reply's text without knowing the request.
STRUCTURED_OUTPUT_TOOL = "switchyard_structured_output"


def anthropic_native_structured_output(model: str) -> bool:
    """Does this Anthropic model take `output_config.format`? (`claude-sonnet-4-5-2025...`
    and `claude-opus-4-7` yes; `claude-3-5-sonnet-...`, `claude-opus-4-1` no.)"""
    m = _CLAUDE_VERSION.match(model)
    if m is None:
        return False
    version = (int(m.group(1)), int(m.group(2) or 0))
    return version >= ANTHROPIC_STRUCTURED_OUTPUT_SINCE


# ---- max_tokens --------------------------------------------------------------------------
# Anthropic requires max_tokens; OpenAI clients may omit it. Default output limits by model
# family (longest matching prefix wins); providers may override with `default_max_tokens`.
DEFAULT_MAX_TOKENS: dict[str, int] = {
    "claude-3-haiku": 4096,
    "claude-3-opus": 4096,
    "claude-3-sonnet": 4096,
    "claude-3-5": 8192,
    "claude-3-7": 64000,
    "claude-sonnet-4": 64000,
    "claude-opus-4": 32000,
    "claude-haiku-4": 64000,
    "claude": 8192,
}
FALLBACK_MAX_TOKENS = 4096


def default_max_tokens(model: str) -> int:
    """Default max_tokens for `model` from DEFAULT_MAX_TOKENS (longest prefix match)."""
    best, best_len = FALLBACK_MAX_TOKENS, -1
    for prefix, value in DEFAULT_MAX_TOKENS.items():
        if model.startswith(prefix) and len(prefix) > best_len:
            best, best_len = value, len(prefix)
    return best


# ---- Amazon Bedrock Converse -------------------------------------------------------------
BEDROCK_STOP_TO_STOP: dict[str, chat_pb2.StopReason] = {
    "end_turn": SR.STOP_REASON_END_TURN,
    "tool_use": SR.STOP_REASON_TOOL_USE,
    "max_tokens": SR.STOP_REASON_MAX_TOKENS,
    "stop_sequence": SR.STOP_REASON_STOP_SEQUENCE,
    "guardrail_intervened": SR.STOP_REASON_REFUSAL,
    "content_filtered": SR.STOP_REASON_REFUSAL,
    "model_context_window_exceeded": SR.STOP_REASON_MAX_TOKENS,
    "malformed_model_output": SR.STOP_REASON_END_TURN,
    "malformed_tool_use": SR.STOP_REASON_END_TURN,
}
# Bedrock's exception names (`x-amzn-ErrorType`, or an event stream's `:exception-type` with
# its first letter raised) -> (HTTP status the client sees, canonical error type). Throttling
# and not-ready models are retried (429/503); a model that failed or timed out is the
# upstream's fault (502/504); the AWS front door's signature and token failures are 401s.
BEDROCK_ERRORS: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "invalid_request"),
    "ConflictException": (400, "invalid_request"),
    "AccessDeniedException": (403, "permission"),
    "ResourceNotFoundException": (404, "not_found"),
    "ThrottlingException": (429, "rate_limit"),
    "ServiceQuotaExceededException": (429, "rate_limit"),
    "InternalServerException": (500, "api_error"),
    "ModelErrorException": (502, "api_error"),
    "ModelStreamErrorException": (502, "api_error"),
    "ModelNotReadyException": (503, "unavailable"),
    "ServiceUnavailableException": (503, "unavailable"),
    "ModelTimeoutException": (504, "timeout"),
    "UnrecognizedClientException": (401, "authentication"),
    "InvalidSignatureException": (401, "authentication"),
    "IncompleteSignatureException": (401, "authentication"),
    "MissingAuthenticationTokenException": (401, "authentication"),
    "ExpiredTokenException": (401, "authentication"),
}
# Media types -> Bedrock block formats (ImageFormat, DocumentFormat, VideoFormat).
BEDROCK_IMAGE_FORMATS: dict[str, str] = {
    "image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
    "image/webp": "webp"}
BEDROCK_DOCUMENT_FORMATS: dict[str, str] = {
    "application/pdf": "pdf", "text/csv": "csv", "text/html": "html", "text/plain": "txt",
    "text/markdown": "md", "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx"}
BEDROCK_VIDEO_FORMATS: dict[str, str] = {
    "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",
    "video/x-matroska": "mkv", "video/x-flv": "flv", "video/mpeg": "mpeg",
    "video/x-ms-wmv": "wmv", "video/3gpp": "three_gp"}

# Canonical reasoning effort -> the low/medium/high scale of Nova's `maxReasoningEffort`
# and of OpenAI's open-weight models on Bedrock.
BEDROCK_REASONING_EFFORT: dict[str, str] = {
    "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}


def usage_from_bedrock(u: Mapping[str, Any] | None) -> chat_pb2.Usage:
    """Bedrock TokenUsage -> canonical: inputTokens already excludes cache reads and writes
    (totalTokens counts them), as Anthropic's input_tokens does."""
    out = chat_pb2.Usage()
    if not u:
        return out
    out.input_tokens = int(u.get("inputTokens") or 0)
    out.output_tokens = int(u.get("outputTokens") or 0)
    out.cache_read_tokens = int(u.get("cacheReadInputTokens") or 0)
    out.cache_creation_tokens = int(u.get("cacheWriteInputTokens") or 0)
    return out


# ---- OpenAI Responses (upstream) ---------------------------------------------------------
# Responses `incomplete_details.reason` -> canonical stop reason.
RESPONSES_INCOMPLETE_TO_STOP: dict[str, chat_pb2.StopReason] = {
    "max_output_tokens": SR.STOP_REASON_MAX_TOKENS,
    "content_filter": SR.STOP_REASON_REFUSAL,
}
# OpenAI model families known to reason (they take `reasoning`, keep encrypted reasoning
# items across turns and refuse `temperature`). Unlike OPENAI_NO_REASONING_PREFIXES, unknown
# names count as not reasoning: the Responses codec adds reasoning fields only for these.
OPENAI_REASONING_PREFIXES: tuple[str, ...] = ("o1", "o3", "o4", "gpt-5", "codex-",
                                              "computer-use")
# Responses error `code` (a `response.failed` error or an `error` event) -> HTTP status.
RESPONSES_ERROR_STATUS: dict[str, int] = {
    "rate_limit_exceeded": 429, "insufficient_quota": 429, "server_error": 500,
    "invalid_prompt": 400, "context_length_exceeded": 400, "invalid_image": 400,
    "invalid_encrypted_content": 400, "vector_store_timeout": 504}
# The smallest `max_output_tokens` the Responses API accepts.
RESPONSES_MIN_OUTPUT_TOKENS = 16


def openai_reasoning_model(model: str) -> bool:
    """Whether an OpenAI model name belongs to a reasoning family (`gpt-5-codex`, `o3-pro`)."""
    return model.startswith(OPENAI_REASONING_PREFIXES)


def usage_from_responses(u: Mapping[str, Any] | None) -> chat_pb2.Usage:
    """OpenAI Responses usage (input_tokens counts cached and cache-written tokens; output
    includes reasoning) -> canonical."""
    out = chat_pb2.Usage()
    if not u:
        return out
    details = u.get("input_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    out.input_tokens = max(int(u.get("input_tokens") or 0) - cached - written, 0)
    out.cache_read_tokens = cached
    out.cache_creation_tokens = written
    out.output_tokens = int(u.get("output_tokens") or 0)
    out.reasoning_tokens = int((u.get("output_tokens_details") or {}).get("reasoning_tokens")
                               or 0)
    return out
