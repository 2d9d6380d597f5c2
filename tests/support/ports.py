"""Ports for the servers a test starts: one home, never two alike, none from the ephemeral range.

A port picked by `bind(("127.0.0.1", 0))` comes from the kernel's ephemeral range, the same range
every outbound connection's local port is drawn from; between the pick and the server's bind any
client socket of the suite may take it, and the server then fails to start. Ports below that
range are only ever taken by an explicit bind, so a pick from there stays free."""
from __future__ import annotations

import os
import socket

_FLOOR = 20000
_issued: set[int] = set()


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_CEILING = _ephemeral_start()
# Start where this process's id points, so two suites (or a suite and a bench) on one machine
# walk different stretches of the range.
_next = _FLOOR + (os.getpid() * 7919) % max(_CEILING - _FLOOR, 1)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A 127.0.0.1 port nothing is bound to, not handed out before in this process."""
    global _next
    if _CEILING - _FLOOR < 1000:      # a machine whose ephemeral range starts low: ask the kernel
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    for _ in range(_CEILING - _FLOOR):
        port = _next
        _next = _FLOOR + (_next + 1 - _FLOOR) % (_CEILING - _FLOOR)
        if port not in _issued and _bindable(port):
            _issued.add(port)
            return port
    raise RuntimeError(f"no free port between {_FLOOR} and {_CEILING}")
