"""Plano's `routing.routing_budget`: a per-session cost gate on model switches.

A session (the conversation key of the pins) is anchored on the model it last ran on. When
routing proposes another model while the anchor's provider cache is plausibly warm (the
session was seen within CACHE_WINDOW_S), abandoning that cache costs
`context_tokens × (candidate input rate − anchor cached input rate)`; the switch is taken
only while the session's cumulative switch spend stays within `max_switch_spend_pct` % of
its never-switch baseline (what staying on the anchor would have cost, warm requests priced
at the cached rate). An outright cheaper switch is free and never lowers the spend; a cold
anchor is re-bound freely (`replenish_on_rebind` resets the totals then); a model without a
price is never held back. The session lives in the routing session store (pins.py), so it is
shared across edges with `session_cache: {type: redis}`. docs/architecture.md, "Routing"."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import orjson

from switchyard.common.config.model import RoutingBudget
from switchyard.common.errors import GatewayError
from switchyard.common.proto import router_pb2
from switchyard.edge.pins import SessionStore

HEADER = "x-plano-max-switch-spend-pct"   # Plano's per-request override of the cap
# Anthropic's default cache lifetime and the shortest OpenAI and Gemini keep an idle prompt
# cache: a session idle longer is taken as cold.
CACHE_WINDOW_S = 300.0
NAMESPACE = "budget:"
PER_MTOK = 1e-6


@dataclass(frozen=True)
class Rates:
    """USD per input token of a target: plain and read from the provider's cache."""
    input: float
    cached: float


RatesOf = Callable[[router_pb2.Target], "Rates | None"]


@dataclass(frozen=True)
class Session:
    anchor: str                    # the model name the session runs on (as routed)
    provider: str                  # its first target: provider entry and upstream model
    model: str
    seen: float                    # wall clock of its last request (edges share it)
    baseline: float = 0.0          # USD: what never switching would have cost
    spend: float = 0.0             # USD: what the switches taken cost in lost cache

    def encode(self) -> bytes:
        return orjson.dumps([self.anchor, self.provider, self.model, self.seen,
                             self.baseline, self.spend])

    @staticmethod
    def decode(raw: bytes) -> Session | None:
        try:
            a, p, m, seen, baseline, spend = orjson.loads(raw)
            return Session(str(a), str(p), str(m), float(seen), float(baseline), float(spend))
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None   # not a value this gateway wrote: a new session


@dataclass(frozen=True)
class Verdict:
    switch: bool       # take the proposed model (else stay on the anchor)
    reason: str        # bound | same | cold | cheaper | within | over | unpriced
    proposed: str      # the model routing proposed
    cost_usd: float = 0.0


def judge(session: Session | None, name: str, target: router_pb2.Target, rates_of: RatesOf,
          tokens: int, cap_pct: float, now: float, settings: RoutingBudget
          ) -> tuple[Verdict, Session]:
    """The verdict on switching `session` to `name` (first target `target`) for a request of
    `tokens` input tokens, and the session after the request."""
    proposed = rates_of(target)
    if session is None:
        cost = tokens * proposed.input if proposed is not None else 0.0
        return Verdict(True, "bound", name), Session(name, target.provider, target.model, now, cost)
    anchor = rates_of(router_pb2.Target(provider=session.provider, model=session.model))
    warm = now - session.seen <= CACHE_WINDOW_S
    stay = 0.0 if anchor is None else tokens * (anchor.cached if warm else anchor.input)
    if name == session.anchor:
        return Verdict(False, "same", name), replace(session, seen=now,
                                               baseline=session.baseline + stay)
    moved = replace(session, anchor=name, provider=target.provider, model=target.model,
                    seen=now)
    if not warm:
        if settings.replenish_on_rebind:
            moved = replace(moved, baseline=0.0, spend=0.0)
        cost = tokens * proposed.input if proposed is not None else 0.0
        return Verdict(True, "cold", name), replace(moved, baseline=moved.baseline + cost)
    baseline = session.baseline + stay
    if anchor is None or proposed is None:
        return Verdict(True, "unpriced", name), replace(moved, baseline=baseline)
    cost = tokens * (proposed.input - anchor.cached)
    if cost <= 0:
        return Verdict(True, "cheaper", name, cost), replace(moved, baseline=baseline)
    if session.spend + cost <= cap_pct / 100.0 * baseline:
        return Verdict(True, "within", name, cost), replace(moved, baseline=baseline,
                                                      spend=session.spend + cost)
    return Verdict(False, "over", name, cost), replace(session, seen=now, baseline=baseline)


def cap_of(headers_value: str | None, settings: RoutingBudget) -> float:
    """The cap for one request: Plano's header when sent (0–100), else the config's."""
    if headers_value is None:
        return settings.max_switch_pct
    try:
        pct = float(headers_value)
    except ValueError:
        pct = -1.0
    if not 0 <= pct <= 100:
        raise GatewayError(400, f"{HEADER} must be a percentage from 0 to 100, got "
                           f"{headers_value[:32]!r}", param=HEADER)
    return pct


class SwitchBudget:
    """One per edge routing (preferences.EdgeRouting) when the config has routing_budget."""

    def __init__(self, settings: RoutingBudget, store: SessionStore) -> None:
        self.settings = settings
        self.store = store

    async def session(self, key: str) -> Session | None:
        raw = await self.store.get(NAMESPACE + key)
        return None if raw is None else Session.decode(raw)

    async def save(self, key: str, session: Session) -> None:
        await self.store.put(NAMESPACE + key, session.encode())

    async def touch(self, key: str, model: str) -> None:
        """A loop step replayed from a pin ran on `model`: if that is the anchor, its cache
        stays warm (the baseline is left as it is: a step's tokens are not estimated)."""
        session = await self.session(key)
        if session is not None and session.anchor == model:
            await self.save(key, replace(session, seen=time.time()))


def rates(price_input: float, price_cached: float | None, discount: float) -> Rates:
    """Per-token rates from per-million prices (the cached one estimated when unpublished)."""
    cached = price_cached if price_cached is not None else price_input * discount
    return Rates(price_input * PER_MTOK, cached * PER_MTOK)
