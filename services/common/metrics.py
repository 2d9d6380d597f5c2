"""Prometheus metrics. The edge serves them at GET /metrics; a gRPC service serves them on
its own HTTP port when `SWITCHYARD_<SERVICE>_METRICS` (host:port) is set
(`service_metrics`), and only then imports this module."""
from __future__ import annotations

from typing import TypeVar

from prometheus_client import Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)
_children: dict[tuple[MetricWrapperBase, tuple[str, ...]], MetricWrapperBase] = {}


def child(metric: M, *values: str) -> M:
    """`metric.labels(*values)`, remembered: `labels` checks and locks on every call (~1.4 µs
    more than this lookup), and a request counts several. The values are bounded sets
    (routes, entries, models, tenants, statuses), which prometheus_client keeps anyway."""
    key = (metric, values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found  # type: ignore[return-value]  # the same class as `metric`

# Buckets in seconds, tuned for sub-millisecond gateway overhead and second-scale upstreams.
_FAST = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

HTTP_REQUESTS = Counter("switchyard_http_requests_total",
                        "Client requests answered by the edge", ["route", "status"])
HTTP_CONNECTIONS_CLOSED = Counter(
    "switchyard_http_connections_closed_total",
    "Client connections the edge closed unanswered: over limits.max_connections, or "
    "headers or body not received in time", ["reason"])
GATEWAY_OVERHEAD = Histogram("switchyard_gateway_overhead_seconds",
                             "Time a request spent in the gateway, upstream excluded",
                             ["route"], buckets=_FAST)
UPSTREAM_ATTEMPTS = Counter("switchyard_upstream_attempts_total",
                            "Upstream calls by provider entry and outcome (HTTP status or ok)",
                            ["provider", "outcome"])
UPSTREAM_FIRST_BYTE = Histogram("switchyard_upstream_first_byte_seconds",
                                "Time to the upstream's first byte", ["provider"],
                                buckets=_SLOW)
# Usage and cost, counted at the edge, where the tenant and the final usage are known.
# `type`: input (cache excluded), output (reasoning included), cache_read, cache_write,
# reasoning.
TOKENS = Counter("switchyard_tokens_total", "Tokens used, by provider, model, tenant and type",
                 ["provider", "model", "tenant", "type"])
COST = Counter("switchyard_cost_usd_total",
               "Cost in USD of answered turns whose price is known", ["provider", "model",
                                                                     "tenant"])
COST_UNKNOWN = Counter("switchyard_cost_unknown_total",
                       "Answered turns without a known price", ["provider", "model"])
TIME_TO_FIRST_TOKEN = Histogram("switchyard_time_to_first_token_seconds",
                                "Streaming requests: time from arrival to the first content "
                                "sent", ["format", "provider"], buckets=_SLOW)
# The model listener's filters (edge/filters/): one observation per call, stream chunks
# included. `outcome`: ok, rejected (the filter's 4xx), failed, failed_open, cancelled.
FILTER_SECONDS = Histogram("switchyard_filter_seconds",
                           "Calls to the listener's input and output filters",
                           ["filter", "phase", "outcome"],
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25, 0.5, 1, 2.5, 5, 10, 30))
# Preference-aligned routing (edge/preferences.py): one per routed request; `route` is the
# route's name or none, `reason` why (matched, below_threshold, pinned, timeout, ...).
ROUTING_DECISIONS = Counter("switchyard_routing_decisions_total",
                            "Routing decisions by route, router and reason",
                            ["route", "router", "reason"])
ROUTING_SKIPS = Counter("switchyard_routing_skips_total",
                        "Routed requests that replayed their turn's decision instead "
                        "(routing.route_on_user_only)", ["reason"])
# Every gRPC service (grpc_server.Observe): calls by method and status code, and latency.
GRPC_HANDLED = Counter("switchyard_grpc_server_handled_total",
                       "gRPC calls handled, by method and status code", ["method", "code"])
GRPC_LATENCY = Histogram("switchyard_grpc_server_handling_seconds",
                         "gRPC call duration (streams: until they end)", ["method"],
                         buckets=(*_FAST, 1, 2.5, 5, 10, 30, 60))

