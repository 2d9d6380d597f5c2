"""What goes on the wire: where a URL is sent, and the request line and headers."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from switchyard.providers.http_client.errors import InvalidRequest

USER_AGENT = "switchyard"
USER_AGENT_LINE = f"User-Agent: {USER_AGENT}\r\n".encode()
FRAMING = frozenset({"content-length", "transfer-encoding"})


@dataclass(frozen=True)
class Origin:
    """Where one URL is sent: the connection's key and the request line's parts."""
    scheme: str
    host: str
    port: int
    host_header: str
    target: bytes          # path and query, as given (a signed URL must travel unchanged)


_SAFE_IN_TARGET = "/?#[]@!$&'()*+,;=:%-._~"


@functools.lru_cache(maxsize=1024)
def origin_of(url: str) -> Origin:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"not an http(s) URL (scheme {parts.scheme!r})")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # Only what may not travel raw is escaped (spaces, controls, non-ASCII): a signed URL
    # (Bedrock's, in yarl's form) is left exactly as it was signed.
    target = quote(target, safe=_SAFE_IN_TARGET)
    return Origin(parts.scheme, host, port, shown if port == default else f"{shown}:{port}",
                  target.encode())


def request_head(origin: Origin, headers: dict[str, str], length: int) -> bytes:
    """The request line and headers; Host, User-Agent and Accept-Encoding added where the
    caller did not set them (config may set Host: `http_host`), Content-Length always."""
    lines = [b"POST ", origin.target, b" HTTP/1.1\r\n"]
    given: set[str] = set()
    for name, value in headers.items():
        lname = name.lower()
        given.add(lname)
        if lname in FRAMING:
            continue   # the body's framing is this client's to state, once
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise InvalidRequest(f"header {name.strip()[:40]!r} has a line break or colon")
        lines.append(f"{name}: {value}\r\n".encode())
    if "host" not in given:   # first after the request line, as RFC 9112 asks
        lines.insert(3, f"Host: {origin.host_header}\r\n".encode())
    if "user-agent" not in given:
        lines.append(USER_AGENT_LINE)
    if "accept-encoding" not in given:
        lines.append(b"Accept-Encoding: identity\r\n")
    lines.append(b"Content-Length: %d\r\n\r\n" % length)
    return b"".join(lines)
