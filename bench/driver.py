"""Python load driver (aiohttp client, run in its own process): fixed concurrency for a fixed
time; for streams it records time to first token and the gaps between tokens.

`python -m bench.driver --base URL --scenario stream-c16 --target switchyard --seconds 10`
prints one JSON object (see bench.stats.result)."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp
import orjson

from bench import streams
from bench.scenarios import SCENARIOS, SOAK, HttpRequest, build_request
from bench.stats import percentile, result

MAX_SAMPLES = 2_000_000   # bound the memory of a long run


class Recorder:
    """Per-request timings of one run."""

    def __init__(self) -> None:
        self.ok = 0
        self.errors = 0
        self.latency: list[float] = []
        self.ttft: list[float] = []
        self.gaps: list[float] = []
        self.tokens = 0   # content tokens received, all streams together
        self.first_error = ""

    def fail(self, why: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = why[:300]


async def _one(session: aiohttp.ClientSession, url: str, req: HttpRequest, stream: bool,
               rec: Recorder, wire: str = "chat") -> None:
    t0 = time.perf_counter()
    try:
        async with session.post(url, data=req.body, headers=req.headers) as resp:
            if resp.status != 200:
                rec.fail(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
                return
            if not stream:
                await resp.read()
            else:
                count, last, finished = streams.counter(wire), 0.0, False
                async for chunk in resp.content.iter_any():
                    now = time.perf_counter()
                    tokens, done = count(chunk)
                    rec.tokens += tokens
                    finished = finished or done
                    for _ in range(tokens):
                        if not last:
                            rec.ttft.append((now - t0) * 1000.0)
                        elif len(rec.gaps) < MAX_SAMPLES:
                            rec.gaps.append((now - last) * 1000.0)
                        last = now
                if not finished or not last:
                    rec.fail("stream ended without tokens or [DONE]")
                    return
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        rec.fail(f"{type(exc).__name__}: {exc}")
        return
    rec.ok += 1
    if len(rec.latency) < MAX_SAMPLES:
        rec.latency.append((time.perf_counter() - t0) * 1000.0)


async def run(base: str, req: HttpRequest, concurrency: int, seconds: float,
              stream: bool, wire: str = "chat") -> dict:
    """Keep `concurrency` requests in flight for `seconds`; return the measurement. `wire`:
    the stream grammar the target answers in (bench/streams.py)."""
    rec = Recorder()
    url = base.rstrip("/") + req.path
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)   # a slow stream lasts ~10 s
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _one(session, url, req, stream, rec, wire)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    extra: dict = {"first_error": rec.first_error}
    if stream:
        extra.update(ttft_p50_ms=percentile(rec.ttft, 50), ttft_p99_ms=percentile(rec.ttft, 99),
                     gap_p50_ms=percentile(rec.gaps, 50), gap_p99_ms=percentile(rec.gaps, 99),
                     chunks_per_s=rec.tokens / elapsed if elapsed > 0 else 0.0)
    return result(rec.ok, rec.errors, elapsed, percentile(rec.latency, 50),
                  percentile(rec.latency, 99), **extra)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.driver", description=__doc__)
    p.add_argument("--base", required=True, help="http://127.0.0.1:PORT of the target")
    p.add_argument("--scenario", required=True, choices=[*SCENARIOS, SOAK.name])
    p.add_argument("--target", required=True, help="direct | switchyard | litellm")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=0, help="override the scenario's")
    p.add_argument("--previous-response-id", default="")
    a = p.parse_args(argv)
    if not a.base.startswith("http://127.0.0.1:"):
        p.error("the bench only sends traffic to 127.0.0.1")
    scenario = SCENARIOS.get(a.scenario, SOAK)
    req = build_request(scenario, a.target, a.previous_response_id)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    wire = streams.wire_of(scenario.client, scenario.upstream, a.target)
    out = asyncio.run(run(a.base, req, a.concurrency or scenario.concurrency, a.seconds,
                          scenario.stream, wire))
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
