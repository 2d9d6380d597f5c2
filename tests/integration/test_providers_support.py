"""Fakes for the providers tests: a tiny upstream codec, an SSE parser, and a scripted
aiohttp upstream. (No tests here; the real codecs live in services/providers/adapters/.)"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from switchyard.common.canonical.mappings import error_type_for_status
from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2


class FakeSSEParser:
    """Splits a byte stream into (event, data) pairs."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        self._buf += chunk
        out = []
        while b"\n\n" in self._buf:
            raw, self._buf = self._buf.split(b"\n\n", 1)
            event, data = None, []
            for line in raw.split(b"\n"):
                if line.startswith(b"event:"):
                    event = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data.append(line[5:].strip())
            if data:
                out.append((event, b"\n".join(data)))
        return out


class FakeDecoder:
    """Stream codec for the fake wire: {"t": "hi"} text pieces, {"end": 1} ends the turn."""

    def __init__(self) -> None:
        self.started = False

    def feed(self, data: bytes) -> list[chat_pb2.StreamEvent]:
        if data == b"[DONE]":
            return []
        obj = orjson.loads(data)
        out = []
        if "id" in obj:
            out.append(chat_pb2.StreamEvent(start=chat_pb2.StreamStart(id=obj["id"], model="up")))
        if "t" in obj:
            if not self.started:
                self.started = True
                out.append(chat_pb2.StreamEvent(block_start=chat_pb2.BlockStart(
                    index=0, part=chat_pb2.ContentPart(text=chat_pb2.TextPart()))))
            out.append(chat_pb2.StreamEvent(delta=chat_pb2.BlockDelta(index=0, text=obj["t"])))
        if obj.get("end"):
            out.append(chat_pb2.StreamEvent(block_stop=chat_pb2.BlockStop(index=0)))
            out.append(chat_pb2.StreamEvent(finish=chat_pb2.StreamFinish(
                stop_reason=chat_pb2.STOP_REASON_END_TURN)))
        return out

    def finish(self) -> list[chat_pb2.StreamEvent]:
        return []


class FakeAdapter:
    """The upstream codec interface over the fake wire."""
    WIRE = chat_pb2.WIRE_FORMAT_OPENAI_CHAT
    StreamDecoder = FakeDecoder

    @staticmethod
    def encode_request(req: chat_pb2.ChatRequest, entry: ProviderEntry, model: str):
        return orjson.dumps({"model": model, "stream": req.stream}), ["seed"]

    @staticmethod
    def build_headers(entry: ProviderEntry, client_api_key: str, forward: dict) -> dict:
        return {"authorization": f"Bearer {entry.access_key}", "content-type": "application/json"}

    @staticmethod
    def endpoint_url(entry: ProviderEntry, model: str, stream: bool = False) -> str:
        return entry.endpoint

    @staticmethod
    def decode_response(body: dict) -> list[chat_pb2.StreamEvent]:
        return [chat_pb2.StreamEvent(start=chat_pb2.StreamStart(id=body["id"], model="up")),
                chat_pb2.StreamEvent(block_start=chat_pb2.BlockStart(
                    index=0, part=chat_pb2.ContentPart(text=chat_pb2.TextPart(text=body["text"])))),
                chat_pb2.StreamEvent(block_stop=chat_pb2.BlockStop(index=0)),
                chat_pb2.StreamEvent(finish=chat_pb2.StreamFinish(
                    stop_reason=chat_pb2.STOP_REASON_END_TURN))]

    @staticmethod
    def decode_error(status: int, body: bytes, headers: Any) -> chat_pb2.Error:
        try:
            message = orjson.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = body.decode(errors="replace")
        return chat_pb2.Error(http_status=status, type=error_type_for_status(status),
                              message=message)

    @staticmethod
    def decode_stream_error(payload: dict) -> chat_pb2.Error:
        err = payload["error"]
        status = int(err.get("status", 500))
        return chat_pb2.Error(http_status=status, type=error_type_for_status(status),
                              message=err.get("message", ""))


def sse(obj: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(obj) + b"\n\n"


@dataclass
class Step:
    """What the fake upstream does for one request."""
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    delay_s: float = 0.0                  # before answering
    chunks: list[bytes] | None = None     # streamed with chunk_gap_s between
    chunk_gap_s: float = 0.0
    hang: bool = False                    # after the chunks, keep the stream open
    stall_s: float = 0.0                  # after the chunks, this long without a byte


def ok_json(text: str = "hello") -> Step:
    return Step(body=orjson.dumps({"id": "r1", "text": text}),
                headers={"content-type": "application/json"})


def ok_stream(*pieces: str, gap_s: float = 0.0) -> Step:
    chunks = [sse({"id": "r1"})] + [sse({"t": p}) for p in pieces] + [sse({"end": 1})]
    return Step(chunks=chunks, chunk_gap_s=gap_s, headers={"content-type": "text/event-stream"})


def error_step(status: int, message: str, headers: dict | None = None) -> Step:
    return Step(status=status, body=orjson.dumps({"error": {"message": message}}),
                headers={"content-type": "application/json", **(headers or {})})


class FakeUpstream:
    """An aiohttp server answering POST /{name} from a per-name script of Steps."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Step]] = {}
        self.calls: dict[str, list[float]] = {}
        self.headers: dict[str, list[dict]] = {}
        self.disconnected = asyncio.Event()
        self.count_bodies: list[dict] = []
        self.server: TestServer | None = None

    def script(self, name: str, *steps: Step) -> None:
        self.scripts[name] = list(steps)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.port}/{name}"

    async def __aenter__(self) -> FakeUpstream:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        app.router.add_post("/{name}/count_tokens", self._count)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.server.close()

    async def _count(self, request: web.Request) -> web.Response:
        self.count_bodies.append(orjson.loads(await request.read()))
        return web.Response(body=orjson.dumps({"input_tokens": 42}),
                            content_type="application/json")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.calls.setdefault(name, []).append(time.monotonic())
        self.headers.setdefault(name, []).append({k.lower(): v for k, v in request.headers.items()})
        await request.read()
        script = self.scripts.get(name) or [ok_stream("x")]
        step = script.pop(0) if len(script) > 1 else script[0]
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        if step.chunks is None:
            return web.Response(status=step.status, body=step.body, headers=step.headers)
        resp = web.StreamResponse(status=step.status, headers=step.headers)
        try:
            await resp.prepare(request)
            for i, chunk in enumerate(step.chunks):
                if i and step.chunk_gap_s:
                    await asyncio.sleep(step.chunk_gap_s)
                await resp.write(chunk)
            if step.stall_s:
                await asyncio.sleep(step.stall_s)
            while step.hang:   # keep writing so a closed client shows up as a write error
                await asyncio.sleep(0.05)
                await resp.write(b": keepalive\n\n")
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return resp


def entry(name: str, endpoint: str, key: str | None = None) -> ProviderEntry:
    return ProviderEntry(name=name, provider="fake", model="m", interface="openai",
                         endpoint=endpoint, auth="bearer",
                         access_key=key or f"sk-secret-{name}-0123456789")


def plan(*providers: str, weighted: int = 0, weights: tuple[int, ...] = (), retries: int = 2,
         timeout_s: float = 5.0) -> router_pb2.RoutePlan:
    targets = [router_pb2.Target(provider=p, model=f"{p}-model",
                                 weight=weights[i] if i < len(weights) else 0)
               for i, p in enumerate(providers)]
    return router_pb2.RoutePlan(name="test-model", targets=targets, weighted_count=weighted,
                                max_retries=retries, timeout_s=timeout_s)


def gen_request(p: router_pb2.RoutePlan, stream: bool = True) -> providers_pb2.GenerateRequest:
    req = chat_pb2.ChatRequest(model="test-model", stream=stream, messages=[chat_pb2.Message(
        role=chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="hi"))])])
    return providers_pb2.GenerateRequest(request=req, plan=p, request_id="req-1")


def kinds(batches: list[chat_pb2.EventBatch]) -> list[str]:
    return [ev.WhichOneof("event") for b in batches for ev in b.events]
