"""The order in which a route plan's targets are tried."""
from __future__ import annotations

import random
from collections.abc import Callable

from switchyard.common.proto import router_pb2


def order_targets(plan: router_pb2.RoutePlan, admits: Callable[[router_pb2.Target], bool],
                  rng: random.Random | None = None) -> list[router_pb2.Target]:
    """Weighted pick first, then the rest of the weighted group, then fallbacks in order.

    Targets `admits` rejects (open breaker) are left out, unless that would leave none: then
    every target is tried anyway, since a possibly-recovered upstream beats a certain error.
    """
    targets = list(plan.targets)
    count = max(0, min(plan.weighted_count, len(targets)))
    group, fallbacks = targets[:count], targets[count:]
    live_group = [t for t in group if admits(t)]
    live_fallbacks = [t for t in fallbacks if admits(t)]
    if not live_group and not live_fallbacks:
        live_group, live_fallbacks = group, fallbacks
    return _weighted_first(live_group, rng) + live_fallbacks


def _weighted_first(group: list[router_pb2.Target],
                    rng: random.Random | None) -> list[router_pb2.Target]:
    """`group` with one member, picked by weight, moved to the front (global random without rng)."""
    if len(group) < 2:
        return group
    weights = [max(t.weight, 0) for t in group]
    if sum(weights) <= 0:
        weights = [1] * len(group)
    first = (rng or random).choices(range(len(group)), weights=weights)[0]
    return [group[first]] + group[:first] + group[first + 1:]
