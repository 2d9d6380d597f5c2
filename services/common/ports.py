"""Is a TCP address free to listen on? One check for the launcher and every service."""
from __future__ import annotations

import errno
import socket

# A service that exits because its address is taken says so with this code (Linux's
# EADDRINUSE; uvicorn already uses 3), so the launcher stops instead of restarting it forever.
EXIT_ADDRESS_IN_USE = 98


def split_host_port(address: str) -> tuple[str, int] | None:
    """`host:port` / `[v6]:port` as (host, port); None for anything else (`unix:` paths)."""
    if address.startswith("unix:") or "://" in address:
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def bind_error(host: str, port: int) -> OSError | None:
    """The error listening on host:port would meet now; None when it is free.

    SO_REUSEADDR as uvicorn and gRPC set it, so a port left in TIME_WAIT counts as free and
    only a live listener (any process) counts as taken.
    """
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        return exc
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(sockaddr)
        except OSError as exc:
            return exc
    return None


def in_use(err: OSError | None) -> bool:
    return err is not None and err.errno == errno.EADDRINUSE
