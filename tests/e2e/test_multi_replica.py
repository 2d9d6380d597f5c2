"""Switchyard at scale, as local processes: three edges, providers replicas, a router and a
state service on a real PostgreSQL, limits in a real Redis — each a `switchyard serve`
process reading the one config file, each given only its own secrets (as the k8s pods are).

Shown: a per-key limit of N admits N across the three edges, not 3N; a conversation started
through one edge continues through another; both providers replicas serve, a third started
during load gets traffic and one stopped during load loses no request; a key removed from
the file is refused by all three edges within 5 s, every process having reloaded.

Which providers replica served a request is read from the upstream emulator's log: each
replica's `base_url` ends in its own path (`${REPLICA}` from its environment).
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from switchyard.common.internal_auth import TOKEN_ENV
from tests.e2e.harness import ROOT, free_port, wait_for
from tests.emulator import Emulator
from tests.support.postgres import postgres_server
from tests.support.redis import redis_server

UPSTREAM_KEY = "sk-upstream-replicas-0123"
LIMITED, LOAD, LEAVES = "gw-limited-0123456789", "gw-load-0123456789", "gw-leaves-0123456789"
REDIS_PASSWORD = "redis-replicas-secret-0123"
LIMIT = 6
EDGES = 3
USER = [{"role": "user", "content": "hi"}]

pg = postgres_server()
store = redis_server(password=REDIS_PASSWORD)


def config_text(emu_url: str, redis_port: int, ports: dict[str, int | list[int]],
                keys: tuple[str, ...] = ("LIMITED", "LOAD", "LEAVES")) -> str:
    key_lines = "".join(
        f"    - {{key: ${name}_KEY, tenant: {name.lower()}"
        f"{', requests_per_minute: ' + str(LIMIT) if name == 'LIMITED' else ''}}}\n"
        for name in keys)
    replicas = ", ".join(f"127.0.0.1:{p}" for p in ports["providers"])  # type: ignore[union-attr]
    return f"""version: v0.3.0
listeners:   # every edge binds its own SWITCHYARD_EDGE_LISTEN instead
  - {{type: model, name: model_listener, address: 127.0.0.1, port: {ports['listener']},
     timeout: 10s}}
model_providers:
  - model: openai/gpt-4o-mini
    access_key: $UPSTREAM_KEY
    base_url: "{emu_url}/${{REPLICA:-none}}"
    default: true
state_storage: {{type: postgres, connection_string: $DATABASE_URL}}
auth:
  keys:
{key_lines}redis:
  url: "redis://:${{REDIS_PASSWORD}}@127.0.0.1:{redis_port}/0"
  on_unavailable: deny
limits: {{drain_seconds: 10}}
services:
  router: 127.0.0.1:{ports['router']}
  state: 127.0.0.1:{ports['state']}
  providers: [{replicas}]
"""


class Cluster:
    """`switchyard serve` processes by name, each with its own environment and log."""

    def __init__(self, workdir: Path, config_path: Path, secrets: dict[str, dict[str, str]]
                 ) -> None:
        self.workdir = workdir
        self.config_path = config_path
        self.secrets = secrets
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        every = {name for values in secrets.values() for name in values}
        # Nothing of the test's own environment that could stand in for a service's secret.
        self.base = {k: v for k, v in os.environ.items()
                     if k not in every and not k.startswith("SWITCHYARD_")}
        self.base.update({"PYTHONUNBUFFERED": "1", TOKEN_ENV: "replicas-internal-token-0123",
                          "SWITCHYARD_RUN_DIR": str(workdir / "run")})

    def start(self, name: str, service: str, **env: str) -> None:
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "switchyard", "serve", service, "--config",
                 str(self.config_path)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**self.base, **self.secrets[service], **env}, start_new_session=True)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def alive(self, name: str) -> bool:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")
        return True

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name, timeout=20.0)


@pytest.fixture(scope="module")
def emulator():
    # Answers take 100 ms: every replica has requests in flight when one is stopped.
    with Emulator(openai_keys={UPSTREAM_KEY}, latency_ms=100) as emu:
        yield emu


@pytest.fixture(scope="module")
def cluster(emulator, pg, store, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("replicas")
    ports = {"listener": free_port(), "router": free_port(), "state": free_port(),
             "providers": [free_port() for _ in range(3)]}
    path = workdir / "plano_config.yaml"
    path.write_text(config_text(emulator.url, store.port, ports))
    secrets = {"router": {}, "state": {"DATABASE_URL": pg.create_database()},
               "providers": {"UPSTREAM_KEY": UPSTREAM_KEY},
               "edge": {"LIMITED_KEY": LIMITED, "LOAD_KEY": LOAD, "LEAVES_KEY": LEAVES,
                        "REDIS_PASSWORD": REDIS_PASSWORD}}
    c = Cluster(workdir, path, secrets)
    c.ports, c.redis_port = ports, store.port
    c.edges = [f"http://127.0.0.1:{free_port()}" for _ in range(EDGES)]
    try:
        c.start("state", "state")
        c.start("router", "router")
        for i in (1, 2):
            c.start(f"providers-{i}", "providers", REPLICA=f"r{i}",
                    SWITCHYARD_PROVIDERS_LISTEN=f"127.0.0.1:{ports['providers'][i - 1]}")
        for i, url in enumerate(c.edges):
            c.start(f"edge-{i}", "edge", SWITCHYARD_EDGE_LISTEN=url.removeprefix("http://"))

        def ready() -> bool:
            for name in c.procs:
                c.alive(name)
            return all(probe(url + "/readyz") == 200 for url in c.edges)
        wait_for(ready, 60, "three edges ready (routes loaded, providers reachable)")
        yield c
    finally:
        c.stop_all()


def probe(url: str) -> int:
    try:
        return httpx.get(url, timeout=1.0).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture
def emu(emulator):
    emulator.reset()
    return emulator


def served(emu: Emulator) -> collections.Counter[str]:
    """Upstream requests by the providers replica that made them."""
    return collections.Counter(r["path"].split("/")[1] for r in emu.requests()
                               if r["path"].endswith("/chat/completions"))


def chat(client: httpx.Client, edge: str, key: str, text: str, stream: bool = False
         ) -> httpx.Response:
    return client.post(f"{edge}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                       json={"model": "gpt-4o-mini", "stream": stream,
                             "messages": [{"role": "user", "content": text}]})


def test_a_per_key_limit_admits_n_across_the_three_edges(cluster, emu):
    client = httpx.Client(timeout=30)
    codes = [chat(client, cluster.edges[i % EDGES], LIMITED, f"limited {i}").status_code
             for i in range(3 * LIMIT)]
    assert codes.count(200) == LIMIT and codes.count(429) == 2 * LIMIT, codes
    assert codes[:LIMIT] == [200] * LIMIT               # the first N, whichever edge
    assert len(emu.requests()) == LIMIT                  # the refused never went upstream


def test_a_conversation_continues_through_another_edge(cluster, emu):
    first, second, third = (openai.OpenAI(api_key=LOAD, base_url=f"{edge}/v1", max_retries=0,
                                          timeout=30) for edge in cluster.edges)
    started = first.responses.create(model="gpt-4o-mini", input="my name is Ada")
    follow = second.responses.create(model="gpt-4o-mini", input="what is my name?",
                                     previous_response_id=started.id)
    assert follow.previous_response_id == started.id
    turn = emu.requests()[-1]["json"]["messages"]
    texts = [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"]
             for m in turn]
    assert texts == ["my name is Ada", "Echo: my name is Ada", "what is my name?"]
    assert third.responses.retrieve(follow.id).output_text == "Echo: what is my name?"


class Load:
    """Worker threads sending requests back to back through the three edges (streaming
    and not), until stopped; every outcome kept."""

    def __init__(self, edges: list[str], workers: int = 6) -> None:
        self.edges = edges
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def _run(self, worker: int) -> None:
        client = httpx.Client(timeout=30)
        n = 0
        while not self._stop.is_set():
            n += 1
            text, stream = f"load w{worker} n{n}", n % 2 == 0
            edge = self.edges[(worker + n) % len(self.edges)]
            try:
                r = chat(client, edge, LOAD, text, stream)
                body = r.text
                good = r.status_code == 200 and (f"Echo: {text}" in body if not stream else
                                                 "[DONE]" in body and "Echo" in body)
            except httpx.HTTPError as exc:
                good, body = False, repr(exc)
            with self._lock:
                if good:
                    self.ok += 1
                else:
                    self.failures.append(f"{edge} stream={stream}: {body[:300]}")

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)


def test_replicas_serve_join_and_leave_under_load_without_losing_a_request(cluster, emu):
    load = Load(cluster.edges)
    try:
        wait_for(lambda: served(emu)["r1"] >= 10 and served(emu)["r2"] >= 10, 20,
                 "both providers replicas to serve")
        cluster.start("providers-3", "providers", REPLICA="r3",
                      SWITCHYARD_PROVIDERS_LISTEN=f"127.0.0.1:{cluster.ports['providers'][2]}")
        wait_for(lambda: cluster.alive("providers-3") and served(emu)["r3"] >= 10, 30,
                 "the third replica, started during load, to get traffic")
        assert cluster.stop("providers-1") == 0              # SIGTERM: it drains, exits
        after = served(emu)
        wait_for(lambda: served(emu)["r2"] - after["r2"] >= 20 and
                 served(emu)["r3"] - after["r3"] >= 20, 20,
                 "the two replicas left to share the load")
    finally:
        load.stop()
    assert not load.failures, load.failures[:5]
    assert load.ok >= 100
    assert "draining" in cluster.log("providers-1")


def test_a_removed_key_is_refused_by_every_edge_within_5s(cluster, emu):
    client = httpx.Client(timeout=30)
    assert all(chat(client, e, LEAVES, "before").status_code == 200 for e in cluster.edges)
    text = config_text(emu.url, cluster.redis_port, cluster.ports, keys=("LIMITED", "LOAD"))
    sizes = {name: len(cluster.log(name)) for name in cluster.procs}
    aside = cluster.config_path.with_suffix(".new")
    aside.write_text(text)
    edited = time.monotonic()
    aside.replace(cluster.config_path)
    refused: dict[str, float] = {}

    def all_refuse() -> bool:
        for edge in cluster.edges:
            if edge not in refused and probe_key(client, edge, LEAVES) == 401:
                refused[edge] = time.monotonic() - edited
        return len(refused) == EDGES
    wait_for(all_refuse, 5, "every edge to refuse the removed key")
    assert max(refused.values()) < 5, refused
    running = [name for name, p in cluster.procs.items() if p.poll() is None]
    assert len(running) == 1 + 1 + 2 + EDGES                 # state, router, providers-2/3
    wait_for(lambda: all("config reloaded from" in cluster.log(n)[sizes[n]:] for n in running),
             max(0.1, edited + 5 - time.monotonic()),
             f"every process ({', '.join(running)}) to reload within 5 s of the edit")
    assert all(chat(client, e, LOAD, "after").status_code == 200 for e in cluster.edges)


def probe_key(client: httpx.Client, edge: str, key: str) -> int:
    return client.get(f"{edge}/v1/models", headers={"authorization": f"Bearer {key}"}
                      ).status_code
