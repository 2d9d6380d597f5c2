"""Incremental Server-Sent Events parser: raw bytes in, (event, data) pairs out. Shared by
the providers (upstream streams) and the edge (MCP filter replies over streamable HTTP)."""
from __future__ import annotations

import re

_LINE = re.compile(rb"\r\n|\r|\n")


class SSEParser:
    """Splits a byte stream into SSE events (WHATWG rules: CRLF/CR/LF, comments, multi-line data).

    `feed` may be called with arbitrary chunk boundaries, including a CRLF split in two.
    The event name is "message" when the upstream sent no `event:` field.
    """

    __slots__ = ("_buf", "_skip_lf", "_event", "_data", "_has_data", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False      # last chunk ended in CR: a leading LF belongs to it
        self._event = b""
        self._data: list[bytes] = []
        self._has_data = False
        self._started = False      # BOM is only stripped at the very start

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        """Parse `chunk`; return every event completed by it."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if not self._started and buf:
            self._started = True
            if buf.startswith(b"\xef\xbb\xbf"):
                buf = buf[3:]
        # bytes.split is several times faster than the regex, and upstreams send LF only.
        lines = buf.split(b"\n") if b"\r" not in buf else _LINE.split(buf)
        self._buf = lines.pop()    # the unterminated tail (b"" when buf ended in a newline)
        if buf.endswith(b"\r"):
            self._skip_lf = True
        out: list[tuple[str, bytes]] = []
        for line in lines:
            if line[:6] == b"data: " and self._has_data is False:   # the usual first data line
                self._data = [line[6:]]
                self._has_data = True
            elif line or self._has_data:
                self._line(line, out)
            else:   # a blank line with nothing pending: only resets the event name
                self._event = b""
        return out

    def close(self) -> list[tuple[str, bytes]]:
        """End of stream: dispatch a last event the upstream did not end with a blank line."""
        out: list[tuple[str, bytes]] = []
        if self._buf:
            self._line(self._buf, out)
            self._buf = b""
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[tuple[str, bytes]]) -> None:
        if not line:
            if self._has_data:
                data = self._data
                out.append((self._event.decode("utf-8", "replace") if self._event else "message",
                            data[0] if len(data) == 1 else b"\n".join(data)))
            self._event = b""
            self._data = []
            self._has_data = False
            return
        if line[:1] == b":":
            return
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            self._data.append(value)
            self._has_data = True
        elif field == b"event":
            self._event = value
