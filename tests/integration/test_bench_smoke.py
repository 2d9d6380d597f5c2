"""Smoke run of the benchmark harness: direct and Switchyard, one short scenario, the Python
driver (no wrk, no LiteLLM). Asserts a table comes out with traffic and no errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import orjson

from bench import procs


def test_bench_smoke_produces_a_table(tmp_path):
    out_json = tmp_path / "rows.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--targets", "direct,switchyard",
         "--scenarios", "chat-c16", "--seconds", "2", "--warmup", "0.5", "--driver", "python",
         "--json", str(out_json)],
        cwd=procs.ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "req/s" in run.stdout and "+p50 vs direct" in run.stdout
    rows = {r["target"]: r for r in json.loads(out_json.read_text())["rows"]}
    assert set(rows) == {"direct", "switchyard"}
    for row in rows.values():
        assert row["scenario"] == "chat-c16"
        assert row["requests"] > 0, row
        assert row["rps"] > 0, row
        assert row["errors"] == 0, row
    sy = rows["switchyard"]
    assert sy["added_p50_ms"] is not None
    assert sy["rss_mb"] > 0   # the four services' processes were found
    assert sy["overhead_hdr_p50_ms"] is not None and sy["overhead_hdr_p50_ms"] >= 0
    table_lines = [ln for ln in run.stdout.splitlines() if ln.startswith(("direct", "switchyard"))]
    assert len(table_lines) >= 2


def test_bench_tracing_rows_come_from_one_gateway_switched_by_reload(tmp_path):
    """`--tracing` with slices: the traced rows are the same gateway switched on and off by
    live reloads; both rows have traffic and the paired difference is reported."""
    out_json = tmp_path / "rows.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--targets", "switchyard", "--tracing",
         "--tracing-slices", "2", "--scenarios", "chat-c1", "--seconds", "2", "--warmup",
         "0.5", "--driver", "python", "--json", str(out_json)],
        cwd=procs.ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {r["target"]: r for r in json.loads(out_json.read_text())["rows"]}
    assert set(rows) == {"switchyard", "switchyard-tracing"}
    for row in rows.values():
        assert row["requests"] > 0 and row["errors"] == 0, row
    assert rows["switchyard-tracing"]["tracing_paired_p50_ms"] is not None
    assert re.search(r"tracing \(100 %\) \+p50 -?\d.*CPU [+-]\d+ µs/req", run.stdout), \
        run.stdout
    assert rows["switchyard-tracing"]["tracing_paired_cpu_us"] is not None
    received = re.search(r"the OTLP sink received (\d+) spans in (\d+) exports", run.stdout)
    assert received and int(received[1]) >= rows["switchyard-tracing"]["requests"], run.stdout


def test_bench_tracing_below_full_sampling(tmp_path):
    """`--tracing-sampling`: tracing on at a tiny rate is measured the same way (the cost of
    being switched on for the requests not sampled); the sink sees far fewer spans than
    requests, so the rate did reach the services."""
    out_json = tmp_path / "rows.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--targets", "switchyard", "--tracing",
         "--tracing-slices", "2", "--tracing-sampling", "0.0001", "--scenarios", "chat-c1",
         "--seconds", "2", "--warmup", "0.5", "--driver", "python", "--json", str(out_json)],
        cwd=procs.ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {r["target"]: r for r in json.loads(out_json.read_text())["rows"]}
    traced = rows["switchyard-tracing"]
    assert traced["requests"] > 0 and traced["errors"] == 0, traced
    assert re.search(r"tracing \(0.0001 %\) \+p50 -?\d", run.stdout), run.stdout
    received = re.search(r"the OTLP sink received (\d+) spans", run.stdout)
    assert received and int(received[1]) < traced["requests"] / 10, run.stdout


def test_bench_refuses_a_sampling_rate_out_of_range():
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--tracing", "--tracing-sampling", "0"],
        cwd=procs.ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--tracing-sampling" in run.stderr, run.stderr


def test_bench_streams_through_each_grammar(tmp_path):
    """Paced streams, one client format and one upstream family: the direct row reads the
    family's own stream (Bedrock's binary one), the gateway's the client's; tokens and CPU
    are counted and the summary tables come out."""
    out_json = tmp_path / "rows.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--targets", "direct,switchyard",
         "--scenarios", "stream-c16-client-messages,stream-c16-upstream-bedrock",
         "--seconds", "1.5", "--warmup", "0", "--json", str(out_json)],
        cwd=procs.ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(out_json.read_text())
    assert len(data["rows"]) == 4
    for row in data["rows"]:
        assert row["errors"] == 0 and row["requests"] > 0, row
        assert row["chunks_per_s"] > 0 and row["ttft_p50_ms"] > 0, row
        assert row["cpu_ms_per_req"] is not None and row["cpu_ms_per_req"] > 0, row
    assert data["idle"]["switchyard"]["rss_mb"] > 0
    assert set(data["idle"]["switchyard"]["processes"]) == {"edge", "providers", "router",
                                                              "state"}
    assert "RSS of the four services, idle (MB)" in run.stdout
    assert "load average" in run.stdout


def test_stream_driver_counts_tokens_and_done():
    from bench.streams import counter
    count = counter("chat")
    assert count(b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n'
                 b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
                 b'data: {"choices":[{"delta":{"content":" there"}}]}\n\ndata: [DO') == (2, False)
    assert count(b"NE]\n\n") == (0, True)


def test_stream_counters_read_every_wire_the_bench_sees():
    """Each grammar a target may answer in: its content tokens and its end."""
    from bench.streams import counter
    from tests.emulator.bedrock_eventstream import event
    def ev(name, obj):
        return f"event: {name}\ndata: ".encode() + orjson.dumps(obj) + b"\n\n"
    messages = counter("messages")
    assert messages(ev("message_start", {"type": "message_start"})
                    + ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": "a"}})
                    ) == (1, False)
    assert messages(ev("message_stop", {"type": "message_stop"})) == (0, True)
    responses = counter("responses")
    assert responses(ev("response.output_text.delta",
                        {"type": "response.output_text.delta", "delta": "a"})
                     + ev("response.completed", {"type": "response.completed"})) == (1, True)
    gemini = counter("gemini")
    part = {"candidates": [{"content": {"parts": [{"text": "a"}]}}]}
    last = {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}]}
    assert gemini(b"data: " + orjson.dumps(part) + b"\r\n\r\ndata: "
                  + orjson.dumps(last) + b"\r\n\r\n") == (2, True)
    bedrock = counter("bedrock")
    raw = (event("messageStart", b'{"role":"assistant"}')
           + event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"a"}}')
           + event("messageStop", b'{"stopReason":"end_turn"}'))
    assert bedrock(raw[:10]) == (0, False)   # a message split across reads
    assert bedrock(raw[10:]) == (1, True)


def test_wrk_script_replays_the_request_and_reports_json():
    from bench.scenarios import SCENARIOS, build_request
    from bench.wrk import MARK, lua_script
    req = build_request(SCENARIOS["anthropic-c16"], "switchyard")
    script = lua_script(req)
    assert req.body.decode() in script
    assert 'wrk.headers["anthropic-version"] = "2023-06-01"' in script
    assert MARK in script and "latency:percentile(99)" in script
