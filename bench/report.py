"""The results table: plain text for the terminal, Markdown for docs/benchmarks.md."""
from __future__ import annotations

from collections.abc import Sequence

MAIN_COLS = ("target", "scenario", "req/s", "p50 ms", "p99 ms", "errors", "+p50 vs direct",
             "% of direct", "SY/LiteLLM req/s", "overhead hdr p50", "RSS MB", "CPU %",
             "CPU ms/req", "other on core %")
STREAM_COLS = ("target", "scenario", "TTFT p50", "TTFT p99", "+TTFT p50", "gap p50",
               "gap p99", "+gap p99", "chunks/s", "chunks % of direct")
# Each gateway variant against its LiteLLM counterpart (same setting on both sides).
LITELLM_OF = {"switchyard": "litellm", "switchyard-auth": "litellm-auth",
              "baseline": "litellm"}


def _f(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def derive(rows: list[dict]) -> None:
    """Fill the comparison columns: added latency over direct, Switchyard/LiteLLM ratio."""
    by = {(r["target"], r["scenario"]): r for r in rows}
    for r in rows:
        base = by.get(("direct", r["scenario"]))
        r["added_p50_ms"] = (r["p50_ms"] - base["p50_ms"]
                             if base and r["target"] != "direct" else None)
        if "ttft_p50_ms" in r and base and r["target"] != "direct":
            r["added_ttft_p50_ms"] = r["ttft_p50_ms"] - base.get("ttft_p50_ms", 0.0)
            r["added_gap_p99_ms"] = r["gap_p99_ms"] - base.get("gap_p99_ms", 0.0)
        if r["target"] == "switchyard-routed":   # what routing adds to the same request
            plain = by.get(("switchyard", r["scenario"]))
            r["routing_added_p50_ms"] = r["p50_ms"] - plain["p50_ms"] if plain else None
        lite = by.get((LITELLM_OF.get(r["target"], ""), r["scenario"]))
        r["ratio"] = r["rps"] / lite["rps"] if lite and lite["rps"] > 0 else None
        r["pct_of_direct"] = (100.0 * r["rps"] / base["rps"] if base and base["rps"] > 0
                              and r["target"] != "direct" else None)
        if "chunks_per_s" in r and base and base.get("chunks_per_s") and r["target"] != "direct":
            r["chunks_pct_of_direct"] = 100.0 * r["chunks_per_s"] / base["chunks_per_s"]


def main_rows(rows: Sequence[dict]) -> list[list[str]]:
    return [[r["target"], r["scenario"], _f(r["rps"], 0), _f(r["p50_ms"]), _f(r["p99_ms"]),
             str(r["errors"]), _f(r.get("added_p50_ms")), _f(r.get("pct_of_direct"), 0),
             _f(r.get("ratio"), 1), _f(r.get("overhead_hdr_p50_ms")), _f(r.get("rss_mb"), 0),
             _f(r.get("cpu_pct"), 0), _f(r.get("cpu_ms_per_req")),
             _f(r.get("core_other_pct"), 0)] for r in rows]


def stream_rows(rows: Sequence[dict]) -> list[list[str]]:
    return [[r["target"], r["scenario"], _f(r["ttft_p50_ms"]), _f(r["ttft_p99_ms"]),
             _f(r.get("added_ttft_p50_ms")), _f(r["gap_p50_ms"]), _f(r["gap_p99_ms"]),
             _f(r.get("added_gap_p99_ms")), _f(r.get("chunks_per_s"), 0),
             _f(r.get("chunks_pct_of_direct"), 0)] for r in rows if "ttft_p50_ms" in r]


def text_table(cols: Sequence[str], body: list[list[str]]) -> str:
    widths = [max(len(c), *(len(row[i]) for row in body)) if body else len(c)
              for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*cols), fmt.format(*("-" * w for w in widths)),
                      *(fmt.format(*row) for row in body)])


def md_table(cols: Sequence[str], body: list[list[str]]) -> str:
    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(cols))) + "|"
    return "\n".join([head, sep, *("| " + " | ".join(row) + " |" for row in body)])


def soak_rows(samples: Sequence[dict]) -> list[list[str]]:
    return [[s["target"], str(s["minute"]), _f(s["rps"], 0), _f(s["p50_ms"]), _f(s["p99_ms"]),
             str(s["errors"]), _f(s["rss_mb"], 0)] for s in samples]


SOAK_COLS = ("target", "minute", "req/s", "p50 ms", "p99 ms", "errors", "RSS MB")


def render(rows: list[dict], soak: list[dict], markdown: bool,
           idle: dict[str, dict] | None = None, state: dict | None = None) -> str:
    """The tables: requests, streams, soak; with `idle`/`state` (bench/summary.py) also the
    targets met or not, idle memory and the machine's state."""
    from bench import summary
    table = md_table if markdown else text_table
    parts = [summary.machine_lines(state)] if state else []
    parts.append(table(MAIN_COLS, main_rows(rows)))
    streams = stream_rows(rows)
    if streams:
        parts.append(table(STREAM_COLS, streams))
    if soak:
        parts.append(table(SOAK_COLS, soak_rows(soak)))
    if idle:
        parts.append(table(summary.MEMORY_COLS, summary.memory_rows(idle)))
    if state is not None:
        parts.append(table(summary.TARGET_COLS, summary.target_rows(rows, idle or {})))
    return "\n\n".join(parts)
