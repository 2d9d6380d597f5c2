"""Run the benchmark: the emulator alone (the floor), Switchyard and the LiteLLM proxy,
interleaved scenario by scenario on this machine, and print one table.

`python -m bench.run [--scenarios chat-c1,...] [--targets direct,switchyard,litellm]
[--seconds 10] [--soak-minutes 10]` — see docs/benchmarks.md."""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time
import urllib.request

import orjson

from bench import procs, report
from bench.scenarios import SCENARIOS, SOAK, TARGETS, Scenario, build_request, seed_request
from bench.wrk import run_wrk

GATEWAY_CORE, LOAD_CORE = 0, 1
PROBE_REQUESTS = 50
TRACED = "switchyard-tracing"


def measure(target: str, url: str, scenario: Scenario, seconds: float, driver: str,
            load_core: int | None, previous_id: str = "") -> dict:
    """One load run against `url`: wrk for plain requests, the Python driver for streams."""
    if driver == "wrk" and not scenario.stream:
        req = build_request(scenario, target, previous_id)
        return run_wrk(url, req, scenario.concurrency, seconds, procs.pin(load_core))
    cmd = [*procs.pin(load_core), sys.executable, "-m", "bench.driver", "--base", url,
           "--scenario", scenario.name, "--target", target, "--seconds", str(seconds),
           "--previous-response-id", previous_id]
    out = subprocess.run(cmd, cwd=procs.ROOT, capture_output=True, text=True,
                         timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(f"driver failed: {out.stderr[-2000:]}")
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def post(url: str, req, timeout: float = 10.0) -> tuple[dict, dict]:
    """One request (seed or probe): the JSON reply and its headers."""
    r = urllib.request.Request(url + req.path, data=req.body, headers=req.headers,
                               method="POST")
    with urllib.request.urlopen(r, timeout=timeout) as resp:
        return orjson.loads(resp.read()), dict(resp.headers)


def overhead_probe(url: str, scenario: Scenario, previous_id: str) -> float | None:
    """Median `x-switchyard-overhead-ms` over a few sequential requests."""
    req = build_request(scenario, "switchyard", previous_id)
    values = []
    for _ in range(PROBE_REQUESTS):
        try:
            _, headers = post(url, req)
        except OSError:
            continue
        v = {k.lower(): h for k, h in headers.items()}.get("x-switchyard-overhead-ms")
        if v is not None:
            values.append(float(v))
    return statistics.median(values) if values else None


def seed(url: str) -> str:
    """Create the first Responses turn; its id is what the measured turns continue."""
    try:
        body, _ = post(url, seed_request())
        return str(body.get("id", ""))
    except OSError as exc:
        print(f"bench: seeding a response at {url} failed: {exc}", file=sys.stderr)
        return ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma-separated, from: {', '.join(SCENARIOS)}")
    p.add_argument("--targets", default=",".join(TARGETS), help="direct,switchyard,litellm")
    p.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    p.add_argument("--soak-minutes", type=int, default=0, help="chat at c=16, RSS each minute")
    p.add_argument("--latency-ms", type=float, default=0.0, help="emulator's fixed delay")
    p.add_argument("--chunks", type=int, default=20, help="stream chunks per reply")
    p.add_argument("--driver", choices=("wrk", "python"), default="wrk",
                   help="load generator for non-streaming scenarios")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument("--json", default="", help="also write the raw rows here")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--tracing", action="store_true",
                   help="also measure switchyard with tracing at 100%% to an OTLP receiver "
                        "(target switchyard-tracing, right after switchyard)")
    a = p.parse_args(argv)
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.targets = [t for t in a.targets.split(",") if t]
    bad = [s for s in a.scenarios if s not in SCENARIOS] + [t for t in a.targets
                                                            if t not in TARGETS]
    if bad:
        p.error(f"unknown scenario/target: {', '.join(bad)}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    pinned = not a.no_pin and (os.cpu_count() or 1) >= 2
    gw_core, load_core = (GATEWAY_CORE, LOAD_CORE) if pinned else (None, None)
    workdir = procs.ROOT / "bench" / "out" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    started: list[procs.Proc] = []
    rows: list[dict] = []
    soak: list[dict] = []
    try:
        emulator, emu_url = procs.start_emulator(workdir, load_core, a.latency_ms, a.chunks)
        started.append(emulator)
        urls = {"direct": emu_url}
        pids = {}
        if "switchyard" in a.targets:
            sy, urls["switchyard"] = procs.start_switchyard(workdir, gw_core, emu_url)
            started.append(sy)
            pids["switchyard"] = lambda: procs.switchyard_pids(sy)
        if a.tracing:
            # A real sink: the spans are exported and decoded, as with a collector.
            from tests.support.otlp import OTLPReceiver

            receiver = OTLPReceiver().start()
            traced, urls[TRACED] = procs.start_switchyard(
                workdir, gw_core, emu_url, receiver.endpoint, name=TRACED)
            started.append(traced)
            pids[TRACED] = lambda: procs.switchyard_pids(traced)
            if TRACED not in a.targets:
                i = a.targets.index("switchyard") + 1 if "switchyard" in a.targets else 0
                a.targets.insert(i, TRACED)
        if "litellm" in a.targets:
            lite, urls["litellm"] = procs.start_litellm(workdir, gw_core, emu_url)
            started.append(lite)
            pids["litellm"] = lambda: procs.tree(lite.proc.pid)
        seeds = {t: seed(urls[t]) for t in a.targets if t != "direct"
                 and any(SCENARIOS[s].kind == "responses" for s in a.scenarios)}
        for name in a.scenarios:
            scenario = SCENARIOS[name]
            for target in a.targets:
                prev = seeds.get(target, "")
                if a.warmup > 0:
                    measure(target, urls[target], scenario, a.warmup, a.driver, load_core, prev)
                row = measure(target, urls[target], scenario, a.seconds, a.driver, load_core, prev)
                row.update(target=target, scenario=name)
                if target in pids:
                    row["rss_mb"] = procs.rss_mb(pids[target]())
                if target in ("switchyard", TRACED) and not scenario.stream:
                    row["overhead_hdr_p50_ms"] = overhead_probe(urls[target], scenario, prev)
                rows.append(row)
                print(f"bench: {target:<10} {name:<14} {row['rps']:8.0f} req/s  "
                      f"p50 {row['p50_ms']:.2f} ms  errors {row['errors']}"
                      + (f"  ({row['first_error']})" if row.get("first_error") else ""),
                      flush=True)
        for minute in range(1, a.soak_minutes + 1):
            for target in (t for t in a.targets if t in pids):
                s = measure(target, urls[target], SOAK, 60.0, a.driver, load_core)
                s.update(target=target, minute=minute, rss_mb=procs.rss_mb(pids[target]()))
                soak.append(s)
                print(f"bench: soak {target} minute {minute}: {s['rps']:.0f} req/s, "
                      f"RSS {s['rss_mb']:.0f} MB", flush=True)
    finally:
        for p in reversed(started):
            p.stop()
    report.derive(rows)
    print()
    print(report.render(rows, soak, a.markdown))
    if a.json:
        pathlib.Path(a.json).write_bytes(orjson.dumps({"rows": rows, "soak": soak,
                                                       "pinned": pinned},
                                                      option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
