"""A route's candidate pool in the order its `selection_policy` asks: `none` as written,
`cheapest` by input + output price per million tokens (entry `pricing:` or the cost catalogs
of `model_metrics_sources`, common/telemetry/cost.py), `fastest` by the latency sources of
`model_metrics_sources` when the config has one (Prometheus, routing/prometheus.py), else by
the moving average time to first byte the edge observed per target. Candidates without data
go last, in written order, as in Plano."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from switchyard.common.config.model import Config
from switchyard.common.proto import router_pb2
from switchyard.common.telemetry.cost import Prices, target_price
from switchyard.router.resolution import resolve
from switchyard.router.routing.prometheus import PrometheusLatencies

Metric = Callable[[str], float | None]


def first_target(config: Config, model: str) -> router_pb2.Target | None:
    """The target a candidate model is tried on first (its plan's first)."""
    plan = resolve(config, model)
    return plan.targets[0] if plan is not None and plan.targets else None


def by_metric(models: Sequence[str], metric: Metric) -> list[str]:
    """Ascending by `metric`; those without a value last, in their order."""
    known = [(v, i, m) for i, m in enumerate(models) if (v := metric(m)) is not None]
    unknown = [m for m in models if metric(m) is None]
    return [m for _, _, m in sorted(known)] + unknown


def rank(config: Config, models: Sequence[str], prefer: str, prices: Prices,
         latencies: Sequence[router_pb2.TargetLatency],
         sources: PrometheusLatencies | None = None) -> list[str]:
    """`models` ordered by the policy `prefer` (none | cheapest | fastest)."""
    if prefer == "cheapest":
        def cost(model: str) -> float | None:
            target = first_target(config, model)
            if target is None:
                return None
            price = target_price(prices, config, target)
            return None if price is None else price.input + price.output
        return by_metric(models, cost)
    if prefer == "fastest" and sources is not None and sources.configured:
        # The operator's measure, in its own unit: never mixed with the edge's.
        return by_metric(models, sources.latency)
    if prefer == "fastest":
        observed = {(t.provider, t.model): t.ms for t in latencies}

        def latency(model: str) -> float | None:
            target = first_target(config, model)
            return None if target is None else observed.get((target.provider, target.model))
        return by_metric(models, latency)
    return list(models)
