"""routing.routing_budget's gate (edge/routing_budget.py): each verdict, the totals it keeps,
the per-request cap header, and the session's encoding."""
from __future__ import annotations

import pytest

from switchyard.common.config.model import RoutingBudget
from switchyard.common.errors import GatewayError
from switchyard.common.proto import router_pb2
from switchyard.edge.routing_budget import (
    CACHE_WINDOW_S,
    Rates,
    Session,
    cap_of,
    judge,
    rates,
)

# USD per million input tokens: the anchor (cached 0.075), a dearer and a cheaper candidate.
PRICES = {"mini": rates(0.15, 0.075, 0.1), "big": rates(0.20, None, 0.1),
          "nano": rates(0.05, None, 0.1)}
TOKENS = 1_000_000    # so each cost below reads in USD per million
SETTINGS = RoutingBudget(max_switch_pct=20)


def target(model: str) -> router_pb2.Target:
    return router_pb2.Target(provider="openai", model=model)


def rates_of(t: router_pb2.Target) -> Rates | None:
    return PRICES.get(t.model)


def run(session, model, cap=20.0, now=1000.0, settings=SETTINGS):
    return judge(session, f"openai/{model}", target(model), rates_of, TOKENS, cap, now,
                 settings)


def anchored(baseline=0.15, spend=0.0, seen=990.0) -> Session:
    return Session("openai/mini", "openai", "mini", seen, baseline, spend)


def test_a_new_session_binds_to_the_proposed_model_and_starts_its_baseline():
    verdict, s = run(None, "mini")
    assert (verdict.switch, verdict.reason) == (True, "bound")
    assert (s.anchor, s.seen, s.baseline, s.spend) == ("openai/mini", 1000.0,
                                                       pytest.approx(0.15), 0.0)


def test_staying_accrues_the_baseline_at_the_cached_rate_while_warm():
    verdict, s = run(anchored(), "mini")
    assert (verdict.switch, verdict.reason) == (False, "same")
    assert s.baseline == pytest.approx(0.15 + 0.075) and s.seen == 1000.0


def test_a_warm_switch_over_the_cap_stays_and_within_it_pays():
    # Losing the cache costs 0.20 − 0.075 = 0.125; the baseline with this request is 0.225.
    verdict, s = run(anchored(), "big", cap=20)
    assert (verdict.switch, verdict.reason) == (False, "over")
    assert verdict.cost_usd == pytest.approx(0.125)
    assert s.anchor == "openai/mini" and s.spend == 0.0 and s.baseline == pytest.approx(0.225)
    verdict, s = run(anchored(), "big", cap=100)   # 0.125 ≤ 100 % of 0.225
    assert (verdict.switch, verdict.reason) == (True, "within")
    assert (s.anchor, s.model) == ("openai/big", "big") and s.spend == pytest.approx(0.125)
    # The spend is cumulative: at 60 % the next such switch fits a fresh session (0.125 ≤
    # 0.6 × 0.3) but not one that already spent 0.125 (0.25 > 0.18).
    fresh = Session("openai/mini", "openai", "mini", 1000.0, s.baseline, 0.0)
    spent = Session("openai/mini", "openai", "mini", 1000.0, s.baseline, s.spend)
    assert run(fresh, "big", cap=60, now=1001.0)[0].reason == "within"
    assert run(spent, "big", cap=60, now=1001.0)[0].reason == "over"


def test_an_outright_cheaper_switch_is_free_and_never_lowers_the_spend():
    verdict, s = run(anchored(spend=0.01), "nano", cap=0)
    assert (verdict.switch, verdict.reason) == (True, "cheaper") and verdict.cost_usd < 0
    assert s.spend == 0.01 and s.anchor == "openai/nano"


def test_a_cold_anchor_rebinds_freely_and_replenishes_unless_told_not_to():
    cold = anchored(baseline=5.0, spend=0.5, seen=1000.0 - CACHE_WINDOW_S - 1)
    verdict, s = run(cold, "big", cap=0)
    assert (verdict.switch, verdict.reason) == (True, "cold")
    assert s.spend == 0.0 and s.baseline == pytest.approx(0.20)
    _, kept = run(cold, "big", cap=0,
                  settings=RoutingBudget(max_switch_pct=0, replenish_on_rebind=False))
    assert kept.spend == 0.5 and kept.baseline == pytest.approx(5.2)


def test_an_unpriced_model_is_never_held_back():
    verdict, s = run(anchored(), "unknown", cap=0)
    assert (verdict.switch, verdict.reason) == (True, "unpriced") and s.anchor == \
        "openai/unknown"


def test_the_cap_header_overrides_the_config_within_0_to_100():
    assert cap_of(None, SETTINGS) == 20 and cap_of("55.5", SETTINGS) == 55.5
    for bad in ("101", "-1", "lots", "nan"):
        with pytest.raises(GatewayError) as err:
            cap_of(bad, SETTINGS)
        assert err.value.http_status == 400 and "from 0 to 100" in err.value.message


def test_a_session_round_trips_and_a_foreign_value_is_no_session():
    s = anchored(spend=0.25)
    assert Session.decode(s.encode()) == s
    assert Session.decode(b"not json") is None and Session.decode(b'{"a": 1}') is None


async def test_a_loop_step_on_the_anchor_keeps_its_cache_warm(monkeypatch):
    from switchyard.edge import routing_budget
    from switchyard.edge.pins import MemoryStore
    budget = routing_budget.SwitchBudget(SETTINGS, MemoryStore(600, 10))
    await budget.save("k", anchored(seen=100.0))
    monkeypatch.setattr(routing_budget.time, "time", lambda: 500.0)
    await budget.touch("k", "openai/big")         # not the anchor: nothing changes
    assert (await budget.session("k")).seen == 100.0
    await budget.touch("k", "openai/mini")
    assert (await budget.session("k")).seen == 500.0
