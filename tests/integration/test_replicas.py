"""Load over replicas, over real gRPC: the edge's clients (providers pool, state, route cache)
against several real backend servers on free ports, the providers calling the emulator.

Each in-process providers replica calls the emulator under its own path prefix (`/r<i>`),
so the emulator's request log says which replica served what."""
from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from switchyard.common.config import parse_config
from switchyard.common.config.model import Config, ServiceAddresses
from switchyard.common.errors import GatewayError
from switchyard.common.grpc_server import new_server
from switchyard.common.health import SERVING
from switchyard.common.internal_auth import TOKEN_ENV
from switchyard.common.proto import (
    chat_pb2,
    providers_pb2,
    providers_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
    state_pb2,
    state_pb2_grpc,
)
from switchyard.edge.clients.endpoints import EndpointSet, Status
from switchyard.edge.clients.pool import ProvidersPool
from switchyard.edge.clients.providers import EOF, STREAMS
from switchyard.edge.clients.router import RouteCache
from switchyard.edge.clients.state import StateClient
from switchyard.providers.service import ProvidersServicer, build_executor
from switchyard.router.service import RouterServicer
from switchyard.state.service import StateServicer
from switchyard.state.stores.memory import MemoryStore
from tests.emulator import Emulator
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-openai-replicas"
MODEL = "gpt-4o-mini"
TOKEN = "replicas-internal-token-0123456789"


async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `cond` until true or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def provider_config(base_url: str) -> Config:
    return parse_config({"model_providers": [
        {"model": f"openai/{MODEL}", "access_key": KEY, "base_url": base_url}]})


def request(text: str, stream: bool) -> providers_pb2.GenerateRequest:
    chat = chat_pb2.ChatRequest(model=MODEL, stream=stream, messages=[chat_pb2.Message(
        role=chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text=text))])])
    plan = router_pb2.RoutePlan(name=MODEL, timeout_s=20.0, targets=[
        router_pb2.Target(provider=f"openai/{MODEL}", model=MODEL)])
    return providers_pb2.GenerateRequest(request=chat, plan=plan, request_id=text)


def answer_text(batches: list[chat_pb2.EventBatch]) -> str:
    kinds = [ev.WhichOneof("event") for b in batches for ev in b.events]
    assert kinds[0] == "start" and kinds[-1] == "finish", kinds
    return "".join(ev.delta.text for b in batches for ev in b.events
                   if ev.WhichOneof("event") == "delta")


async def generate(pool: ProvidersPool, text: str, stream: bool) -> str:
    """One request through the pool; the answer's text (the emulator echoes ours)."""
    if not stream:
        return answer_text([await pool.complete(request(text, False), timeout=20.0)])
    call = await pool.generate(request(text, True))
    batches = []
    while (batch := await call.read()) is not EOF:
        batches.append(batch)
    return answer_text(batches)


class Load:
    """`workers` tasks sending requests back to back until stopped; every outcome kept."""

    def __init__(self, send: Callable[[str], Awaitable[str]], workers: int) -> None:
        self.send = send
        self.ok = 0
        self.failures: list[BaseException] = []
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run(i)) for i in range(workers)]

    async def _run(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            text = f"w{worker} n{n}"
            try:
                got = await self.send(text)
                assert got == f"Echo: {text}", got
                self.ok += 1
            except (GatewayError, AssertionError, grpc.aio.AioRpcError) as exc:
                self.failures.append(exc)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


class Replica:
    """An in-process providers server built as `switchyard serve providers` builds it."""

    def __init__(self, emu: Emulator, index: int, services: ServiceAddresses) -> None:
        self.prefix = f"/r{index}/"
        self.executor = build_executor(provider_config(f"{emu.url}/r{index}"))
        self.servicer = ProvidersServicer(self.executor)
        self.streams = 0   # Multiplex calls this server has seen
        real = self.servicer.Multiplex

        async def counted(requests, context):
            self.streams += 1
            await real(requests, context)
        self.servicer.Multiplex = counted  # type: ignore[method-assign]
        self.server, self.health = new_server(TOKEN, services)
        providers_pb2_grpc.add_ProvidersServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"

    async def start(self) -> Replica:
        await self.server.start()
        return self

    async def drain(self, grace: float) -> None:
        """What run_server does on SIGTERM: NOT_SERVING, GOAWAY to the streams, stop."""
        await self.health.enter_graceful_shutdown()
        await self.servicer.mux.goaway()
        await self.server.stop(grace)

    async def close(self) -> None:
        await self.server.stop(None)
        await self.executor.pool.close()


def served(emu: Emulator) -> collections.Counter[str]:
    """Upstream requests by the replica prefix they came through."""
    return collections.Counter(r["path"].split("/")[1] for r in emu.requests()
                               if r["path"].endswith("/chat/completions"))


@pytest.fixture(autouse=True)
def internal_token(monkeypatch):
    """Every channel carries the token and every server checks it, as in production."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.fixture(scope="module")
def emulator():
    with Emulator(openai_keys={KEY}, latency_ms=40) as emu:
        yield emu


@pytest.fixture
def emu(emulator):
    emulator.reset()
    return emulator


@pytest.fixture
async def replicas(emu):
    made: list[Replica] = []

    async def make(n: int, services: ServiceAddresses | None = None) -> list[Replica]:
        for _ in range(n):
            made.append(await Replica(emu, len(made), services or ServiceAddresses()).start())
        return made[-n:]
    yield make
    for r in made:
        await r.close()


async def test_requests_spread_over_every_replica(replicas, emu):
    reps = await replicas(3)
    endpoints = EndpointSet(",".join(r.address for r in reps))
    pool = ProvidersPool(endpoints)
    try:
        await until(lambda: all(ep.status is Status.UP for ep in endpoints.endpoints.values())
                    and len(endpoints.endpoints) == 3, 5, "three replicas up")
        for stream in (True, False):
            texts = [f"spread {stream} {i}" for i in range(30)]
            got = await asyncio.gather(*(generate(pool, t, stream) for t in texts))
            assert got == [f"Echo: {t}" for t in texts]
        counts = served(emu)
        assert sum(counts.values()) == 60
        # Least in flight: with equal replicas each gets about a third; none is left out.
        assert all(counts[f"r{i}"] >= 10 for i in range(3)), counts
        assert all(r.streams <= STREAMS for r in reps)   # long-lived streams, not a call each
    finally:
        await pool.close()
        await endpoints.close()


async def test_connection_age_goaway_moves_streams_and_fails_nothing(replicas, emu):
    """Servers with a short max connection age: every connection is recycled (GOAWAY) many
    times under load, streams and unary calls move to new connections, nothing fails."""
    services = ServiceAddresses(max_connection_age_s=0.3, max_connection_age_grace_s=10.0)
    reps = await replicas(2, services)
    endpoints = EndpointSet(",".join(r.address for r in reps))
    pool = ProvidersPool(endpoints)
    load = Load(lambda text: generate(pool, text, stream=len(text) % 2 == 0), workers=8)
    try:
        await until(lambda: sum(r.streams for r in reps) >= 6 * STREAMS, 30,
                    "streams to be recycled several times")
        await until(lambda: load.ok >= 150, 30, "150 answers")
    finally:
        await load.stop()
        await pool.close()
        await endpoints.close()
    assert load.failures == []
    counts = served(emu)
    assert counts["r0"] > 20 and counts["r1"] > 20, counts
    assert sum(counts.values()) == load.ok   # no request sent twice


async def test_a_replica_added_to_the_name_gets_traffic_and_a_removed_one_finishes(
        replicas, emu):
    """A DNS name (a headless service): a new address gets its share once resolved; one that
    leaves the answer finishes what it runs and gets nothing new."""
    first, second = await replicas(2)
    answer = [f"ipv4:{first.address}"]

    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("providers.test", 12002)
        return list(answer)
    endpoints = EndpointSet("dns:///providers.test:12002", resolver=resolver,
                            resolve_interval=0.2)
    pool = ProvidersPool(endpoints)
    load = Load(lambda text: generate(pool, text, stream=True), workers=6)
    try:
        await until(lambda: served(emu)["r0"] >= 10, 20, "the first replica to serve")
        assert served(emu)["r1"] == 0
        answer.append(f"ipv4:{second.address}")   # scaled up
        await until(lambda: served(emu)["r1"] >= 20, 20, "the new replica to get traffic")
        del answer[0]                              # scaled down: r0 leaves the name
        await until(lambda: f"ipv4:{first.address}" not in endpoints.endpoints, 10,
                    "the old address to be dropped")
        await until(lambda: pool.inflight(next(iter(endpoints.endpoints.values()))) > 0
                    and first.servicer.mux.live == set(), 20,
                    "the old replica's streams to end")
        before = served(emu)["r0"]
        ok = load.ok
        await until(lambda: load.ok >= ok + 30, 20, "30 more answers")
        assert served(emu)["r0"] == before   # nothing new reached the removed replica
    finally:
        await load.stop()
        await pool.close()
        await endpoints.close()
    assert load.failures == []


async def test_a_draining_replica_finishes_its_requests_and_new_ones_move(replicas, emu):
    emu.reset()
    reps = await replicas(2)
    endpoints = EndpointSet(",".join(r.address for r in reps))
    pool = ProvidersPool(endpoints)
    load = Load(lambda text: generate(pool, text, stream=len(text) % 2 == 1), workers=8)
    try:
        drained = endpoints.endpoints[f"ipv4:{reps[0].address}"]
        await until(lambda: pool.inflight(drained) >= 2, 20, "requests in flight on r0")
        await reps[0].drain(grace=10.0)   # returns once its in-flight calls are done
        assert drained.status in (Status.DRAINING, Status.DOWN)
        ok = load.ok
        await until(lambda: load.ok >= ok + 40, 20, "40 answers after the drain")
    finally:
        await load.stop()
        await pool.close()
        await endpoints.close()
    assert load.failures == []
    assert sum(served(emu).values()) == load.ok


# ---- separate processes: SIGTERM is the real drain --------------------------------------

def spawn_providers(config_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", TOKEN_ENV: TOKEN,
           "SWITCHYARD_PROVIDERS_LISTEN": f"127.0.0.1:{port}"}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "switchyard", "serve", "providers",
                                 "--config", str(config_path)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


async def test_a_replica_stopped_with_sigterm_mid_load_loses_nothing(tmp_path):
    emu = Emulator(openai_keys={KEY}, latency_ms=250).start()   # requests stay in flight
    config = tmp_path / "plano_config.yaml"
    config.write_text(f"model_providers:\n  - model: openai/{MODEL}\n    access_key: {KEY}\n"
                      f"    base_url: {emu.url}\nlimits: {{drain_seconds: 20}}\n")
    ports = [free_port(), free_port()]
    procs = [spawn_providers(config, p, tmp_path / f"providers{i}.log")
             for i, p in enumerate(ports)]
    endpoints = EndpointSet(",".join(f"127.0.0.1:{p}" for p in ports))
    pool = ProvidersPool(endpoints)
    load: Load | None = None
    try:
        await until(lambda: len(endpoints.endpoints) == 2 and all(
            ep.status is Status.UP for ep in endpoints.endpoints.values()), 60,
            "both replicas up")
        load = Load(lambda text: generate(pool, text, stream=len(text) % 2 == 0), workers=8)
        stopped = endpoints.endpoints[f"ipv4:127.0.0.1:{ports[0]}"]
        await until(lambda: pool.inflight(stopped) >= 3, 20, "requests in flight on it")
        procs[0].send_signal(signal.SIGTERM)
        await until(lambda: stopped.status is not Status.UP, 10, "the edge to see the drain")
        ok = load.ok
        await until(lambda: procs[0].poll() is not None, 30, "the stopped replica to exit")
        assert procs[0].returncode == 0
        await until(lambda: load.ok >= ok + 40, 30, "40 more answers from the other one")
        await until(lambda: stopped.status is Status.DOWN, 10, "the stopped one to be down")
    finally:
        if load is not None:
            await load.stop()
        await pool.close()
        await endpoints.close()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
        emu.stop()
    assert load.failures == []
    served_upstream = [r for r in emu.requests() if r["path"].endswith("/chat/completions")]
    assert len(served_upstream) == load.ok   # each request reached the upstream once
    log = (tmp_path / "providers0.log").read_text()
    assert "draining" in log, log


# ---- the unary clients: state and router -------------------------------------------------

async def start_state(store: MemoryStore, services: ServiceAddresses):
    server, health = new_server(TOKEN, services)
    servicer = StateServicer(store, max_depth=10)
    calls = collections.Counter[str]()
    real_get, real_put = servicer.Get, servicer.Put

    async def get(request, context):
        calls["get"] += 1
        return await real_get(request, context)

    async def put(request, context):
        calls["put"] += 1
        return await real_put(request, context)
    servicer.Get, servicer.Put = get, put  # type: ignore[method-assign]
    state_pb2_grpc.add_StateServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, health, calls, f"127.0.0.1:{port}"


def stored(id: str) -> state_pb2.StoredResponse:
    return state_pb2.StoredResponse(id=id, kind="response", body_json=b"{}",
                                    input_items_json=b"[]")


async def test_state_calls_spread_survive_goaway_and_a_drained_replica():
    store = MemoryStore(purge_interval=0)   # what the replicas share (PostgreSQL in production)
    services = ServiceAddresses(max_connection_age_s=0.3, max_connection_age_grace_s=5.0)
    a = await start_state(store, services)
    b = await start_state(store, services)
    client = StateClient(f"{a[3]},{b[3]}")
    try:
        await until(lambda: client.endpoints.up and all(
            ep.status is Status.UP for ep in client.endpoints.endpoints.values()), 5,
            "both state replicas up")
        deadline = time.monotonic() + 1.5   # several connection ages
        n = 0
        while time.monotonic() < deadline:
            n += 1
            await client.put(stored(f"resp_{n}"))
            assert (await client.get("", f"resp_{n}")).id == f"resp_{n}"
        assert a[2]["put"] + b[2]["put"] == n and a[2]["get"] + b[2]["get"] == n
        # Calls are taken in turn: each replica gets about half of them (a call retried after
        # meeting a GOAWAY goes to the other one).
        assert min(sum(a[2].values()), sum(b[2].values())) >= n * 2 // 3
        await a[1].enter_graceful_shutdown()
        await a[0].stop(5.0)
        before = a[2]["get"]
        for i in range(20):
            assert (await client.get("", f"resp_{i + 1}")).id == f"resp_{i + 1}"
        assert a[2]["get"] == before and b[2]["get"] >= 20
    finally:
        await client.close()
        await a[0].stop(None)
        await b[0].stop(None)


async def start_router(config: Config):
    server, health = new_server(TOKEN)
    servicer = RouterServicer(config)
    router_pb2_grpc.add_RouterServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, health, servicer, f"127.0.0.1:{port}"


async def test_the_route_watch_moves_to_another_router_replica():
    providers = [{"model": f"openai/{MODEL}", "access_key": KEY},
                 {"model": "anthropic/*", "access_key": KEY}]
    config = parse_config({"model_providers": providers,
                           "model_aliases": {"fast-model": {"target": MODEL}}})
    routers = [await start_router(config), await start_router(config)]
    cache = RouteCache(",".join(r[3] for r in routers))
    try:
        assert await cache.wait_ready(5)
        watched = cache._watching
        assert watched is not None
        gone = next(r for r in routers if f"ipv4:{r[3]}" == watched.target)
        other = next(r for r in routers if r is not gone)
        await gone[1].enter_graceful_shutdown()   # as on SIGTERM
        await gone[2].close_watches()
        await gone[0].stop(5.0)
        await until(lambda: cache._watching is not None and cache._watching is not watched
                    and cache.connected, 10, "the watch on the other replica")
        assert cache._watching.target == f"ipv4:{other[3]}"
        await other[2].update(parse_config({"model_providers": providers,
                                            "model_aliases": {"later": {"target": MODEL}}}))
        await until(lambda: cache.lookup("later") is not None, 10, "the new table")
        assert cache.lookup("claude-3-opus-latest") is None   # a wildcard: asks a live router
        plan = await cache.resolve("claude-3-opus-latest")
        assert plan.targets[0].provider == "anthropic/*"
    finally:
        await cache.close()
        for r in routers:
            await r[0].stop(None)


async def test_health_watches_end_when_a_server_drains():
    """A watch never ends on its own; the drain must not wait its whole length for one."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    server, health = new_server(None)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == SERVING
        await health.enter_graceful_shutdown()
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        started = time.monotonic()
        await server.stop(30.0)
        assert time.monotonic() - started < 5
        assert await watch.read() is grpc.aio.EOF
