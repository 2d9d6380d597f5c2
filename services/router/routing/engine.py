"""One routing decision: the classifier picks a route among the config's (or the request's)
routes, its candidate pool is narrowed to the caller's allowed models and ranked, and
becomes the plan: the first model, then the others as its fallbacks. No route, or none of
its models allowed: the request's own model and plan."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from switchyard.common.config.model import Config, RoutePreference
from switchyard.common.proto import router_pb2
from switchyard.common.telemetry.cost import Prices
from switchyard.router.resolution import pool_plan, resolve
from switchyard.router.routing.base import Choice, Classifier, ModelUnavailable
from switchyard.router.routing.prometheus import PrometheusLatencies
from switchyard.router.routing.ranking import rank

if TYPE_CHECKING:
    from switchyard.router.routing.minilm import MiniLM

log = logging.getLogger(__name__)


class RouteError(ValueError):
    """A request's own routing_preferences name models the gateway does not serve."""


def preferences_of(request: router_pb2.RouteRequest) -> list[RoutePreference]:
    return [RoutePreference(name=p.name, description=p.description, models=tuple(p.models),
                            prefer=p.prefer or "none") for p in request.preferences]


_ENCODER: list[MiniLM] = []   # loaded once per process, kept across config reloads


def make_classifier(config: Config) -> Classifier:
    """`llm` when a routing model is named, else the local embedding router (which loads
    its model on first use: ModelUnavailable without the routing extra). Imported here so
    a router that routes nothing never loads onnxruntime."""
    if config.routing.llm_model is not None:
        from switchyard.router.routing.llm import LlmClassifier
        return LlmClassifier(config)
    from switchyard.router.routing.embedding import EmbeddingClassifier
    from switchyard.router.routing.minilm import MiniLM
    if not _ENCODER:
        _ENCODER.append(MiniLM())
    return EmbeddingClassifier(_ENCODER[0].embed, config.routing.threshold)


class RoutingEngine:
    """Decides routes for one config; `start` prepares the classifier and the prices."""

    def __init__(self, config: Config, classifier: Classifier) -> None:
        self.config = config
        self.classifier = classifier
        self.prices = Prices(config.cost_sources)
        self.latencies = PrometheusLatencies(config.latency_sources)

    async def start(self) -> None:
        await self.classifier.start(self.config.routing.preferences)
        self.prices.start()
        self.latencies.start()

    async def close(self) -> None:
        await self.latencies.close()
        await self.prices.close()
        await self.classifier.close()

    def check(self, routes: Sequence[RoutePreference]) -> None:
        """Routes sent with a request: every model must be one the gateway serves."""
        for r in routes:
            if not r.name or not r.models:
                raise RouteError("each routing_preferences entry needs a name and models")
            for m in r.models:
                if resolve(self.config, m) is None:
                    raise RouteError(f"routing_preferences '{r.name}': model '{m}' is not "
                                     "configured on this gateway")
            if r.prefer not in ("none", "cheapest", "fastest"):
                raise RouteError(f"routing_preferences '{r.name}': selection_policy.prefer "
                                 "must be none, cheapest or fastest")

    async def decide(self, request: router_pb2.RouteRequest) -> router_pb2.RouteDecision:
        routes: Sequence[RoutePreference] = self.config.routing.preferences
        if request.has_preferences:
            routes = preferences_of(request)
            self.check(routes)
        choice = await self.classifier.classify(request.messages, routes, request.request_id,
                                                request.traceparent)
        decision = router_pb2.RouteDecision(router=self.classifier.name, reason=choice.reason,
                                            score=choice.score)
        route = next((r for r in routes if r.name == choice.route), None)
        if route is not None:
            allowed = set(request.allowed)
            pool = [m for m in route.models if not allowed or m in allowed]
            ranked = rank(self.config, pool, route.prefer, self.prices, request.latencies,
                          self.latencies)
            plan = pool_plan(self.config, route.name, ranked)
            if plan is not None:
                decision.route = route.name
                decision.models.extend(ranked)
                decision.plan.CopyFrom(plan)
                return decision
            decision.reason = "not_allowed"
        return self._keep(request, decision, choice)

    def _keep(self, request: router_pb2.RouteRequest, decision: router_pb2.RouteDecision,
              choice: Choice) -> router_pb2.RouteDecision:
        """No route: the request's own model (its plan, when the gateway serves it)."""
        decision.models.append(request.model)
        plan = resolve(self.config, request.model)
        if plan is not None:
            decision.plan.CopyFrom(plan)
        return decision


async def build_engine(config: Config) -> RoutingEngine | None:
    """The engine for `config`, started; None when the config routes nothing."""
    if not config.routing.enabled:
        return None
    engine = RoutingEngine(config, make_classifier(config))
    await engine.start()
    return engine


__all__ = ["ModelUnavailable", "RouteError", "RoutingEngine", "build_engine"]
