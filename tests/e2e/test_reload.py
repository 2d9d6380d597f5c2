"""Live config reload through a real gateway (`switchyard up`: four service processes) and
the strict emulator: an edit of the file reaches the edge (a removed gateway key is refused
within 5 s while a stream it started finishes), the router (a new alias is routed) and the
providers (a rotated provider key is what the upstream sees); a broken file keeps the
running config, each service saying why in one log record; `switchyard reload` reports
what every service did, and SIGHUP to the launcher is passed on."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest

from tests.e2e.harness import ROOT, Gateway, free_port, wait_for
from tests.emulator import Emulator
from tests.support.otlp import OTLPReceiver

KEY_A, KEY_B = "sk-upstream-key-a-0123", "sk-upstream-key-b-4567"
STAYS, LEAVES = "gw-key-stays-0123456789", "gw-key-leaves-0123456789"
SERVICES = ("state", "router", "providers", "edge")
USER = [{"role": "user", "content": "hi"}]


def config(emu_url: str, port: int, *, upstream_key: str = KEY_A, keys=(STAYS, LEAVES),
           aliases: str = "", extra: str = "") -> str:
    key_lines = "".join(f"    - {{key: {k}, tenant: t{i}}}\n" for i, k in enumerate(keys))
    return f"""version: v0.3.0
listeners:
  - {{type: model, name: model_listener, address: 127.0.0.1, port: {port}, timeout: 10s}}
model_providers:
  - model: openai/gpt-4o-mini
    access_key: {upstream_key}
    base_url: {emu_url}
    default: true
model_aliases:
  fast-model: {{target: gpt-4o-mini}}
{aliases}
auth:
  keys:
{key_lines}{extra}"""


@pytest.fixture(scope="module")
def upstream():
    with Emulator(openai_keys={KEY_A, KEY_B}) as emu:
        yield emu


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    port = free_port()
    workdir = tmp_path_factory.mktemp("reload")
    with pytest.MonkeyPatch.context() as mp:
        # Its own run directory: `switchyard reload` finds this gateway's services only.
        mp.setenv("SWITCHYARD_RUN_DIR", str(workdir / "run"))
        gw = Gateway(config(upstream.url, port), workdir, port).start()
    yield gw
    gw.stop()


@pytest.fixture
def emu(upstream):
    upstream.reset()
    return upstream


def write(gw: Gateway, text: str) -> float:
    """Replace the config as editors and `kubectl` do (write aside, rename); the time."""
    aside = gw.config_path.with_suffix(".tmp")
    aside.write_text(text)
    aside.replace(gw.config_path)
    return time.monotonic()


def reload_cli(gw: Gateway) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchyard", "reload", "--config", str(gw.config_path),
         "--timeout", "10"], cwd=ROOT, capture_output=True, text=True, timeout=30,
        env={**os.environ, "SWITCHYARD_RUN_DIR": str(gw.config_path.parent / "run")})


def oa(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gw.url}/v1", max_retries=0, timeout=30)


def reloaded_everywhere(gw: Gateway, since: int) -> bool:
    """Every service has logged a reload since the log was `since` characters long."""
    tail = gw.log()[since:]
    return all(re.search(rf" {s} INFO switchyard\.config: config reloaded", tail)
               for s in SERVICES)


def test_a_removed_key_is_refused_within_5s_while_its_stream_finishes(gateway, emu):
    words = " ".join(f"w{i}" for i in range(12))
    emu.script("gpt-4o-mini", {"reply": {"text": words}, "chunks": 12,
                               "chunk_delay": 0.4})   # a stream of ~5 s
    client = httpx.Client(timeout=30)
    body = {"model": "gpt-4o-mini", "stream": True, "messages": USER}
    with client.stream("POST", f"{gateway.url}/v1/chat/completions", json=body,
                       headers={"authorization": f"Bearer {LEAVES}"}) as stream:
        lines = stream.iter_lines()
        first = next(lines)
        assert first.startswith("data: {")                  # admitted, under the old config
        edited = write(gateway, config(emu.url, gateway.port, keys=(STAYS,)))

        def refused() -> bool:
            r = client.get(f"{gateway.url}/v1/models",
                           headers={"authorization": f"Bearer {LEAVES}"})
            assert r.status_code in (200, 401), r.text
            return r.status_code == 401
        wait_for(refused, 5, "the removed key to be refused")
        assert time.monotonic() - edited < 5
        rest = list(lines)                                 # the stream it started finishes
    chunks = [json.loads(line[6:]) for line in [first, *rest] if line.startswith("data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"]) == words
    assert "data: [DONE]" in rest
    with pytest.raises(anthropic.AuthenticationError):   # refused in every client format
        anthropic.Anthropic(api_key=LEAVES, base_url=gateway.url, max_retries=0).messages.create(
            model="gpt-4o-mini", max_tokens=10, messages=USER)
    assert oa(gateway, STAYS).chat.completions.create(model="gpt-4o-mini", messages=USER)


def test_router_and_providers_apply_an_edit_within_5s(gateway, emu):
    since = len(gateway.log())
    edited = write(gateway, config(emu.url, gateway.port, keys=(STAYS,), upstream_key=KEY_B,
                                   aliases="  reloaded-alias: {target: gpt-4o-mini}\n"))
    wait_for(lambda: reloaded_everywhere(gateway, since), 5, "every service to reload")
    assert time.monotonic() - edited < 5
    reply = oa(gateway, STAYS).chat.completions.create(model="reloaded-alias", messages=USER)
    assert reply.choices[0].message.content                 # the router published it
    (seen,) = emu.requests()
    assert seen["headers"]["authorization"] == f"Bearer {KEY_B}"   # providers rotated it


def test_a_broken_file_keeps_the_running_config_and_says_why(gateway, emu):
    good = config(emu.url, gateway.port, keys=(STAYS,), upstream_key=KEY_B,
                  aliases="  reloaded-alias: {target: gpt-4o-mini}\n")
    since = len(gateway.log())
    write(gateway, good.replace("model_aliases:", "model_aliasses:"))

    def failures() -> dict[str, int]:
        found = re.findall(r" (\w+) ERROR switchyard\.config: config reload failed: "
                           r"\S+ has errors; still running the config loaded before:\n"
                           r".*did you mean 'model_aliases'\?", gateway.log()[since:])
        return {s: found.count(s) for s in SERVICES}
    wait_for(lambda: all(failures().values()), 5, "each service to refuse the file")
    assert oa(gateway, STAYS).chat.completions.create(model="reloaded-alias", messages=USER)
    done = reload_cli(gateway)                              # SIGHUP: each answers again
    assert done.returncode == 2, done
    for s in SERVICES:
        assert re.search(rf"^{s} \(pid \d+\): kept its running config$", done.stderr, re.M)
    assert done.stderr.count("did you mean 'model_aliases'?") == 1   # one error, said once
    assert failures() == {s: 1 for s in SERVICES}            # one record each, never again
    write(gateway, good)                                     # put right: nothing to reload
    done = reload_cli(gateway)
    assert done.returncode == 0, done
    assert sorted(re.findall(r"^(\w+) \(pid \d+\): reloaded$", done.stdout, re.M)) == \
        sorted(SERVICES)


def test_reload_names_what_waits_for_a_restart_and_the_launcher_passes_sighup(gateway, emu):
    text = config(emu.url, gateway.port, keys=(STAYS,), upstream_key=KEY_B,
                  aliases="  reloaded-alias: {target: gpt-4o-mini}\n",
                  extra="limits: {keep_alive_seconds: 7}\n")
    write(gateway, text)
    done = reload_cli(gateway)
    assert done.returncode == 0, done
    assert re.search(r"^edge \(pid \d+\): reloaded; waiting for a restart: limits "
                     r"\(max_connections, header_timeout_seconds, body_timeout_seconds, "
                     r"keep_alive_seconds\)$", done.stdout, re.M), done.stdout
    for service in ("state", "router", "providers"):   # theirs is not an edge setting
        assert re.search(rf"^{service} \(pid \d+\): reloaded$", done.stdout, re.M)
    since = len(gateway.log())
    gateway.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload requested: asking state, router, providers, edge" in
             gateway.log()[since:], 5, "the launcher to pass the SIGHUP on")
    assert gateway.healthy()
    assert oa(gateway, STAYS).chat.completions.create(model="gpt-4o-mini", messages=USER)


def test_tracing_is_switched_on_off_and_on_again_without_a_restart(gateway, emu):
    """`tracing:` is applied live by every service: spans reach the receiver after the
    reload that adds it, none are made while it is gone, and they come back with it."""
    def traced(otlp: OTLPReceiver) -> str:
        return (f"tracing: {{random_sampling: 100, opentracing_grpc_endpoint: "
                f"{otlp.endpoint}}}\n")

    def send() -> str:
        reply = oa(gateway, STAYS).chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=USER)
        return reply.headers["x-request-id"]

    def services_of(otlp: OTLPReceiver, rid: str) -> set[str]:
        edge = [s for s in otlp.spans() if s.attributes.get("switchyard.request_id") == rid]
        trace_ids = {s.trace_id for s in edge}
        return {s.service for s in otlp.spans() if s.trace_id in trace_ids}

    pids = {}
    with OTLPReceiver() as otlp:
        for step, extra in enumerate((traced(otlp), "", traced(otlp))):
            write(gateway, config(emu.url, gateway.port, keys=(STAYS,), extra=extra))
            done = reload_cli(gateway)
            assert done.returncode == 0, done
            assert "waiting for a restart" not in done.stdout, done.stdout
            pids[step] = send()
        wanted = {"switchyard-edge", "switchyard-providers"}
        otlp.wait_for(lambda _: services_of(otlp, pids[2]) >= wanted, 20,
                      "the spans of the request after tracing came back")
        assert services_of(otlp, pids[0]) >= wanted
        # Each process ships its spans in order: the untraced request's would be here.
        assert services_of(otlp, pids[1]) == set()
    write(gateway, config(emu.url, gateway.port, keys=(STAYS,)))
    assert reload_cli(gateway).returncode == 0


def test_reload_without_a_running_gateway_says_so(tmp_path):
    path = tmp_path / "plano_config.yaml"
    path.write_text("model_providers: [{model: ollama/llama3.1}]\n")
    done = subprocess.run([sys.executable, "-m", "switchyard", "reload", "--config", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "SWITCHYARD_RUN_DIR": str(tmp_path / "run")})
    assert done.returncode == 1
    assert f"no running switchyard service uses {path}" in done.stderr
