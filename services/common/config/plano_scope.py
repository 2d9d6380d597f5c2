"""What of Plano's config Switchyard does not serve as written, and the line `check` and
`up` print for each: one table (GAPS), so nothing Plano means is dropped without a word.

Kinds: `unsupported` (outside Switchyard's scope: `check` exits non-zero, `up` needs
--allow-unsupported), `pending` (accepted, not yet applied: the task that implements one
deletes its row and parses the key), `ignored` (accepted, no effect here). A row's `keys`
keep typos inside a section that nobody parses yet an error.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from switchyard.common.config.fields import Report, check_keys

UNSUPPORTED, PENDING, IGNORED = "unsupported", "pending", "ignored"

# Allowed keys of a mapping (a nested value: the keys of that sub-mapping; a one-item list:
# the keys of each list item). None: any value.
Shape = Mapping[str, Any] | list[Any] | None


def _present(value: Any) -> bool:
    """Set to something: an empty section configures nothing."""
    return value is not None and not (isinstance(value, (dict, list, str)) and not value)


def _true(value: Any) -> bool:
    return value is True


@dataclass(frozen=True)
class Gap:
    kind: str
    says: str                               # follows `file: place: `; may use {address} {port}
    keys: Shape = None
    when: Callable[[Any], bool] = _present  # the values that open the gap


GAPS: dict[str, Gap] = {
    # Outside Switchyard's scope.
    "prompt_targets": Gap(UNSUPPORTED, "not supported: Plano's prompt gateway (intent matching "
                          "and function calling into your APIs); without it no prompt is "
                          "matched to a target and none of those APIs is called — the model "
                          "listener answers every request as a plain LLM call"),
    "endpoints": Gap(UNSUPPORTED, "not supported: the APIs Plano's prompt gateway and agents "
                     "call; without them the gateway calls none of them, only model_providers"),
    "system_prompt": Gap(UNSUPPORTED, "not supported: the system prompt Plano's prompt gateway "
                         "adds to prompt_targets calls; without it requests reach the model "
                         "with only the system prompt the client sent"),
    "prompt_guards": Gap(UNSUPPORTED, "not supported: Plano's jailbreak guard; without it "
                         "requests reach the model unscreened and the on_exception message is "
                         "never sent (a guard can run as an input filter: filters + "
                         "input_filters)"),
    "agents": Gap(UNSUPPORTED, "not supported: Plano's agent orchestration; without it no "
                  "request is routed to these agents — the model listener answers plain LLM "
                  "calls only"),
    "mode": Gap(UNSUPPORTED, "not supported: mode prompt (Plano's prompt gateway); the gateway "
                "runs as a model gateway (mode: llm)", when=lambda v: v == "prompt"),
    "listeners.prompt": Gap(UNSUPPORTED, "not supported: a prompt listener (Plano's prompt "
                            "gateway); without it nothing listens on {address}:{port} and "
                            "prompt_targets are not served"),
    "listeners.agent": Gap(UNSUPPORTED, "not supported: an agent listener (Plano's agent "
                           "orchestration); without it nothing listens on {address}:{port} "
                           "and no request reaches its agents"),
    "listeners.ingress_traffic": Gap(UNSUPPORTED, "not supported: the older form of Plano's "
                                     "prompt gateway listener; without it nothing listens on "
                                     "{address}:{port}"),
    "overrides.optimize_context_window": Gap(
        UNSUPPORTED, "not supported: trimming the conversation to the model's context "
        "window; without it requests go upstream whole, and one longer than the window fails "
        "with the upstream's context-length error", when=_true),
    "overrides.use_agent_orchestrator": Gap(
        UNSUPPORTED, "not supported: Plano's agent orchestrator; without it no request is "
        "routed to agents — the model listener answers plain LLM calls only", when=_true),

    # routing_preferences (top level and inline), routing.route_on_user_only / session_ttl_
    # seconds / session_max_entries / session_cache / routing_budget and
    # overrides.llm_routing_model are config/routing.py's.
    "routing.llm_provider": Gap(
        IGNORED, "ignored: name the routing model with overrides.llm_routing_model"),
    "routing.model": Gap(
        IGNORED, "ignored: name the routing model with overrides.llm_routing_model"),

    # Accepted, no effect here.
    "overrides.prompt_target_intent_matching_threshold": Gap(
        IGNORED, "ignored: it tunes prompt_targets matching, which Switchyard does not do"),
    "overrides.agent_orchestration_model": Gap(
        IGNORED, "ignored: it names the agent orchestrator's model; agent orchestration is "
        "not supported"),
    "overrides.disable_signals": Gap(
        IGNORED, "ignored: Switchyard computes no agentic signals (frustration, repetition, "
        "escalation), so there is nothing to turn on or off"),
    "prompt_caching": Gap(
        IGNORED, "ignored: automatic prompt caching (cache_control injection, sessions kept on "
        "a warm model) is not done; requests go upstream with the cache_control markers the "
        "client sent",
        keys={"enabled": None, "session_affinity": None, "inject_cache_control": None,
              "min_prefix_tokens": None, "session_ttl_seconds": None},
        when=lambda v: isinstance(v, dict) and v.get("enabled") is True),
    "tracing.exporters": Gap(
        IGNORED, "ignored: exporters (PostHog) are not supported; spans go only to the OTLP "
        "endpoint (opentracing_grpc_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)",
        keys=[{"type": None, "url": None, "api_key": None, "distinct_id_header": None,
               "capture_messages": None}]),
}


def note(rep: Report, row: str, where: str, value: Any, **fields: Any) -> bool:
    """Check `value` against the row's keys and, when it opens the gap, add the row's line.
    False when the table has no such row (the feature is implemented)."""
    gap = GAPS.get(row)
    if gap is None:
        return False
    check_shape(rep, where, value, gap.keys)
    if gap.when(value):
        rep.note(gap.kind, where, gap.says.format(**fields) if fields else gap.says)
    return True


def note_sections(rep: Report, data: Mapping[str, Any]) -> None:
    """Every row that is a top-level key or a key one level down (listeners are noted by
    config/listeners.py, which knows their ports)."""
    for row in GAPS:
        if "[" in row or row.startswith("listeners."):
            continue
        head, _, key = row.partition(".")
        if not key:
            if head in data:
                note(rep, row, row, data[head])
        elif isinstance(data.get(head), dict) and key in data[head]:
            note(rep, row, row, data[head][key])
    if data.get("mode", "llm") not in ("llm", "prompt"):
        rep.add("mode", f"must be llm or prompt (Plano's two modes), got {data['mode']!r}")


def check_shape(rep: Report, where: str, value: Any, shape: Shape) -> None:
    """Unknown keys (with "did you mean") and wrong containers, as far as `shape` says."""
    if shape is None or value is None:
        return
    if isinstance(shape, list):
        if not isinstance(value, list):
            rep.add(where, "must be a list")
            return
        for i, item in enumerate(value):
            check_shape(rep, f"{where}[{i}]", item, shape[0])
        return
    if not isinstance(value, dict):
        rep.add(where, "must be a mapping with " + ", ".join(sorted(shape)))
        return
    check_keys(rep, where, value, set(shape), set())
    for key, sub in shape.items():
        if sub is not None and key in value:
            check_shape(rep, f"{where}.{key}", value[key], sub)
