"""The upstream stream's read limit (one lazily re-armed timer per stream, not one per read):
silence mid-stream and before the first content ends in a 504 naming the wait; reads that
keep coming under the limit never time out; a cancellation from outside stays one."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from switchyard.providers.breaker import BreakerBoard
from switchyard.providers.execution import Executor
from switchyard.providers.http import ClientPool, Timeouts
from switchyard.providers.http_client import Response
from switchyard.providers.retry import RetryPolicy
from switchyard.providers.stream_reader import StreamReader
from tests.integration.test_providers_support import (
    FakeAdapter,
    FakeDecoder,
    FakeSSEParser,
    FakeUpstream,
    Step,
    entry,
    gen_request,
    kinds,
    ok_stream,
    plan,
    sse,
)

IDLE_S = 0.3


@pytest.fixture
async def upstream():
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def executor(upstream):
    pool = ClientPool(Timeouts(1.0, 5.0, IDLE_S))
    ex = Executor({"primary": entry("primary", upstream.url("primary"))}.get, pool,
                  breakers=BreakerBoard(), retry=RetryPolicy(base_s=0.01, cap_s=0.05),
                  adapters=lambda e: FakeAdapter, sse_parser=FakeSSEParser)
    yield ex
    await pool.close()


@contextlib.asynccontextmanager
async def posted(upstream) -> AsyncIterator[tuple[StreamReader, Response]]:
    """A reader over the reply to one POST of the upstream's "primary" script."""
    e = entry("primary", upstream.url("primary"))
    pool = ClientPool(Timeouts(1.0, 5.0, IDLE_S))
    try:
        response = await pool.client(e).post(upstream.url("primary"), b"{}", {})
        yield StreamReader(response, FakeSSEParser(), FakeDecoder(), FakeAdapter, e), response
    finally:
        await pool.close()


async def collect(ex: Executor, retries: int = 0) -> list:
    return [b async for b in ex.generate(gen_request(plan("primary", retries=retries)))]


async def test_silence_mid_stream_ends_the_stream_with_a_timeout(upstream, executor):
    upstream.script("primary", Step(chunks=[sse({"id": "r1"}), sse({"t": "a"})], stall_s=5.0,
                                    headers={"content-type": "text/event-stream"}))
    t0 = time.monotonic()
    batches = await asyncio.wait_for(collect(executor), timeout=5)
    waited = time.monotonic() - t0
    assert kinds(batches) == ["start", "block_start", "delta", "error"]
    err = batches[-1].events[-1].error
    assert (err.http_status, err.type) == (504, "timeout")
    assert f"went silent for {IDLE_S:g} s mid-stream" in err.message
    assert IDLE_S <= waited < IDLE_S + 1.0


async def test_silence_before_the_first_content_is_a_timeout(upstream, executor):
    upstream.script("primary", Step(chunks=[sse({"id": "r1"})], stall_s=5.0,
                                    headers={"content-type": "text/event-stream"}))
    batches = await asyncio.wait_for(collect(executor), timeout=5)
    assert kinds(batches) == ["error"]
    err = batches[0].events[0].error
    assert (err.http_status, err.type) == (504, "timeout")
    assert f"stayed silent for {IDLE_S:g} s" in err.message


async def test_reads_under_the_limit_never_time_out(upstream, executor):
    # 10 pieces 0.1 s apart: the stream lasts ~3x the idle limit, no gap reaches it.
    upstream.script("primary", ok_stream(*"abcdefghij", gap_s=0.1))
    batches = await asyncio.wait_for(collect(executor), timeout=10)
    assert kinds(batches)[-1] == "finish"
    assert "".join(ev.delta.text for b in batches for ev in b.events
                   if ev.HasField("delta")) == "abcdefghij"


async def test_a_cancelled_read_stays_a_cancellation(upstream):
    upstream.script("primary", Step(chunks=[sse({"id": "r1"})], stall_s=5.0,
                                    headers={"content-type": "text/event-stream"}))
    async with posted(upstream) as (reader, response):
        assert kinds_of(await reader.read(1.0)) == ["start"]
        task = asyncio.ensure_future(reader.read(0.2))
        deadline = time.monotonic() + 5.0
        while not reader._reading and time.monotonic() < deadline:
            await asyncio.sleep(0)   # until the read waits on the silent upstream
        assert reader._reading
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert reader._timer is None   # nothing keeps the reader alive afterwards
        response.close()


async def test_the_limit_of_a_later_shorter_read_applies(upstream):
    upstream.script("primary", Step(chunks=[sse({"id": "r1"})], stall_s=5.0,
                                    headers={"content-type": "text/event-stream"}))
    async with posted(upstream) as (reader, response):
        await reader.read(30.0)   # arms the timer far out
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await reader.read(0.2)
        assert time.monotonic() - t0 < 1.0
        response.close()


def kinds_of(events: list) -> list[str]:
    return [ev.WhichOneof("event") for ev in events]
