"""Preference-aligned routing at the edge: which requests are routed, what the router is
told (the text of recent turns, never images or tool output), the pins of
`routing.route_on_user_only`, the latency each target showed (for `prefer: fastest`), and
what the answer says of the decision (headers, span, counter). docs/architecture.md,
"Routing". Configs without routing never reach past `enabled()`."""
from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request

from switchyard.common import metrics
from switchyard.common.canonical.token_estimate import estimate_tokens
from switchyard.common.config.model import Config, Routing
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.common.telemetry import propagation, tracer
from switchyard.common.telemetry.cost import target_price
from switchyard.edge import observe, pins, routing_budget
from switchyard.edge.request_state import scope_state

log = logging.getLogger("switchyard.edge")

STATE_KEY = "routing"
FIELD = "routing_preferences"              # per request, in the body; never sent upstream
AFFINITY_HEADER = "x-model-affinity"       # Plano's: one pin per conversation id
MAX_TURNS = 16                             # recent turns sent to the router
MAX_TURN_CHARS = 32_768                    # of each turn: the routing model's whole budget
ROUTE_TIMEOUT_S = 10.0                     # bound on a decision (the llm router's own is less)
LATENCY_WEIGHT = 0.2                       # moving average: the newest observation's share
# Claude Code's harness envelopes: not what the user said (Plano ignores them too).
ENVELOPE = re.compile(r"<(system-reminder|user-prompt-submit-hook)>.*?</\1>", re.S)
_HAS_INPUT = ("image", "document")


@dataclass(frozen=True)
class Decision:
    """What routing did to one request: `route` None keeps the request's model."""
    route: str | None
    models: tuple[str, ...]
    plan: router_pb2.RoutePlan | None
    reason: str
    router: str
    pinned: bool = False
    budget: str = ""           # routing_budget's verdict (routing_budget.Verdict.reason)
    counterfactual: str = ""   # the model a vetoed switch would have taken (when recorded)

    @property
    def header(self) -> str:
        return self.route or "none"


class Latencies:
    """Moving average time to first byte per target (provider entry, upstream model)."""

    def __init__(self) -> None:
        self.ms: dict[tuple[str, str], float] = {}

    def observe(self, provider: str, model: str, ms: float) -> None:
        if not provider or ms <= 0:
            return
        key = (provider, model)
        old = self.ms.get(key)
        self.ms[key] = ms if old is None else old + LATENCY_WEIGHT * (ms - old)

    def table(self) -> list[router_pb2.TargetLatency]:
        return [router_pb2.TargetLatency(provider=p, model=m, ms=v)
                for (p, m), v in self.ms.items()]


class EdgeRouting:
    """One per edge process when the config routes (app.state.routing)."""

    def __init__(self, routing: Routing, aliases: Sequence[str]) -> None:
        self.settings = routing
        # Aliases are the operator's direct selections (Plano's "direct model selection"):
        # the config's routes leave them alone; so is a call naming the routing model.
        self.direct = set(aliases) | ({routing.llm_model} if routing.llm_model else set())
        self.sessions = pins.build(routing)
        self._bind(self.sessions)
        self.latencies = Latencies()

    def _bind(self, sessions: pins.SessionStore) -> None:
        self.sessions = sessions
        self.pins = pins.Pins(sessions)
        self.budget = routing_budget.SwitchBudget(self.settings.budget, sessions) \
            if self.settings.budget is not None else None

    def carried_over(self, old: EdgeRouting) -> list[pins.SessionStore]:
        """After a reload: keep `old`'s latencies, and its sessions when they are kept where
        this config keeps them; the stores to close (after the drain)."""
        self.latencies = old.latencies
        if pins.store_settings(self.settings) == pins.store_settings(old.settings):
            fresh = self.sessions
            self._bind(old.sessions)
            return [fresh]
        return [old.sessions]


def enabled(request: Request) -> EdgeRouting | None:
    found: EdgeRouting | None = getattr(request.app.state, STATE_KEY, None)
    return found


def from_config(config: Config) -> EdgeRouting | None:
    """The edge's routing for `config`; None when it routes nothing."""
    return EdgeRouting(config.routing, list(config.aliases)) if config.routing.enabled else None


# ---- what the router is told ------------------------------------------------------------

def message_text(msg: chat_pb2.Message) -> str:
    """A turn's own text (text parts; tool results and calls are not its words), without
    harness envelopes."""
    text = "".join(p.text.text for p in msg.parts if p.WhichOneof("kind") == "text")
    return ENVELOPE.sub("", text).strip() if "<" in text else text.strip()


def route_messages(req: chat_pb2.ChatRequest) -> list[router_pb2.RouteMessage]:
    """User and assistant turns that carry text, the last MAX_TURNS, oldest first; system
    and developer prompts are not routed on (as in Plano)."""
    out: list[router_pb2.RouteMessage] = []
    for m in req.messages:
        if m.role not in (chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT):
            continue
        text = message_text(m)
        if text:
            out.append(router_pb2.RouteMessage(role=m.role, text=text[:MAX_TURN_CHARS]))
    return out[-MAX_TURNS:]


def is_user_turn(req: chat_pb2.ChatRequest) -> bool:
    """The request starts a user turn: its last message is the user's, with text (envelopes
    aside) or an attachment. Tool results fed back, assistant prefills and envelope-only
    messages are loop steps."""
    if not req.messages:
        return False
    last = req.messages[-1]
    if last.role != chat_pb2.ROLE_USER:
        return False
    return bool(message_text(last)) or any(p.WhichOneof("kind") in _HAS_INPUT
                                           for p in last.parts)


def pin_key(request: Request, req: chat_pb2.ChatRequest, tenant: str, model: str,
            tenant_header: str = "") -> str:
    """The conversation a loop step belongs to: X-Model-Affinity, else its stable prefix
    (system prompt, tool names, first user turn), on the model lane it asked for; prefixed
    with the value of `routing.session_cache.tenant_header` when the request has one."""
    explicit = request.headers.get(AFFINITY_HEADER)
    scope = request.headers.get(tenant_header, "") if tenant_header else ""
    h = hashlib.blake2b(digest_size=16)
    for part in (tenant, model, explicit or ""):
        h.update(part.encode() + b"\0")
    if not explicit:
        first_user = next((m for m in req.messages if m.role == chat_pb2.ROLE_USER), None)
        for m in req.messages:
            if m.role in (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER):
                h.update(message_text(m).encode() + b"\0")
        for t in req.tools:
            h.update(t.name.encode() + b"\0")
        h.update((message_text(first_user) if first_user else "").encode())
    return f"{scope}:{h.hexdigest()}" if scope else h.hexdigest()


def take_preferences(body: dict[str, Any]) -> list[router_pb2.RoutePreference] | None:
    """The request's own `routing_preferences` (removed from the body: never upstream);
    None when it sends none. A malformed one is the client's 400."""
    if FIELD not in body:
        return None
    raw = body.pop(FIELD)
    if not isinstance(raw, list):
        raise GatewayError(400, f"{FIELD} must be a list of {{name, description, models}}",
                           param=FIELD)
    out = []
    for i, item in enumerate(raw):
        where = f"{FIELD}[{i}]"
        if not isinstance(item, dict):
            raise GatewayError(400, f"{where} must be an object with name, description and "
                               "models", param=where)
        name, description, models = item.get("name"), item.get("description"), \
            item.get("models")
        if not isinstance(name, str) or not name.strip():
            raise GatewayError(400, f"{where}.name must be a non-empty string", param=where)
        if not isinstance(description, str):
            raise GatewayError(400, f"{where}.description must be a string", param=where)
        if not isinstance(models, list) or not models or \
                not all(isinstance(m, str) and m for m in models):
            raise GatewayError(400, f"{where}.models must be a non-empty list of model names",
                               param=where)
        policy = item.get("selection_policy") or {}
        prefer = policy.get("prefer", "none") if isinstance(policy, dict) else None
        if prefer not in ("none", "cheapest", "fastest"):
            raise GatewayError(400, f"{where}.selection_policy.prefer must be none, cheapest "
                               "or fastest", param=where)
        out.append(router_pb2.RoutePreference(name=name.strip(), description=description,
                                              models=models, prefer=prefer))
    return out


# ---- the decision -----------------------------------------------------------------------

def routed(er: EdgeRouting, model: str,
           inline: list[router_pb2.RoutePreference] | None) -> bool:
    """Which requests are routed: with routes of their own, always (an empty list: never);
    else by the config's routes unless `model` is a direct selection (an alias, the routing
    model). Any other model — none, the default, a concrete one — is routed, and is what
    the request keeps when no route matches (Plano's routing API)."""
    if inline is not None:
        return bool(inline)
    return bool(er.settings.preferences) and model not in er.direct


def _allowed(request: Request) -> list[str]:
    key = scope_state(request).get("api_key")
    models = getattr(key, "models", None)
    return sorted(models) if models is not None else []


async def decide(request: Request, req: chat_pb2.ChatRequest, tenant: str, request_id: str,
                 inline: list[router_pb2.RoutePreference] | None) -> Decision | None:
    """Route the request (or replay its loop's pin); None when it is not routed."""
    er = enabled(request)
    if er is None:
        if inline is not None:
            raise GatewayError(400, f"{FIELD} in a request need routing on this gateway: the "
                               "config has no routing_preferences and no "
                               "overrides.llm_routing_model", param=FIELD)
        return None
    if not routed(er, req.model, inline):
        return None
    key = ""
    if er.settings.route_on_user_only or er.budget is not None:
        key = pin_key(request, req, tenant, req.model, er.settings.session_tenant_header)
    if er.settings.route_on_user_only:
        if not is_user_turn(req):
            pinned = await er.pins.get(key)
            if pinned is not None:
                metrics.ROUTING_SKIPS.labels("not_user_turn").inc()
                if er.budget is not None and pinned.models:
                    await er.budget.touch(key, pinned.models[0])
                return _decision(pinned, "pinned")
    call = router_pb2.RouteRequest(
        model=req.model, messages=route_messages(req), has_preferences=inline is not None,
        preferences=inline or (), latencies=er.latencies.table(), request_id=request_id,
        allowed=_allowed(request),
        traceparent=propagation.current_traceparent() if tracer.ENABLED else "")
    from switchyard.edge.pipeline import backends  # the flow's own accessor
    try:
        answer = await backends(request).routes.route(call, timeout=ROUTE_TIMEOUT_S)
    except GatewayError as exc:
        if exc.http_status == 400:
            raise
        # Routing is advice: without the router's answer the request keeps its model.
        log.warning("request %s: no routing decision (%s); it keeps model %r", request_id,
                    exc.type, req.model)
        return Decision(None, (req.model,), None, "router_unavailable", "")
    answer, verdict = await _budgeted(request, er, req, key, answer)
    if er.settings.route_on_user_only:
        await er.pins.put(key, answer)
    decision = _decision(answer, answer.reason)
    if verdict is None:
        return decision
    record = er.settings.budget is not None and er.settings.budget.record_counterfactual
    return replace(decision, budget=verdict.reason,
                   counterfactual=verdict.proposed if record and verdict.reason == "over"
                   else "")


async def _budgeted(request: Request, er: EdgeRouting, req: chat_pb2.ChatRequest, key: str,
                    answer: router_pb2.RouteDecision
                    ) -> tuple[router_pb2.RouteDecision, routing_budget.Verdict | None]:
    """routing_budget's gate on the router's answer: the answer, or one that stays on the
    session's anchor (reason `budget_kept`, the proposed model second)."""
    budget = er.budget
    if budget is None or not answer.route or not answer.models or not answer.plan.targets:
        return answer, None
    cap = routing_budget.cap_of(request.headers.get(routing_budget.HEADER), budget.settings)
    config: Config = request.app.state.config
    prices = request.app.state.accounting.prices
    discount = budget.settings.cache_read_discount

    def rates_of(target: router_pb2.Target) -> routing_budget.Rates | None:
        price = target_price(prices, config, target)
        return None if price is None else routing_budget.rates(price.input, price.cache_read,
                                                                discount)
    session = await budget.session(key)
    verdict, after = routing_budget.judge(session, answer.models[0], answer.plan.targets[0],
                                          rates_of, estimate_tokens(req), cap, time.time(),
                                          budget.settings)
    await budget.save(key, after)
    if verdict.switch or session is None:
        return answer, verdict
    from switchyard.edge.pipeline import backends  # the flow's own accessor
    plan = await backends(request).routes.resolve(session.anchor)
    kept = router_pb2.RouteDecision(
        route=answer.route, router=answer.router, reason="budget_kept", score=answer.score,
        models=[session.anchor] + [m for m in answer.models if m != session.anchor])
    kept.plan.CopyFrom(plan)
    return kept, verdict


def _decision(answer: router_pb2.RouteDecision, reason: str) -> Decision:
    """The router's answer (or its pin, replayed: reason `pinned`) as the edge uses it."""
    return Decision(answer.route or None, tuple(answer.models),
                    answer.plan if answer.HasField("plan") else None, reason, answer.router,
                    pinned=reason == "pinned")


def record(request: Request, headers: dict[str, str], decision: Decision) -> None:
    """Make the decision visible: headers, the per-route counter, the request's span."""
    headers["x-switchyard-route"] = decision.header
    if decision.models:
        headers["x-switchyard-route-model"] = decision.models[0]
    metrics.ROUTING_DECISIONS.labels(decision.header, decision.router or "none",
                                     decision.reason).inc()
    obs = observe.observed(request)
    if obs is not None and obs.span is not None:
        span = obs.span
        span.set_attribute("switchyard.route.name", decision.header)
        span.set_attribute("switchyard.route.models", list(decision.models))
        span.set_attribute("switchyard.route.router", decision.router or "none")
        span.set_attribute("switchyard.route.reason", decision.reason)
        if decision.pinned:
            span.set_attribute("switchyard.routing.skipped", "not_user_turn")
        if decision.budget:
            span.set_attribute("switchyard.routing.budget", decision.budget)
        if decision.counterfactual:   # Plano's attribute, for its dashboards
            span.set_attribute("plano.switch.counterfactual_route", decision.counterfactual)


def observed_start(request: Request, start: chat_pb2.StreamStart) -> None:
    """Providers answered: fold the target's time to first byte into its moving average."""
    er = enabled(request)
    if er is not None:
        er.latencies.observe(start.provider, start.model, start.upstream_ms)


def trace_id(request: Request) -> str:
    """The decision endpoint's `trace_id`: the request's span, else its `traceparent`, else
    a fresh id."""
    obs = observe.observed(request)
    if obs is not None and obs.span is not None:
        ctx = obs.span.get_span_context()
        if ctx.is_valid:
            return f"{ctx.trace_id:032x}"
    parts = (request.headers.get(propagation.HEADER) or "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        return parts[1]
    return hashlib.blake2b(f"{time.time_ns()}{id(request)}".encode(),
                           digest_size=16).hexdigest()
