"""Counting a request's input tokens: Anthropic's count_tokens endpoint, else an estimate."""
from __future__ import annotations

import asyncio
import logging
import math

import aiohttp
import orjson
from yarl import URL

from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import chat_pb2, providers_pb2
from switchyard.providers.adapters.base import UpstreamCodec
from switchyard.providers.http import SessionPool

log = logging.getLogger(__name__)

# Fields /v1/messages/count_tokens accepts; anything else (max_tokens, stream, ...) is a 400.
COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking",
                       "mcp_servers")
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4        # role and framing tokens per message
IMAGE_TOKENS = 1600         # a typical image; exact counts need the pixels


def estimate_tokens(req: chat_pb2.ChatRequest) -> int:
    """About one token per four characters of the text the model reads."""
    chars, overhead = 0, 0
    for msg in req.messages:
        overhead += MESSAGE_OVERHEAD
        for part in msg.parts:
            c, o = _part_size(part)
            chars, overhead = chars + c, overhead + o
    for tool in req.tools:
        chars += len(tool.name) + len(tool.description) + len(tool.parameters_json)
    return math.ceil(chars / CHARS_PER_TOKEN) + overhead


def _part_size(part: chat_pb2.ContentPart) -> tuple[int, int]:
    kind = part.WhichOneof("kind")
    if kind == "text":
        return len(part.text.text), 0
    if kind == "tool_call":
        return len(part.tool_call.name) + len(part.tool_call.arguments_json), 0
    if kind == "tool_result":
        chars, overhead = 0, 0
        for inner in part.tool_result.content:
            c, o = _part_size(inner)
            chars, overhead = chars + c, overhead + o
        return chars, overhead
    if kind == "reasoning":
        return len(part.reasoning.text), 0
    if kind == "document":
        return len(part.document.text) or len(part.document.data_base64) * 3 // 4, 0
    if kind == "image":
        return 0, IMAGE_TOKENS
    return 0, 0


def count_tokens_url(endpoint: str) -> str:
    """`.../v1/messages` -> `.../v1/messages/count_tokens` (query string kept)."""
    url = URL(endpoint)
    return str(url.with_path(url.path.rstrip("/") + "/count_tokens").with_query(url.query))


async def count_tokens(gen: providers_pb2.GenerateRequest, entry: ProviderEntry | None,
                       adapter: UpstreamCodec | None,
                       pool: SessionPool) -> providers_pb2.CountTokensReply:
    """Ask an Anthropic upstream to count; on any failure (or other upstreams) estimate."""
    if entry is not None and adapter is not None and entry.interface == "anthropic":
        counted = await _ask_anthropic(gen, entry, adapter, pool)
        if counted is not None:
            return providers_pb2.CountTokensReply(input_tokens=counted, estimated=False)
    return providers_pb2.CountTokensReply(input_tokens=estimate_tokens(gen.request), estimated=True)


async def _ask_anthropic(gen: providers_pb2.GenerateRequest, entry: ProviderEntry,
                         adapter: UpstreamCodec, pool: SessionPool) -> int | None:
    model = gen.plan.targets[0].model
    try:
        encoded, _ = adapter.encode_request(gen.request, entry, model)
        # A codec outside the type checker may hand back the dict itself.
        full = orjson.loads(encoded) if isinstance(encoded, (bytes, bytearray)) else encoded
        body = {k: full[k] for k in COUNT_TOKENS_FIELDS if k in full}
        url = count_tokens_url(adapter.endpoint_url(entry, model))
        headers = adapter.build_headers(entry, gen.client_api_key, dict(gen.forward_headers))
        timeout = pool.timeouts(entry).first_byte_s
        async with asyncio.timeout(timeout):
            async with pool.session(entry).post(url, data=orjson.dumps(body), headers=headers,
                                                allow_redirects=False) as resp:
                data = await resp.read()
                if resp.status != 200:
                    log.warning("count_tokens on provider %s answered %d; estimating",
                                entry.name, resp.status)
                    return None
        return int(orjson.loads(data)["input_tokens"])
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("count_tokens on provider %s failed (%s); estimating",
                    entry.name, type(exc).__name__)
        return None
