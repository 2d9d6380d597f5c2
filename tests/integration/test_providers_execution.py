"""Executor against a real (fake) aiohttp upstream: retries, fallback, timeouts, streaming."""
from __future__ import annotations

import asyncio
import time

import pytest

from switchyard.common.proto import chat_pb2
from switchyard.providers.breaker import BreakerBoard
from switchyard.providers.execution import Executor
from switchyard.providers.http import ClientPool, Timeouts
from switchyard.providers.retry import RetryPolicy
from tests.integration.test_providers_support import (
    FakeAdapter,
    FakeSSEParser,
    FakeUpstream,
    Step,
    entry,
    error_step,
    gen_request,
    kinds,
    ok_json,
    ok_stream,
    plan,
    sse,
)
from tests.support.ports import free_port


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/dead"


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
async def upstream():
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def make_executor():
    pools = []

    def make(entries, *, timeouts=Timeouts(1.0, 5.0, 5.0), breakers=None, clock=time.monotonic):
        pool = ClientPool(timeouts)
        pools.append(pool)
        table = {e.name: e for e in entries}
        return Executor(table.get, pool, breakers=breakers or BreakerBoard(clock=clock),
                        retry=RetryPolicy(base_s=0.01, cap_s=0.05),
                        adapters=lambda e: FakeAdapter, sse_parser=FakeSSEParser, clock=clock)

    yield make
    for pool in pools:
        await pool.close()


async def collect(executor: Executor, req) -> list[chat_pb2.EventBatch]:
    return [b async for b in executor.generate(req)]


def only_error(batches: list[chat_pb2.EventBatch]) -> chat_pb2.Error:
    assert kinds(batches) == ["error"], kinds(batches)
    return batches[0].events[0].error


async def test_stream_success_stamps_start_and_batches_per_read(upstream, make_executor):
    upstream.script("primary", ok_stream("a", "b", gap_s=0.05))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    batches = await collect(ex, gen_request(plan("primary")))
    assert kinds(batches) == ["start", "block_start", "delta", "delta", "block_stop", "finish"]
    start = batches[0].events[0].start
    assert (start.provider, start.attempts, list(start.dropped_params)) == ("primary", 1, ["seed"])
    assert start.id == "r1" and start.upstream_ms > 0
    assert len(batches) >= 3   # chunks 50 ms apart arrive in separate reads
    sent = upstream.headers["primary"][0]
    assert sent["authorization"] == "Bearer sk-secret-primary-0123456789"


async def test_events_of_one_read_share_one_batch(upstream, make_executor):
    whole = ok_stream("a", "b", "c")
    upstream.script("primary", Step(chunks=[b"".join(whole.chunks)], headers=whole.headers))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    batches = await collect(ex, gen_request(plan("primary")))
    assert len(batches) == 1
    assert kinds(batches) == ["start", "block_start", "delta", "delta", "delta", "block_stop",
                              "finish"]


async def test_non_streaming_reply_is_one_batch(upstream, make_executor):
    upstream.script("primary", ok_json("whole answer"))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    batches = await collect(ex, gen_request(plan("primary"), stream=False))
    assert len(batches) == 1
    assert kinds(batches) == ["start", "block_start", "block_stop", "finish"]
    assert batches[0].events[1].block_start.part.text.text == "whole answer"
    assert batches[0].events[0].start.provider == "primary"


async def test_retry_on_429_then_success(upstream, make_executor):
    upstream.script("primary", error_step(429, "slow down"), ok_stream("hi"))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    batches = await collect(ex, gen_request(plan("primary", retries=2)))
    assert kinds(batches)[0] == "start"
    assert batches[0].events[0].start.attempts == 2
    assert len(upstream.calls["primary"]) == 2


@pytest.mark.parametrize("headers,wait_s", [({"retry-after-ms": "300"}, 0.3),
                                            ({"retry-after": "1"}, 1.0)])
async def test_retry_after_is_honoured(upstream, make_executor, headers, wait_s):
    upstream.script("primary", error_step(429, "slow down", headers), ok_stream("hi"))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    batches = await asyncio.wait_for(collect(ex, gen_request(plan("primary"))), timeout=5)
    assert kinds(batches)[0] == "start"
    first, second = upstream.calls["primary"]
    assert second - first >= wait_s


async def test_retry_after_beyond_budget_returns_the_429(upstream, make_executor):
    upstream.script("primary", error_step(429, "quota exhausted", {"retry-after": "60"}))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    t0 = time.monotonic()
    err = only_error(await collect(ex, gen_request(plan("primary", timeout_s=2.0))))
    assert time.monotonic() - t0 < 1.5
    assert (err.http_status, err.type, err.message) == (429, "rate_limit", "quota exhausted")
    assert err.retry_after == 60 and err.provider == "primary"
    assert len(upstream.calls["primary"]) == 1


async def test_500_on_primary_falls_back(upstream, make_executor):
    upstream.script("primary", error_step(500, "boom"))
    upstream.script("backup", ok_stream("saved"))
    ex = make_executor([entry("primary", upstream.url("primary")),
                        entry("backup", upstream.url("backup"))])
    batches = await collect(ex, gen_request(plan("primary", "backup", retries=1)))
    start = batches[0].events[0].start
    assert (start.provider, start.attempts) == ("backup", 3)
    assert len(upstream.calls["primary"]) == 2 and len(upstream.calls["backup"]) == 1
    assert "finish" in kinds(batches)


async def test_closed_port_falls_back(upstream, make_executor):
    upstream.script("backup", ok_stream("saved"))
    ex = make_executor([entry("primary", closed_port_url()), entry("backup", upstream.url("backup"))])
    batches = await collect(ex, gen_request(plan("primary", "backup", retries=0)))
    assert batches[0].events[0].start.provider == "backup"


async def test_all_down_is_502_naming_the_entry_without_secrets(make_executor):
    ex = make_executor([entry("primary", closed_port_url()), entry("backup", closed_port_url())])
    err = only_error(await collect(ex, gen_request(plan("primary", "backup", retries=1))))
    assert (err.http_status, err.type, err.provider) == (502, "upstream_unreachable", "backup")
    assert "cannot connect to provider 'backup'" in err.message
    assert ": Connection refused" in err.message   # the system's words, said once
    assert "all 2 targets" in err.message
    assert "sk-secret" not in err.message and "Bearer" not in err.message


async def test_slow_upstream_is_504_within_budget(upstream, make_executor):
    upstream.script("primary", Step(delay_s=3.0, body=b"{}"))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    t0 = time.monotonic()
    err = only_error(await collect(ex, gen_request(plan("primary", timeout_s=0.5))))
    assert time.monotonic() - t0 < 1.5
    assert (err.http_status, err.type) == (504, "timeout")
    assert "0.5 s" in err.message


async def test_client_error_answers_at_once_with_upstream_message(upstream, make_executor):
    upstream.script("primary", error_step(400, "messages: field required"))
    upstream.script("backup", ok_stream("never"))
    ex = make_executor([entry("primary", upstream.url("primary")),
                        entry("backup", upstream.url("backup"))])
    err = only_error(await collect(ex, gen_request(plan("primary", "backup"))))
    assert (err.http_status, err.message) == (400, "messages: field required")
    assert len(upstream.calls["primary"]) == 1 and "backup" not in upstream.calls


async def test_echoed_key_is_scrubbed_from_upstream_errors(upstream, make_executor):
    key = "sk-secret-primary-0123456789"
    upstream.script("primary", error_step(401, f"Incorrect API key provided: {key}"))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    err = only_error(await collect(ex, gen_request(plan("primary"))))
    assert err.http_status == 401 and key not in err.message and "***" in err.message


async def test_stream_error_before_content_is_retried(upstream, make_executor):
    overloaded = sse({"type": "error", "error": {"status": 529, "message": "overloaded"}},
                     event="error")
    upstream.script("primary", Step(chunks=[sse({"id": "r0"}), overloaded]), ok_stream("ok"))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    batches = await collect(ex, gen_request(plan("primary")))
    assert kinds(batches).count("start") == 1
    assert batches[0].events[0].start.attempts == 2 and batches[0].events[0].start.id == "r1"


async def test_no_retry_after_first_content(upstream, make_executor):
    broken = sse({"error": {"status": 503, "message": "upstream fell over"}})
    upstream.script("primary", Step(chunks=[sse({"id": "r1"}) + sse({"t": "partial"}), broken],
                                    chunk_gap_s=0.05))
    upstream.script("backup", ok_stream("never"))
    ex = make_executor([entry("primary", upstream.url("primary")),
                        entry("backup", upstream.url("backup"))])
    batches = await collect(ex, gen_request(plan("primary", "backup")))
    assert kinds(batches) == ["start", "block_start", "delta", "error"]
    assert batches[-1].events[-1].error.message == "upstream fell over"
    assert len(upstream.calls["primary"]) == 1 and "backup" not in upstream.calls


async def test_truncated_stream_ends_with_error_not_success(upstream, make_executor):
    upstream.script("primary", Step(chunks=[sse({"id": "r1"}) + sse({"t": "half"})]))
    ex = make_executor([entry("primary", upstream.url("primary"))])
    batches = await collect(ex, gen_request(plan("primary")))
    assert kinds(batches) == ["start", "block_start", "delta", "error"]
    assert batches[-1].events[0].error.http_status == 502


async def test_unknown_entry_is_500(make_executor):
    ex = make_executor([])
    err = only_error(await collect(ex, gen_request(plan("ghost"))))
    assert err.http_status == 500 and "'ghost'" in err.message


async def test_closing_the_stream_closes_the_upstream(upstream, make_executor):
    step = ok_stream("a")
    step.chunks = step.chunks[:2]
    step.hang = True
    upstream.script("primary", step)
    ex = make_executor([entry("primary", upstream.url("primary"))])
    stream = ex.generate(gen_request(plan("primary")))
    first = await stream.__anext__()
    assert first.events[0].HasField("start")
    await stream.aclose()
    await asyncio.wait_for(upstream.disconnected.wait(), timeout=1.0)


async def test_breaker_opens_then_recovers_after_cooldown(upstream, make_executor):
    clock = Clock()
    upstream.script("primary", error_step(503, "down"))
    upstream.script("backup", ok_stream("b"))
    ex = make_executor([entry("primary", upstream.url("primary")),
                        entry("backup", upstream.url("backup"))], clock=clock)
    req = gen_request(plan("primary", "backup", retries=0))
    for _ in range(5):
        batches = await collect(ex, req)
        assert batches[0].events[0].start.provider == "backup"
    assert len(upstream.calls["primary"]) == 5
    batches = await collect(ex, req)               # open: primary skipped
    assert batches[0].events[0].start.attempts == 1
    assert len(upstream.calls["primary"]) == 5
    clock.offset += 31.0                           # cool-down over: one probe
    upstream.script("primary", ok_stream("back"))
    batches = await collect(ex, req)
    assert batches[0].events[0].start.provider == "primary"
    assert ex.breakers.get(("primary", "primary-model")).state == "closed"


async def test_all_breakers_open_still_tries(upstream, make_executor):
    clock = Clock()
    upstream.script("primary", error_step(503, "down"))
    ex = make_executor([entry("primary", upstream.url("primary"))], clock=clock)
    req = gen_request(plan("primary", retries=0))
    for _ in range(6):
        err = only_error(await collect(ex, req))
        assert err.http_status == 503
    assert ex.breakers.get(("primary", "primary-model")).state == "open"
    assert len(upstream.calls["primary"]) == 6


async def test_codec_failure_is_an_error_event(upstream, make_executor):
    class Broken(FakeAdapter):
        @staticmethod
        def encode_request(req, entry, model):
            raise TypeError("bug")

    ex = make_executor([entry("primary", upstream.url("primary"))])
    ex.adapters = lambda e: Broken
    err = only_error(await collect(ex, gen_request(plan("primary"))))
    assert err.http_status == 500 and "TypeError" in err.message
    assert "primary" not in upstream.calls
