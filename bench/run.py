"""Run the benchmark: the emulator alone (the floor), Switchyard and the LiteLLM proxy,
interleaved scenario by scenario on this machine, and print one table.

`python -m bench.run [--scenarios chat-c1,...] [--targets direct,switchyard,litellm]
[--seconds 10] [--soak-minutes 10]` — see docs/benchmarks.md."""
from __future__ import annotations

import argparse
import functools
import os
import pathlib
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

import orjson

from bench import machine, procs, report
from bench.scenarios import (
    ROUTING,
    SCENARIOS,
    SOAK,
    TARGETS,
    Scenario,
    build_request,
    keyed,
    seed_request,
)
from bench.wrk import run_wrk

GATEWAY_CORE, LOAD_CORE = 0, 1
PROBE_REQUESTS = 50
TRACED = "switchyard-tracing"
ROUTED = "switchyard-routed"
AUTHED, LITE_AUTHED = "switchyard-auth", "litellm-auth"
BASELINE = "baseline"   # --baseline TREE: Switchyard from another checkout, same config
# Targets that differ from `switchyard`/`litellm` in one setting run only these scenarios
# (all of them with --variants-everywhere); the routed gateway only its own.
VARIANT_SCENARIOS = ("chat-c1", "chat-c64", "stream-c16")
VARIANTS = (TRACED, AUTHED, LITE_AUTHED)
DEFAULT_TARGETS = ("direct", "switchyard", AUTHED, "litellm", LITE_AUTHED, ROUTED)


def runs_on(target: str, scenario: str, everywhere: bool) -> bool:
    """Whether `target` is measured in `scenario`."""
    if target == ROUTED:
        return scenario == "routing-c1"
    if target in VARIANTS:
        return everywhere or scenario in VARIANT_SCENARIOS
    return True


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


def merge(slices: list[dict]) -> dict:
    """One row from alternating slices: counts summed, percentiles the slices' medians."""
    seconds = sum(r["seconds"] for r in slices)
    requests = sum(r["requests"] for r in slices)
    row = {**slices[0], "requests": requests, "errors": sum(r["errors"] for r in slices),
           "seconds": seconds, "rps": requests / seconds if seconds > 0 else 0.0,
           "p50_ms": statistics.median(r["p50_ms"] for r in slices),
           "p99_ms": statistics.median(r["p99_ms"] for r in slices)}
    for key in ("cpu_pct", "cpu_ms_per_req", "core_busy_pct", "core_other_pct"):
        values = [r[key] for r in slices if r.get(key) is not None]
        if len(values) == len(slices):
            row[key] = statistics.median(values)
    return row


def switch_tracing(switch: procs.TracingSwitch, target: str, url: str, scenario: Scenario,
                   warmup: float, driver: str, load_core: int | None) -> None:
    """Tracing on for TRACED, off for `switchyard` (one gateway); after a switch, load
    again for `warmup` seconds (and, switched on, until the span exporters have started)."""
    if switch.set(target == TRACED):
        measure(target, url, scenario, max(warmup, 1.0), driver, load_core)
        if switch.on:
            switch.wait_for_exporters()


def measure_tracing(switch: procs.TracingSwitch, url: str, scenario: Scenario, seconds: float,
                    slices: int, warmup: float, driver: str, load_core: int | None,
                    watched: Callable[[], list[int]] | None = None, core: int | None = None
                    ) -> tuple[dict, dict]:
    """Switchyard without and with tracing in `slices` alternating slices (ABBA...), so both
    see the same machine state; the tracing row carries the median paired p50 difference."""
    got: dict[str, list[dict]] = {"switchyard": [], TRACED: []}
    for i in range(slices):
        pair = ("switchyard", TRACED) if i % 2 == 0 else (TRACED, "switchyard")
        for target in pair:
            switch_tracing(switch, target, url, scenario, warmup, driver, load_core)
            with machine.Window(watched, core) as cpu:
                row = measure(target, url, scenario, seconds / slices, driver, load_core)
            cpu.fill(row, row["requests"])
            got[target].append(row)
    plain, traced = merge(got["switchyard"]), merge(got[TRACED])
    pairs = list(zip(got["switchyard"], got[TRACED]))
    traced["tracing_paired_p50_ms"] = statistics.median(t["p50_ms"] - p["p50_ms"]
                                                        for p, t in pairs)
    # CPU per request is steadier than latency: the services' own, and all of the
    # gateway core's (exporters that strayed there, interrupts) when it is pinned.
    if all(p.get("cpu_ms_per_req") is not None and t.get("cpu_ms_per_req") is not None
           for p, t in pairs):
        traced["tracing_paired_cpu_us"] = 1000.0 * statistics.median(
            t["cpu_ms_per_req"] - p["cpu_ms_per_req"] for p, t in pairs)
    if all("core_busy_pct" in p and "core_busy_pct" in t and p["requests"] and t["requests"]
           for p, t in pairs):
        traced["tracing_paired_core_us"] = 1e4 * statistics.median(
            t["core_busy_pct"] * t["seconds"] / t["requests"]
            - p["core_busy_pct"] * p["seconds"] / p["requests"] for p, t in pairs)
    return plain, traced


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


def seed(url: str, target: str = "switchyard") -> str:
    """Create the first Responses turn; its id is what the measured turns continue."""
    try:
        body, _ = post(url, keyed(seed_request(), target))
        return str(body.get("id", ""))
    except OSError as exc:
        print(f"bench: seeding a response at {url} failed: {exc}", file=sys.stderr)
        return ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma-separated, from: {', '.join(SCENARIOS)}")
    p.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                   help=f"comma-separated, from: {', '.join((*TARGETS, BASELINE))}; "
                        f"{', '.join(VARIANTS)} run only {', '.join(VARIANT_SCENARIOS)}")
    p.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    p.add_argument("--soak-minutes", type=int, default=0, help="chat at c=16, RSS each minute")
    p.add_argument("--latency-ms", type=float, default=0.0, help="emulator's fixed delay")
    p.add_argument("--chunks", type=int, default=20, help="stream chunks per reply")
    p.add_argument("--chunk-delay-ms", type=float, default=2.0,
                   help="pause after every stream frame (paced streams; 0: one write)")
    p.add_argument("--slow-chunk-delay-ms", type=float, default=500.0,
                   help="the slow emulator's pause (slow-* scenarios)")
    p.add_argument("--auth", action="store_true",
                   help=f"add {AUTHED} and, with litellm, {LITE_AUTHED} (client keys on)")
    p.add_argument("--variants-everywhere", action="store_true",
                   help="measure the variant targets in every scenario")
    p.add_argument("--baseline", default="",
                   help="another checkout (e.g. a git worktree of the commit before a "
                        "change): target `baseline`, its Switchyard with the same config")
    p.add_argument("--driver", choices=("wrk", "python"), default="wrk",
                   help="load generator for non-streaming scenarios")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument("--json", default="", help="also write the raw rows here")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--tracing", action="store_true",
                   help="also measure switchyard with tracing on to an OTLP receiver "
                        "(target switchyard-tracing: the same gateway, switched on by a live "
                        "reload, right after switchyard)")
    p.add_argument("--tracing-slices", type=int, default=1,
                   help="with --tracing: measure switchyard and switchyard-tracing in this "
                        "many alternating slices of --seconds (less noise on a busy machine)")
    p.add_argument("--tracing-sampling", type=float, default=100.0,
                   help="with --tracing: `random_sampling`, percent of requests traced "
                        "(below 100: what tracing on costs the requests it does not sample)")
    a = p.parse_args(argv)
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.targets = [t for t in a.targets.split(",") if t]
    if a.auth:
        a.targets += [t for t in (AUTHED, LITE_AUTHED) if t not in a.targets
                      and (t == AUTHED or "litellm" in a.targets)]
    if TRACED in a.targets:
        a.tracing = True
    if a.tracing:   # the traced rows are the `switchyard` gateway switched on, right after it
        if "switchyard" not in a.targets:
            a.targets.insert(1 if "direct" in a.targets else 0, "switchyard")
        if TRACED in a.targets:
            a.targets.remove(TRACED)
        a.targets.insert(a.targets.index("switchyard") + 1, TRACED)
    if a.baseline and BASELINE not in a.targets:
        a.targets.insert(a.targets.index("switchyard") + 1 if "switchyard" in a.targets else 0,
                         BASELINE)
    bad = [s for s in a.scenarios if s not in SCENARIOS] + [t for t in a.targets
                                                            if t not in (*TARGETS, BASELINE,
                                                                         TRACED)]
    if bad:
        p.error(f"unknown scenario/target: {', '.join(bad)}")
    if not 0 < a.tracing_sampling <= 100:
        p.error("--tracing-sampling: a percentage above 0, at most 100")
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
    sink: procs.Proc | None = None
    try:
        emulator, emu_url = procs.start_emulator(workdir, load_core, a.latency_ms, a.chunks,
                                                 a.chunk_delay_ms)
        started.append(emulator)
        slow_url = ""
        direct_pids: dict[str, Callable[[], list[int]]] = {}   # by scenario.upstream
        if any(SCENARIOS[s].upstream == "slow" for s in a.scenarios):
            slow, slow_url = procs.start_emulator(workdir, load_core, a.latency_ms, a.chunks,
                                                  a.slow_chunk_delay_ms, name="emulator-slow")
            started.append(slow)
            direct_pids["slow"] = functools.partial(procs.tree, slow.proc.pid)
        urls = {"direct": emu_url}
        pids: dict[str, Callable[[], list[int]]] = {
            "direct": lambda: procs.tree(emulator.proc.pid)}
        launchers: dict[str, procs.Proc] = {}
        for target, extra in (("switchyard", {}), (AUTHED, {"auth": True}),
                              (BASELINE, {"tree": pathlib.Path(a.baseline or ".")})):
            if target in a.targets:
                gw, urls[target] = procs.start_switchyard(workdir, gw_core, emu_url, name=target,
                                                          slow_url=slow_url, **extra)
                started.append(gw)
                launchers[target] = gw
                pids[target] = functools.partial(procs.switchyard_pids, gw)
        switch: procs.TracingSwitch | None = None
        if a.tracing:
            # The spans go to a real OTLP/gRPC sink on the load core, as to a collector; the
            # traced rows are the `switchyard` gateway itself with tracing switched on.
            sink, sink_url = procs.start_otlp_sink(workdir, load_core)
            started.append(sink)
            switch = procs.TracingSwitch(launchers["switchyard"], workdir / "switchyard.yaml",
                                         sink_url, a.tracing_sampling)
            urls[TRACED], pids[TRACED] = urls["switchyard"], pids["switchyard"]
        if ROUTED in a.targets:   # the same gateway with routing_preferences (routing-c1)
            routed, urls[ROUTED] = procs.start_switchyard(workdir, gw_core, emu_url,
                                                          name=ROUTED, extra=ROUTING)
            started.append(routed)
            launchers[ROUTED] = routed
            pids[ROUTED] = lambda: procs.switchyard_pids(routed)
        for target in ("litellm", LITE_AUTHED):
            if target in a.targets:
                lite, urls[target] = procs.start_litellm(workdir, gw_core, emu_url, name=target,
                                                         slow_url=slow_url,
                                                         auth=target == LITE_AUTHED)
                started.append(lite)
                pids[target] = functools.partial(procs.tree, lite.proc.pid)
        # Idle memory, before any load: the processes under test, and `switchyard up`'s own.
        idle = {t: {"rss_mb": procs.rss_mb(pids[t]()), "pss_mb": procs.pss_mb(pids[t]()),
                    "launcher_rss_mb": procs.rss_mb([launchers[t].proc.pid])
                    if t in launchers else None,
                    "processes": procs.process_rss(pids[t]())}
                for t in a.targets if t in pids and t not in ("direct", TRACED)}
        for t, m in idle.items():
            print(f"bench: {t} idle RSS {m['rss_mb']:.0f} MB (PSS {m['pss_mb']:.0f} MB)"
                  + (f", launcher {m['launcher_rss_mb']:.0f} MB"
                     if m["launcher_rss_mb"] is not None else ""), flush=True)
        state_before = machine.state(str(procs.LITELLM_VENV / "bin" / "python")
                                     if "litellm" in a.targets else None)
        seeds = {t: seed(urls[t], t) for t in a.targets if t != "direct"
                 and any(SCENARIOS[s].kind == "responses"
                         and runs_on(t, s, a.variants_everywhere) for s in a.scenarios)}
        direct_url = {"slow": slow_url}   # scenario.upstream -> the emulator it runs on
        for name in a.scenarios:
            scenario = SCENARIOS[name]
            sliced = (a.tracing and a.tracing_slices > 1 and "switchyard" in a.targets
                      and scenario.kind != "responses" and not scenario.stream)
            paired: dict[str, dict] = {}
            for target in a.targets:
                if not runs_on(target, name, a.variants_everywhere):
                    continue
                url = direct_url.get(scenario.upstream, "") if target == "direct" else ""
                url = url or urls[target]
                prev = seeds.get(target, "")
                if switch is not None and target in ("switchyard", TRACED) and not sliced:
                    switch_tracing(switch, target, url, scenario, 0.0, a.driver, load_core)
                if a.warmup > 0 and not (sliced and target == TRACED):   # warmed up below
                    measure(target, url, scenario, a.warmup, a.driver, load_core, prev)
                if sliced and target in ("switchyard", TRACED):
                    assert switch is not None
                    if not paired:
                        paired["switchyard"], paired[TRACED] = measure_tracing(
                            switch, url, scenario, a.seconds, a.tracing_slices, a.warmup,
                            a.driver, load_core, pids.get("switchyard"), gw_core)
                    row = paired[target]
                else:
                    watched = (direct_pids.get(scenario.upstream, pids["direct"])
                               if target == "direct" else pids.get(target))
                    with machine.Window(watched, gw_core) as cpu:
                        row = measure(target, url, scenario, a.seconds, a.driver,
                                      load_core, prev)
                    cpu.fill(row, row["requests"])
                row.update(target=target, scenario=name, loadavg=os.getloadavg()[0])
                if target in pids and target != "direct":
                    row["rss_mb"] = procs.rss_mb(pids[target]())
                if target in ("switchyard", TRACED, ROUTED, AUTHED, BASELINE) \
                        and not scenario.stream:
                    row["overhead_hdr_p50_ms"] = overhead_probe(urls[target], scenario, prev)
                rows.append(row)
                print(f"bench: {target:<10} {name:<14} {row['rps']:8.0f} req/s  "
                      f"p50 {row['p50_ms']:.2f} ms  errors {row['errors']}"
                      + (f"  TTFT p50 {row['ttft_p50_ms']:.2f} ms  {row['chunks_per_s']:.0f} "
                         f"chunks/s" if "chunks_per_s" in row else "")
                      + (f"  CPU {row['cpu_pct']:.0f}%" if "cpu_pct" in row else "")
                      + (f"  ({row['first_error']})" if row.get("first_error") else "")
                      + (f"  tracing ({a.tracing_sampling:g} %) +p50 "
                         f"{row['tracing_paired_p50_ms']:.2f} ms (median of "
                         f"{a.tracing_slices} paired slices)"
                         if "tracing_paired_p50_ms" in row else "")
                      + (f", CPU {row['tracing_paired_cpu_us']:+.0f} µs/req"
                         if "tracing_paired_cpu_us" in row else "")
                      + (f", gateway core {row['tracing_paired_core_us']:+.0f} µs/req"
                         if "tracing_paired_core_us" in row else ""),
                      flush=True)
        for minute in range(1, a.soak_minutes + 1):
            for target in (t for t in a.targets if t in pids and t != "direct"):
                s = measure(target, urls[target], SOAK, 60.0, a.driver, load_core)
                s.update(target=target, minute=minute, rss_mb=procs.rss_mb(pids[target]()))
                soak.append(s)
                print(f"bench: soak {target} minute {minute}: {s['rps']:.0f} req/s, "
                      f"RSS {s['rss_mb']:.0f} MB", flush=True)
    finally:
        for p in reversed(started):
            p.stop()
    if sink is not None:
        print(f"bench: the OTLP sink {procs.sink_received(sink)}", flush=True)
    report.derive(rows)
    for r in rows:
        if r.get("routing_added_p50_ms") is not None:
            print(f"bench: routing adds {r['routing_added_p50_ms']:.2f} ms at p50 to "
                  f"{r['scenario']} (routed {r['p50_ms']:.2f} ms vs unrouted)", flush=True)
    state = {"before": state_before, "after": machine.state(), "pinned": pinned,
             "seconds": a.seconds, "warmup": a.warmup, "chunks": a.chunks,
             "chunk_delay_ms": a.chunk_delay_ms, "slow_chunk_delay_ms": a.slow_chunk_delay_ms}
    print()
    print(report.render(rows, soak, a.markdown, idle=idle, state=state))
    if a.json:
        pathlib.Path(a.json).write_bytes(orjson.dumps({"rows": rows, "soak": soak,
                                                       "pinned": pinned, "idle": idle,
                                                       "machine": state},
                                                      option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
