"""The observability sections: Plano's `tracing:` and `model_metrics_sources:`, our
`logging:`, and a provider entry's `pricing:`."""
from __future__ import annotations

from typing import Any

from switchyard.common.config.fields import Report, boolean, check_keys, expand
from switchyard.common.config.model import (
    CostSource,
    LatencySource,
    Price,
    SpanAttributes,
    Tracing,
)
from switchyard.common.config.redis import redacted

TRACING_KEYS = {"random_sampling", "opentracing_grpc_endpoint", "trace_arch_internal",
                "span_attributes", "record_content"}
PLANO_TRACING_KEYS = {"exporters"}   # PostHog export: a Plano feature we do not have
SPAN_ATTRIBUTE_KEYS = {"header_prefixes", "static"}
COST_KEYS = {"type", "provider", "url", "refresh_interval", "model_aliases"}
LATENCY_KEYS = {"type", "provider", "url", "query", "refresh_interval"}
CATALOGS = {"models.dev": "https://models.dev/api.json",
            "digitalocean": "https://api.digitalocean.com/v2/gen-ai/models/catalog"}
PRICING_KEYS = {"input_per_mtok", "output_per_mtok", "cache_read_per_mtok",
                "cache_write_per_mtok"}
LOGGING_KEYS = {"requests"}


def parse_tracing(rep: Report, raw: Any) -> Tracing:
    """`tracing:`; without it (or with random_sampling 0) tracing is off."""
    if raw is None:
        return Tracing()
    where = "tracing"
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping like {random_sampling: 100, "
                       "opentracing_grpc_endpoint: http://localhost:4317}")
        return Tracing()
    check_keys(rep, where, raw, TRACING_KEYS, PLANO_TRACING_KEYS)
    sampling = raw.get("random_sampling", 0)
    if isinstance(sampling, bool) or not isinstance(sampling, (int, float)) \
            or not 0 <= sampling <= 100:
        rep.add(where, f"random_sampling must be a percentage from 0 to 100, got {sampling!r}")
        sampling = 0
    endpoint = expand(rep, where, "opentracing_grpc_endpoint",
                      raw.get("opentracing_grpc_endpoint"))
    if endpoint is not None and (not isinstance(endpoint, str) or "://" not in endpoint):
        rep.add(where, "opentracing_grpc_endpoint must be a URL like http://localhost:4317, "
                       f"got {endpoint!r}")
        endpoint = None
    return Tracing(random_sampling=float(sampling), endpoint=endpoint or None,
                   trace_arch_internal=boolean(rep, where, "trace_arch_internal",
                                               raw.get("trace_arch_internal")),
                   span_attributes=_span_attributes(rep, raw.get("span_attributes")),
                   record_content=boolean(rep, where, "record_content",
                                          raw.get("record_content")))


def _span_attributes(rep: Report, raw: Any) -> SpanAttributes:
    where = "tracing.span_attributes"
    if raw is None:
        return SpanAttributes()
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping with header_prefixes and static")
        return SpanAttributes()
    check_keys(rep, where, raw, SPAN_ATTRIBUTE_KEYS, set())
    prefixes = raw.get("header_prefixes") or []
    if not isinstance(prefixes, list) or not all(isinstance(p, str) and p for p in prefixes):
        rep.add(where, "header_prefixes must be a list of header name prefixes like "
                       "[x-tenant-]")
        prefixes = []
    static = raw.get("static") or {}
    if not isinstance(static, dict) or any(isinstance(v, (dict, list)) or v is None
                                           for v in static.values()):
        rep.add(where, "static must be a map of attribute name to string value")
        static = {}
    static = expand(rep, where, "static", static)
    return SpanAttributes(header_prefixes=tuple(p.lower() for p in prefixes),
                          static=tuple((str(k), str(v)) for k, v in static.items()))


def parse_metrics_sources(rep: Report, raw: Any
                          ) -> tuple[tuple[CostSource, ...], tuple[LatencySource, ...]]:
    """`model_metrics_sources:`: the cost catalogs and the Prometheus latency queries."""
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        rep.add("model_metrics_sources", "must be a list like [{type: cost, provider: "
                                         "models.dev}]")
        return (), ()
    costs: list[CostSource] = []
    latencies: list[LatencySource] = []
    for i, item in enumerate(raw):
        where = f"model_metrics_sources[{i}]"
        if not isinstance(item, dict):
            rep.add(where, "must be a mapping like {type: cost, provider: models.dev}")
            continue
        kind = item.get("type")
        if kind == "latency":
            latency = _latency_source(rep, where, item)
            if latency is not None:
                latencies.append(latency)
            continue
        if kind != "cost":
            rep.add(where, f"type must be cost or latency, got {kind!r}")
            continue
        cost = _cost_source(rep, where, item)
        if cost is not None:
            costs.append(cost)
    return tuple(costs), tuple(latencies)


def _cost_source(rep: Report, where: str, item: dict[str, Any]) -> CostSource | None:
    check_keys(rep, where, item, COST_KEYS, set())
    provider = item.get("provider")
    if provider not in CATALOGS:
        rep.add(where, f"provider must be one of {', '.join(sorted(CATALOGS))}, got "
                       f"{provider!r}")
        return None
    url = expand(rep, where, "url", item.get("url", CATALOGS[provider]))
    if not isinstance(url, str) or not url:
        rep.add(where, "url must be a URL (http, https, file) or a file path")
        return None
    aliases = item.get("model_aliases") or {}
    if not isinstance(aliases, dict) or not all(isinstance(v, str)
                                                for v in aliases.values()):
        rep.add(where, "model_aliases must map catalog keys to model names")
        aliases = {}
    return CostSource(provider=provider, url=url, refresh_s=_refresh(rep, where, item, 3600),
                      aliases=tuple((str(k), v) for k, v in aliases.items()))


def _latency_source(rep: Report, where: str, item: dict[str, Any]) -> LatencySource | None:
    """A Prometheus instance and the query giving one latency per `model_name`."""
    check_keys(rep, where, item, LATENCY_KEYS, set())
    if item.get("provider") != "prometheus":
        rep.add(where, f"provider must be prometheus, got {item.get('provider')!r}")
        return None
    url = expand(rep, where, "url", item.get("url"))
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        shown = redacted(url) if isinstance(url, str) else repr(url)
        rep.add(where, f"url must be the Prometheus server's http(s):// URL, like "
                       f"http://prometheus:9090, got {shown}")
        return None
    query = expand(rep, where, "query", item.get("query"))
    if not isinstance(query, str) or not query.strip():
        rep.add(where, "query must be a PromQL query giving one value per model_name, like "
                       "avg by (model_name) (rate(llm_latency_seconds_sum[5m]))")
        return None
    return LatencySource(url=url.rstrip("/"), query=query,
                         refresh_s=_refresh(rep, where, item, 60), display=redacted(url))


def _refresh(rep: Report, where: str, item: dict[str, Any], default: int) -> float:
    refresh = item.get("refresh_interval", default)
    if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 1:
        rep.add(where, f"refresh_interval must be a whole number of seconds ≥ 1, got "
                       f"{refresh!r}")
        refresh = default
    return float(refresh)


def parse_pricing(rep: Report, where: str, raw: Any) -> Price | None:
    """A provider entry's `pricing: {input_per_mtok, output_per_mtok, ...}` (USD)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        rep.add(where, "pricing must be a mapping like {input_per_mtok: 0.15, "
                       "output_per_mtok: 0.6}")
        return None
    check_keys(rep, f"{where} pricing", raw, PRICING_KEYS, set())
    values: dict[str, float | None] = {}
    for key in sorted(PRICING_KEYS):
        v = raw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            rep.add(where, f"pricing.{key} must be a number ≥ 0 (USD per million tokens), "
                           f"got {v!r}")
            v = None
        values[key] = None if v is None else float(v)
    inp, outp = values["input_per_mtok"], values["output_per_mtok"]
    if inp is None or outp is None:
        rep.add(where, "pricing needs input_per_mtok and output_per_mtok")
        return None
    return Price(input=inp, output=outp, cache_read=values["cache_read_per_mtok"],
                 cache_write=values["cache_write_per_mtok"])


def parse_request_log(rep: Report, raw: Any) -> bool:
    """`logging: {requests: json}` turns on one JSON line per request at the edge."""
    if raw is None:
        return False
    if not isinstance(raw, dict):
        rep.add("logging", "must be a mapping like {requests: json}")
        return False
    check_keys(rep, "logging", raw, LOGGING_KEYS, set())
    mode = raw.get("requests", "off")
    if mode not in ("json", "off", False):
        rep.add("logging", f"requests must be json or off, got {mode!r}")
        return False
    return bool(mode == "json")
