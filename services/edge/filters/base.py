"""The seam between the chain runner and the two ways of asking a filter (plain HTTP, MCP
`tools/call`): what is sent, what comes back, and how a call fails."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import aiohttp

from switchyard.common.config.model import Filter

# What a filter is shown: the client's request body, a whole reply (JSON), or one chunk of a
# streamed reply (the SSE bytes as the client would get them).
REQUEST, REPLY, CHUNK = "request", "reply", "chunk"
# A filter's answer is read up to this size; beyond it the call has failed.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
POOL_LIMIT = 256           # connections to all filters together, per edge process


@dataclass(slots=True)
class Answer:
    """A filter's verdict: `status` 2xx with the payload to go on with (empty: unchanged), or
    4xx with the refusal (`body`, or `message` when the protocol names one)."""
    status: int
    body: bytes = b""
    message: str = ""
    retry_after: float | None = None


class FilterFailure(Exception):
    """The filter could not be asked, or answered something that is no verdict. The message
    is safe to show: no URL, no body, no key."""


class Transport(Protocol):
    """One protocol of filter calls (`Filter.type`)."""

    async def call(self, f: Filter, path: str, payload: bytes, kind: str,
                   headers: dict[str, str], content_type: str) -> Answer:
        """Show `payload` (a `kind`) to filter `f` for the client path `path`; raises
        FilterFailure (a time bound is the caller's)."""
        ...

    async def close(self) -> None:
        ...


class Sessions:
    """The one aiohttp session of every filter call of the process, made on first use (inside
    the running loop) and kept: connections to a filter are reused across requests."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=POOL_LIMIT, ttl_dns_cache=300),
                auto_decompress=True, raise_for_status=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


async def read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """The whole answer body, at most MAX_ANSWER_BYTES (else FilterFailure)."""
    length = resp.content_length
    if length is not None and length > MAX_ANSWER_BYTES:
        raise FilterFailure(f"answered with more than {MAX_ANSWER_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise FilterFailure(f"answered with more than {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def unreachable(exc: BaseException) -> FilterFailure:
    """A transport error, named without the text aiohttp gives it (which can hold the URL)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return FilterFailure("is unreachable (the connection could not be made)")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return FilterFailure("closed the connection without an answer")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FilterFailure("sent a broken answer body")
    return FilterFailure(f"could not be called ({type(exc).__name__})")
