"""The Redis limiter against a real redis-server: limits shared by several edges (each a
limiter of its own) are exact under concurrency, one EVALSHA per admit and per settle,
buckets expire once full, and an outage — stopped, silent or refusing the password — is
the configured policy within a bounded time, logged once a minute, never the password."""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import pytest
import redis.asyncio as aioredis

from switchyard.common.config.model import RedisSettings, Security
from switchyard.common.config.redis import redacted
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.edge.limits.base import REQUESTS, TOKENS, Bucket, Charge
from switchyard.edge.limits.metrics import STORE_UNAVAILABLE
from switchyard.edge.limits.policy import Limits, Pending
from switchyard.edge.limits.redis_store import PREFIX, RedisLimiter
from tests.support.redis import RedisServer, redis_server

PASSWORD = "pw-not-to-be-seen"
server = redis_server(password=PASSWORD)


def settings(url: str, policy: str = "allow", timeout: float = 0.25) -> RedisSettings:
    return RedisSettings(url=url, display=redacted(url), on_unavailable=policy,
                         timeout_s=timeout)


@pytest.fixture
async def raw(server):
    client = aioredis.Redis.from_url(server.url(), decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


async def evalsha_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_limit_holds_across_edges_under_concurrency(server, raw):
    edges = [RedisLimiter(settings(server.url())) for _ in range(3)]
    bucket = Bucket("rq:key:shared", 10.0, 3600.0, "10 requests per hour", REQUESTS)
    decisions = await asyncio.gather(*(edges[i % 3].admit([Charge(bucket, 1.0)])
                                       for i in range(30)))
    assert sum(d.allowed for d in decisions) == 10
    refused = [d for d in decisions if not d.allowed]
    assert all(d.limit == bucket and 300 < d.retry_after <= 360 for d in refused)
    for edge in edges:
        await edge.close()


async def test_one_round_trip_per_admit_and_per_settle(server, raw):
    lim = RedisLimiter(settings(server.url()))
    limits = Limits(Security(requests_per_minute=50, tokens_per_minute=10_000), lim)
    req = chat_pb2.ChatRequest(model="m", max_tokens=500)
    plan = router_pb2.RoutePlan(name="m", targets=[router_pb2.Target(provider="p", model="m")])
    await lim.admit([Charge(Bucket("warm", 1.0, 1.0, "", REQUESTS), 0.0)])  # script loaded
    before = await evalsha_calls(raw)
    pending = Pending(limits, limits.caller(None, "10.1.1.1"))
    await pending.admit(req, plan, {}, reserve=True)
    assert await evalsha_calls(raw) == before + 1       # requests and tokens in one call
    level = await raw.hget(PREFIX + "tk:ip:10.1.1.1", "l")
    assert 9_490 <= float(level) <= 9_500
    pending.used, pending.status = 120, 200
    pending.finish()

    async def settled() -> bool:
        value = await raw.hget(PREFIX + "tk:ip:10.1.1.1", "l")
        return float(value) >= 9_880
    await wait_until(settled)
    assert await evalsha_calls(raw) == before + 2
    assert float(await raw.hget(PREFIX + "rq:ip:10.1.1.1", "l")) == pytest.approx(49, abs=0.1)
    await lim.close()


async def test_all_or_nothing_and_buckets_expire_when_full(server, raw):
    lim = RedisLimiter(settings(server.url()))
    small = Bucket("tk:small", 100.0, 60.0, "100 tokens per minute", TOKENS)
    big = Bucket("tk:big", 1000.0, 60.0, "1000 tokens per minute", TOKENS)
    assert (await lim.admit([Charge(small, 90.0), Charge(big, 90.0)])).allowed
    refused = await lim.admit([Charge(small, 20.0), Charge(big, 20.0)])
    assert not refused.allowed and refused.limit == small
    assert float(await raw.hget(PREFIX + "tk:big", "l")) == pytest.approx(910, abs=1)
    ttl_ms = await raw.pttl(PREFIX + "tk:small")
    assert 50_000 < ttl_ms <= 55_000                    # 90 back at 100/min, plus a second
    lim.settle([Charge(small, -50.0)])                  # used more than reserved: debt

    async def in_debt() -> bool:
        return float(await raw.hget(PREFIX + "tk:small", "l")) < 0
    await wait_until(in_debt)
    await lim.close()


async def test_password_in_the_url_is_used_and_never_logged(server, raw, caplog):
    good = RedisLimiter(settings(server.url()))
    assert not (await good.admit([Charge(Bucket("x", 1.0, 1.0, "", REQUESTS), 1.0)])
                ).unavailable
    await good.close()
    wrong_url = server.url().replace(PASSWORD, "wrong-" + PASSWORD)
    bad = RedisLimiter(settings(wrong_url, policy="deny"))
    with caplog.at_level(logging.WARNING, logger="switchyard.edge.limits"):
        d = await bad.admit([Charge(Bucket("x", 1.0, 1.0, "", REQUESTS), 1.0)])
    assert not d.allowed and d.unavailable
    assert "AuthenticationError" in caplog.text and "redis://:***@127.0.0.1" in caplog.text
    assert PASSWORD not in caplog.text
    await bad.close()


async def test_outage_applies_the_policy_fast_logs_once_and_recovers(caplog):
    with RedisServer() as srv:
        url = srv.url()
        allow, deny = RedisLimiter(settings(url)), RedisLimiter(settings(url, policy="deny"))
        bucket = Bucket("rq:o", 1000.0, 60.0, "1000 rpm", REQUESTS)
        assert (await allow.admit([Charge(bucket, 1.0)])).allowed
        assert (await deny.admit([Charge(bucket, 1.0)])).allowed
        srv.stop()
        denied = STORE_UNAVAILABLE.labels("deny")._value.get()
        with caplog.at_level(logging.WARNING, logger="switchyard.edge.limits"):
            started = time.monotonic()
            for _ in range(20):
                a = await allow.admit([Charge(bucket, 1.0)])
                d = await deny.admit([Charge(bucket, 1.0)])
                assert a.allowed and a.unavailable
                assert not d.allowed and d.unavailable and d.retry_after == 1.0
            assert time.monotonic() - started < 2.0     # no call waits out a timeout twice
        assert STORE_UNAVAILABLE.labels("deny")._value.get() == denied + 20
        lines = [r for r in caplog.records if "is unavailable" in r.getMessage()]
        assert len(lines) == 2                           # one for each limiter, in a minute
        assert "on_unavailable is deny, so requests are refused" in caplog.text
        srv.start()
        deadline = time.monotonic() + 10

        while not (await deny.admit([Charge(bucket, 1.0)])).allowed:
            assert time.monotonic() < deadline, "the limiter did not come back"
            await asyncio.sleep(0.1)
        assert "answers again" in caplog.text
        await allow.close()
        await deny.close()


class Silent:
    """A TCP listener that accepts and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


async def test_a_silent_redis_costs_one_bounded_wait_then_the_policy():
    silent = Silent()
    try:
        lim = RedisLimiter(settings(f"redis://127.0.0.1:{silent.port}/0", timeout=0.2))
        bucket = Bucket("rq:s", 10.0, 60.0, "", REQUESTS)
        started = time.monotonic()
        first = await lim.admit([Charge(bucket, 1.0)])
        took = time.monotonic() - started
        assert first.allowed and first.unavailable and took < 1.0
        started = time.monotonic()
        for _ in range(50):                              # inside the backoff: no waiting
            assert (await lim.admit([Charge(bucket, 1.0)])).unavailable
        assert time.monotonic() - started < 0.2
        await lim.close()
    finally:
        silent.close()
