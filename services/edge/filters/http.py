"""`type: http` filters, as Plano calls them: POST the payload to the filter's URL with the
client's path appended (`http://host/anonymize` + `/v1/chat/completions`), so one endpoint
knows which wire format it is shown; the answer's status and body are the verdict."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import aiohttp

from switchyard.common.config.model import Filter
from switchyard.common.http_headers import retry_after_seconds
from switchyard.edge.filters.base import Answer, Sessions, read_capped, unreachable


class HttpTransport:
    """Plain HTTP filter calls over the process's filter session."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self._bases: dict[str, tuple[str, str]] = {}

    async def call(self, f: Filter, path: str, payload: bytes, kind: str,
                   headers: dict[str, str], content_type: str) -> Answer:
        sent = {**headers, "content-type": content_type, "accept": content_type}
        try:
            # Never redirected: the payload (a request with what a filter is there to strip)
            # goes only where the config says.
            async with self.sessions.get().post(self.url(f, path), data=payload, headers=sent,
                                                allow_redirects=False) as resp:
                body = await read_capped(resp)
                retry = retry_after_seconds(resp.headers) if resp.status == 429 else None
                return Answer(resp.status, body, retry_after=retry)
        except (aiohttp.ClientError, OSError) as exc:
            raise unreachable(exc) from None

    def url(self, f: Filter, path: str) -> str:
        """The filter's URL with `path` after its own path (and before its query, if any)."""
        base = self._bases.get(f.id)
        if base is None:
            parts = urlsplit(f.url)
            base = self._bases[f.id] = (
                urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", "")),
                parts.query)
        prefix, query = base
        return f"{prefix}{path}?{query}" if query else prefix + path

    async def close(self) -> None:
        return None   # the session is the chain's to close
