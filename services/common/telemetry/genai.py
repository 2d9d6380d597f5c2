"""OpenTelemetry GenAI semantic-convention names, and the gateway's own attribute names."""
from __future__ import annotations

from typing import TYPE_CHECKING

from switchyard.common.proto import chat_pb2

if TYPE_CHECKING:
    from opentelemetry.trace import Span

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"   # seconds, streams
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
INPUT_MESSAGES = "gen_ai.input.messages"      # only with tracing.record_content
OUTPUT_MESSAGES = "gen_ai.output.messages"

# The gateway's own.
ATTEMPTS = "switchyard.attempts"
ATTEMPT = "switchyard.attempt"
FALLBACK = "switchyard.fallback"
DROPPED_PARAMS = "switchyard.dropped_params"
TENANT = "switchyard.tenant"
ROUTE = "switchyard.route"                    # client format → upstream wire
CLIENT_FORMAT = "switchyard.client_format"
UPSTREAM_ENTRY = "switchyard.upstream"
REQUEST_ID = "switchyard.request_id"
COST_USD = "switchyard.cost_usd"
OVERHEAD_MS = "switchyard.overhead_ms"
OUTCOME = "switchyard.outcome"

# gen_ai.provider.name well-known values where our provider prefixes differ from them.
PROVIDER_NAMES = {"azure_openai": "azure.ai.openai", "gemini": "gcp.gemini",
                  "google": "gcp.gemini", "mistral": "mistral_ai", "bedrock": "aws.bedrock",
                  "amazon_bedrock": "aws.bedrock"}

STOP_REASONS: dict[int, str] = {chat_pb2.STOP_REASON_END_TURN: "stop",
                chat_pb2.STOP_REASON_MAX_TOKENS: "length",
                chat_pb2.STOP_REASON_TOOL_USE: "tool_calls",
                chat_pb2.STOP_REASON_STOP_SEQUENCE: "stop",
                chat_pb2.STOP_REASON_REFUSAL: "content_filter",
                chat_pb2.STOP_REASON_PAUSE_TURN: "pause_turn"}


def provider_name(provider_prefix: str) -> str:
    """`gen_ai.provider.name` for a provider entry's prefix (openai, anthropic, ...)."""
    return PROVIDER_NAMES.get(provider_prefix, provider_prefix)


def finish_reason(stop: int) -> str:
    """The OpenAI-style finish reason the conventions use for a canonical stop reason."""
    return STOP_REASONS.get(stop, "stop" if stop else "")


def usage_attributes(usage: chat_pb2.Usage) -> dict[str, int]:
    """The usage attributes; input counts cache reads and writes too, as the conventions say."""
    read, write = usage.cache_read_tokens, usage.cache_creation_tokens
    attributes = {INPUT_TOKENS: usage.input_tokens + read + write,
                  OUTPUT_TOKENS: usage.output_tokens}
    if read:
        attributes[CACHE_READ_TOKENS] = read
    if write:
        attributes[CACHE_WRITE_TOKENS] = write
    if usage.reasoning_tokens:
        attributes[REASONING_TOKENS] = usage.reasoning_tokens
    return attributes


def set_usage(span: Span, usage: chat_pb2.Usage) -> None:
    """`usage_attributes` on `span`, in one call (on the request path each call is a cost)."""
    span.set_attributes(usage_attributes(usage))
