"""Counting a request's input tokens: the upstream's own count (Anthropic, Gemini), else the
estimate (`common/canonical/token_estimate.py`)."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from yarl import URL

from switchyard.common import timeouts
from switchyard.common.canonical.token_estimate import estimate_tokens
from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import providers_pb2
from switchyard.providers.adapters.base import UpstreamCodec
from switchyard.providers.http import ClientPool
from switchyard.providers.http_client import HttpError

log = logging.getLogger(__name__)

# Fields /v1/messages/count_tokens accepts; anything else (max_tokens, stream, ...) is a 400.
COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking",
                       "mcp_servers")
def count_tokens_url(endpoint: str) -> str:
    """`.../v1/messages` -> `.../v1/messages/count_tokens` (query string kept)."""
    url = URL(endpoint)
    return str(url.with_path(url.path.rstrip("/") + "/count_tokens").with_query(url.query))


async def count_tokens(gen: providers_pb2.GenerateRequest, entry: ProviderEntry | None,
                       adapter: UpstreamCodec | None,
                       pool: ClientPool) -> providers_pb2.CountTokensReply:
    """Ask an upstream that counts (Anthropic, Gemini) to count; on any failure, or for other
    upstreams, estimate."""
    ask = COUNTERS.get(entry.interface) if entry is not None else None
    if entry is not None and adapter is not None and ask is not None:
        counted = await ask(gen, entry, adapter, pool)
        if counted is not None:
            return providers_pb2.CountTokensReply(input_tokens=counted, estimated=False)
    return providers_pb2.CountTokensReply(input_tokens=estimate_tokens(gen.request), estimated=True)


def _encoded(gen: providers_pb2.GenerateRequest, entry: ProviderEntry,
             adapter: UpstreamCodec) -> dict[str, Any]:
    """The generation request the upstream would get, as a dict."""
    encoded, _ = adapter.encode_request(gen.request, entry, gen.plan.targets[0].model)
    full: dict[str, Any] = orjson.loads(encoded)
    return full


async def _ask_anthropic(gen: providers_pb2.GenerateRequest, entry: ProviderEntry,
                         adapter: UpstreamCodec, pool: ClientPool) -> int | None:
    """`POST .../messages/count_tokens` with the fields it accepts."""
    try:
        full = _encoded(gen, entry, adapter)
        body = {k: full[k] for k in COUNT_TOKENS_FIELDS if k in full}
        url = count_tokens_url(adapter.endpoint_url(entry, gen.plan.targets[0].model))
    except (ValueError, TypeError) as exc:
        log.warning("count_tokens for provider %s: %s; estimating", entry.name,
                    type(exc).__name__)
        return None
    reply = await _post(gen, entry, adapter, pool, url, body)
    return _int(reply, "input_tokens", entry)


async def _ask_gemini(gen: providers_pb2.GenerateRequest, entry: ProviderEntry,
                      adapter: UpstreamCodec, pool: ClientPool) -> int | None:
    """`POST .../models/{m}:countTokens` with the whole generateContent request."""
    model = gen.plan.targets[0].model
    try:
        full = _encoded(gen, entry, adapter)
        url = adapter.endpoint_url(entry, model).replace(":generateContent", ":countTokens", 1)
    except (ValueError, TypeError) as exc:
        log.warning("countTokens for provider %s: %s; estimating", entry.name,
                    type(exc).__name__)
        return None
    body = {"generateContentRequest": {"model": f"models/{model}", **full}}
    reply = await _post(gen, entry, adapter, pool, url, body)
    return _int(reply, "totalTokens", entry)


async def _post(gen: providers_pb2.GenerateRequest, entry: ProviderEntry,
                adapter: UpstreamCodec, pool: ClientPool, url: str,
                body: dict[str, Any]) -> Any:
    """The upstream's JSON answer to a count request, or None (logged) when it has none."""
    headers = adapter.build_headers(entry, gen.client_api_key, dict(gen.forward_headers))
    try:
        with timeouts.within(pool.timeouts(entry).first_byte_s):
            resp = await pool.client(entry).post(url, orjson.dumps(body), headers)
            try:
                data = await resp.read()
            finally:
                resp.close()
        if resp.status != 200:
            log.warning("count_tokens on provider %s answered %d; estimating",
                        entry.name, resp.status)
            return None
        return orjson.loads(data)
    except (TimeoutError, HttpError, OSError, ValueError) as exc:
        log.warning("count_tokens on provider %s failed (%s); estimating",
                    entry.name, type(exc).__name__)
        return None


def _int(reply: Any, key: str, entry: ProviderEntry) -> int | None:
    """`reply[key]` as a count, or None (logged) when the answer has no such number."""
    value = reply.get(key) if isinstance(reply, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if reply is not None:
        log.warning("count_tokens on provider %s: no %s in the answer; estimating",
                    entry.name, key)
    return None


Counter = Callable[[providers_pb2.GenerateRequest, ProviderEntry, UpstreamCodec, ClientPool],
                   Awaitable["int | None"]]
# Upstream interfaces that count tokens themselves (the rest are estimated).
COUNTERS: dict[str, Counter] = {"anthropic": _ask_anthropic, "gemini": _ask_gemini}
