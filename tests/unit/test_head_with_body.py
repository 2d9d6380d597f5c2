"""edge/connections.py HeadWithBody: a response's head leaves with its first body bytes."""
from __future__ import annotations

import asyncio
from typing import Any

from switchyard.edge.connections import HeadWithBody


class RecordingTransport:
    def __init__(self) -> None:
        self.sends: list[bytes] = []   # one entry per system call the real transport would make
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def writelines(self, parts: Any) -> None:
        self.sends.append(b"".join(parts))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def wrapped() -> tuple[RecordingTransport, HeadWithBody]:
    real = RecordingTransport()
    return real, HeadWithBody(real, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_a_whole_answer_leaves_in_one_send() -> None:
    real, t = wrapped()
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert real.sends == []
    t.write(b"{}")
    assert real.sends == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)   # the pass ends: nothing is left to send twice
    t.write(b"more")
    assert real.sends[1:] == [b"more"]


async def test_a_head_without_a_body_in_the_same_pass_is_sent_at_its_end() -> None:
    real, t = wrapped()
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    await asyncio.sleep(0)
    assert real.sends == [b"HTTP/1.1 200 OK\r\n\r\n"]
    t.write(b"data: 1\n\n")
    assert real.sends[1:] == [b"data: 1\n\n"]


async def test_close_sends_the_held_head_first_and_a_closed_socket_gets_nothing() -> None:
    real, t = wrapped()
    t.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    t.close()
    assert real.sends == [b"HTTP/1.1 204 No Content\r\n\r\n"] and real.closed

    gone, t = wrapped()
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    gone.closed = True   # the client left before the pass ended
    await asyncio.sleep(0)
    assert gone.sends == []


async def test_everything_else_is_the_real_transports() -> None:
    real, t = wrapped()
    assert t.get_extra_info("peername") == "info:peername"
    assert not t.is_closing()
    real.closed = True
    assert t.is_closing()
