"""EventStreamResponse: the body sent from the request's task; a client disconnect cancels
the sending and runs the body's clean-up; a cancellation from elsewhere stays one."""
from __future__ import annotations

import asyncio

import pytest

from switchyard.edge.sse_response import EventStreamResponse

SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}}


class Client:
    """ASGI receive/send of one client: what was sent, and a disconnect to trigger."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.gone = asyncio.Event()

    async def receive(self) -> dict:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def test_the_whole_body_then_the_end():
    client = Client()

    async def body():
        yield b"data: 1\n\n"
        yield b"data: 2\n\n"

    await EventStreamResponse(body(), media_type="text/event-stream")(
        SCOPE, client.receive, client.send)
    assert client.sent[0]["type"] == "http.response.start" and client.sent[0]["status"] == 200
    assert client.body() == b"data: 1\n\ndata: 2\n\n"
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    await asyncio.sleep(0)   # the watcher's cancellation is delivered
    assert [t for t in asyncio.all_tasks() if not t.done()] == [asyncio.current_task()]


async def test_a_disconnect_stops_the_body_and_runs_its_clean_up():
    client = Client()
    cleaned = asyncio.Event()

    async def body():
        try:
            yield b"data: 1\n\n"
            client.gone.set()                  # the client leaves while the next waits
            await asyncio.sleep(30)
            yield b"data: never\n\n"
        finally:
            cleaned.set()

    await asyncio.wait_for(EventStreamResponse(body())(SCOPE, client.receive, client.send), 5)
    assert cleaned.is_set()
    assert client.body() == b"data: 1\n\n"
    assert not any(m.get("more_body") is False for m in client.sent)


async def test_a_cancellation_from_elsewhere_propagates():
    client = Client()
    started = asyncio.Event()

    async def body():
        started.set()
        await asyncio.sleep(30)
        yield b""

    task = asyncio.create_task(EventStreamResponse(body())(SCOPE, client.receive, client.send))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
