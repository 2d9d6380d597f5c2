"""One reply: status and headers, then the body as the network delivers it."""
from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING

from switchyard.providers.http_client.errors import HttpError, MalformedReply

if TYPE_CHECKING:
    from switchyard.providers.http_client.connection import Connection

PAUSE_AT = 256 * 1024      # buffered body bytes at which the socket stops being read


class Response:
    """One reply: status and headers at once, the body as it arrives. `release()` gives the
    connection back when the body was read to its end, `close()` drops it."""

    __slots__ = ("status", "headers", "_conn", "_chunks", "_size", "_waiter", "_complete",
                 "_error", "_inflate")

    def __init__(self, conn: Connection, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers          # names in lower case; repeated ones joined by ", "
        self._conn = conn
        self._chunks: list[bytes] = []
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._complete = False
        self._error: HttpError | None = None
        self._inflate: zlib._Decompress | None = None
        coding = headers.get("content-encoding", "identity").lower()
        if coding in ("gzip", "deflate", "x-gzip"):
            self._inflate = zlib.decompressobj(47)   # 32 + 15: a gzip or zlib header
        elif coding != "identity":
            self._error = MalformedReply(f"unsupported content-encoding {coding[:40]!r}")

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case ("" when absent)."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    async def read_chunk(self) -> bytes:
        """Everything received since the last call, waiting for some; b"" at the end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._complete:
                return b""
            self._waiter = self._conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks, self._chunks = self._chunks, []
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self._size >= PAUSE_AT:
            self._conn.resume()
        self._size = 0
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(data)
            except zlib.error:
                raise MalformedReply("the compressed body does not decode") from None
        return data

    def interrupt(self, error: BaseException) -> None:
        """Fail the read waiting now with `error` (a caller's own timer ran out)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    async def read(self, limit: int | None = None) -> bytes:
        """The body to its end (or its first `limit` bytes)."""
        parts: list[bytes] = []
        size = 0
        while limit is None or size < limit:
            chunk = await self.read_chunk()
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        data = b"".join(parts)
        return data if limit is None else data[:limit]

    def release(self) -> None:
        """Done with the reply: its connection is reused if the body was read to the end."""
        self._conn.finished(self, reusable=self._complete and not self._chunks)

    def close(self) -> None:
        self._conn.finished(self, reusable=False)

    # Fed by the connection.
    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size >= PAUSE_AT:
            self._conn.pause()
        self._wake()

    def _end(self, error: HttpError | None = None) -> None:
        if error is None:
            self._complete = True
        elif not self._complete and self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
