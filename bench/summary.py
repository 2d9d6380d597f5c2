"""The run's summary tables: the issue-18 targets (met or not, beside direct and LiteLLM),
idle memory per target and process, and the machine's state during the run."""
from __future__ import annotations

from dataclasses import dataclass

TARGET_COLS = ("target", "measure", "direct", "LiteLLM", "Switchyard", "goal", "met")
MEMORY_COLS = ("target", "idle RSS MB", "idle PSS MB", "launcher RSS MB", "by process (RSS MB)")


@dataclass(frozen=True)
class Goal:
    """One target: a scenario's metric, read as added to direct (`added`: at most `bound`),
    as a share of direct (`share`: at least `bound`), or as it is (`least`: at least)."""
    name: str
    scenario: str
    key: str
    mode: str      # added | share | least
    bound: float
    goal: str
    digits: int = 2

    def shown(self, row: dict | None, direct: dict | None) -> str:
        """The target's value for `row`, as the table shows it."""
        if row is None or row.get(self.key) is None:
            return ""
        v = row[self.key]
        if self.mode == "added" and direct is not None:
            return f"+{v - direct[self.key]:.{self.digits}f}"
        if self.mode == "share" and direct is not None and direct.get(self.key):
            return f"{v:,.{self.digits}f} ({100.0 * v / direct[self.key]:.0f} %)"
        return f"{v:,.{self.digits}f}"

    def met(self, row: dict | None, direct: dict | None) -> str:
        if row is None or row.get(self.key) is None:
            return ""
        v = row[self.key]
        if self.mode == "least":
            return "yes" if v >= self.bound else "no"
        if direct is None or direct.get(self.key) is None:
            return ""
        d = direct[self.key]
        ok = v - d <= self.bound if self.mode == "added" else v >= self.bound * d
        return "yes" if ok else "no"


GOALS = (
    Goal("chat c=1, added p50 ms", "chat-c1", "p50_ms", "added", 0.5, "≤ +0.5 ms"),
    Goal("chat c=64, req/s", "chat-c64", "rps", "least", 2500, "≥ 2,500", 0),
    Goal("stream c=16, req/s", "stream-c16", "rps", "share", 0.95, "≥ 95 % of direct", 0),
    Goal("stream c=16, TTFT p50 ms", "stream-c16", "ttft_p50_ms", "added", 2.0,
         "≤ +2 ms added"),
    Goal("stream c=64 paced, chunks/s", "stream-c64", "chunks_per_s", "share", 0.90,
         "≥ 90 % of direct", 0),
)


def target_rows(rows: list[dict], idle: dict[str, dict]) -> list[list[str]]:
    """The issue's targets, one row each; a scenario not run leaves its row empty."""
    by = {(r["target"], r["scenario"]): r for r in rows}
    out = []
    for g in GOALS:
        direct = by.get(("direct", g.scenario))
        sy, lite = by.get(("switchyard", g.scenario)), by.get(("litellm", g.scenario))
        d_txt = "" if direct is None else f"{direct[g.key]:,.{g.digits}f}"
        out.append(["switchyard", g.name, d_txt, g.shown(lite, direct), g.shown(sy, direct),
                    g.goal, g.met(sy, direct)])
    sy_idle, lite_idle = idle.get("switchyard"), idle.get("litellm")
    if sy_idle:
        rss, launcher = sy_idle["rss_mb"], sy_idle.get("launcher_rss_mb")
        out.append(["switchyard", "RSS of the four services, idle (MB)", "–",
                    f"{lite_idle['rss_mb']:.0f}" if lite_idle else "",
                    f"{rss:.0f}" + (f" (+{launcher:.0f} launcher)" if launcher else ""),
                    "≤ 200", "yes" if rss <= 200 else "no"])
    return out


def memory_rows(idle: dict[str, dict]) -> list[list[str]]:
    return [[t, f"{m['rss_mb']:.0f}", f"{m['pss_mb']:.0f}",
             "" if m.get("launcher_rss_mb") is None else f"{m['launcher_rss_mb']:.0f}",
             ", ".join(f"{k} {v:.0f}" for k, v in sorted(m.get("processes", {}).items()))]
            for t, m in idle.items()]


def machine_lines(state: dict) -> str:
    """A few lines on the machine: cores, load before and after, what else was busy."""
    before, after = state.get("before") or {}, state.get("after") or {}
    lines = [
        f"machine: {before.get('cores')} cores ({before.get('cpu', '?')}), kernel "
        f"{before.get('kernel', '?')}, {before.get('mem_total', '?')} RAM; Python "
        f"{before.get('python', '?')}, grpcio {before.get('grpcio', '?')}, uvicorn "
        f"{before.get('uvicorn', '?')}, aiohttp {before.get('aiohttp', '?')}"
        + (f", LiteLLM {before['litellm']}" if before.get("litellm") else ""),
        f"load average (1/5/15 min): {before.get('loadavg')} before, {after.get('loadavg')} "
        f"after; pinned: {state.get('pinned')}; {state.get('seconds')} s per measurement "
        f"after {state.get('warmup')} s warm-up; streams of {state.get('chunks')} chunks "
        f"{state.get('chunk_delay_ms')} ms apart (slow: {state.get('slow_chunk_delay_ms')} ms)",
        f"busiest processes at the start: {'; '.join(before.get('busiest', []))}",
        "`other on core %`: the gateway core's busy time not spent by the target's processes "
        "(other work on the machine during that row).",
    ]
    return "\n".join(lines)
