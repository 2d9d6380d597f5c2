"""Preference-aligned routing in the config: Plano's top-level `routing_preferences` (and its
older inline form under a provider, migrated with a deprecation line), `routing:`'s
`route_on_user_only` and pin cache, and the routing model (`overrides.llm_routing_model`,
`overrides.orchestrator_model_context_length`). docs/architecture.md, "Routing"."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from switchyard.common.config.fields import (
    Report,
    boolean,
    check_keys,
    duration,
    expand,
    positive_int,
)
from switchyard.common.config.model import (
    Alias,
    CostSource,
    ProviderEntry,
    RedisSettings,
    RoutePreference,
    Routing,
    RoutingBudget,
)
from switchyard.common.config.providers import match_providers
from switchyard.common.config.redis import checked_url, redacted

PREFERENCE_KEYS = {"name", "description", "models", "selection_policy"}
INLINE_KEYS = {"name", "description"}
PREFER = ("none", "cheapest", "fastest")
# `routing:` keys we apply; Plano's others stay rows of config/plano_scope.py; ours marked.
ROUTING_KEYS = {"route_on_user_only", "session_ttl_seconds", "session_max_entries",
                "session_cache", "routing_budget",
                "embedding_threshold", "llm_timeout"}   # the last two: ours
PLANO_ROUTING_KEYS = {"llm_provider", "model"}
BUDGET_KEYS = {"max_switch_spend_pct", "replenish_on_rebind", "cache_read_discount",
               "record_counterfactual"}
SESSION_CACHE_KEYS = {"type", "url", "tenant_header"}
MAX_SESSION_ENTRIES = 10_000   # Plano's schema maximum
# Plano accepts top-level routing_preferences from this config version on.
TOP_LEVEL_SINCE = (0, 4, 0)


def parse_routing(rep: Report, data: Mapping[str, Any], providers: Sequence[ProviderEntry],
                  aliases: Mapping[str, Alias], version: str) -> Routing:
    """Every routing key of the file, checked; model names must be ones the gateway serves."""
    known = _Names(providers, aliases)
    inline = _inline(rep, data, known)
    # Plano's CLI lifts inline routes and bumps the version: then top-level ones pass too.
    top = _top_level(rep, data.get("routing_preferences"), known, version,
                     "version" in data and not inline)
    taken = {p.name for p in top}
    prefs = top + tuple(p for p in inline if p.name not in taken)
    settings = _settings(rep, data.get("routing"))
    raw_overrides = data.get("overrides")
    overrides: Mapping[str, Any] = raw_overrides if isinstance(raw_overrides, dict) else {}
    llm_model = overrides.get("llm_routing_model")
    if isinstance(llm_model, str) and llm_model and not known.serves(llm_model):
        rep.add("overrides.llm_routing_model", f"'{llm_model}' is not a configured model; add "
                "a model_providers entry for it (e.g. plano/Arch-Router served by Ollama: "
                "base_url: http://localhost:11434) or name one that exists")
    context = overrides.get("orchestrator_model_context_length")
    if not isinstance(llm_model, str) or not llm_model:
        llm_model = None   # overrides.py reports a wrong type
    return Routing(preferences=prefs, llm_model=llm_model,
                   llm_context_tokens=context if isinstance(context, int) and
                   not isinstance(context, bool) and context > 0 else 8192, **settings)


class _Names:
    """Which model names the gateway serves: aliases and what provider entries match."""

    def __init__(self, providers: Sequence[ProviderEntry], aliases: Mapping[str, Alias]) -> None:
        self.providers, self.aliases = providers, aliases

    def serves(self, name: str) -> bool:
        return name in self.aliases or bool(match_providers(self.providers, name))


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = version.strip().lstrip("vV").split("-", 1)[0].split(".")
    return tuple(int(p) for p in parts if p.isdigit())


def _top_level(rep: Report, raw: Any, known: _Names, version: str, versioned: bool
               ) -> tuple[RoutePreference, ...]:
    if raw is None:
        return ()
    where = "routing_preferences"
    if not isinstance(raw, list):
        rep.add(where, "must be a list like [{name: code generation, description: writing "
                       "new code, models: [anthropic/claude-sonnet-4-5]}]")
        return ()
    if raw and versioned and _version_tuple(version) < TOP_LEVEL_SINCE:
        rep.add(where, f"top-level routing_preferences need version: v0.4.0 or later (the "
                       f"file says {version}); set version: v0.4.0, as Plano requires")
    out: list[RoutePreference] = []
    for i, item in enumerate(raw):
        pref = _preference(rep, f"{where}[{i}]", item, known)
        if pref is None:
            continue
        if any(p.name == pref.name for p in out):
            rep.add(f"{where}[{i}]", f"the route name '{pref.name}' is used twice; give each "
                                     "route its own name")
            continue
        out.append(pref)
    return tuple(out)


def _preference(rep: Report, where: str, item: Any, known: _Names) -> RoutePreference | None:
    if not isinstance(item, dict):
        rep.add(where, "must be a mapping with name, description and models")
        return None
    check_keys(rep, where, item, PREFERENCE_KEYS, set())
    name, description = _text(rep, where, item, "name"), _text(rep, where, item, "description")
    models = item.get("models")
    if not isinstance(models, list) or not models or \
            not all(isinstance(m, str) and m for m in models):
        rep.add(where, "models must be a non-empty list of configured model names, the first "
                       "preferred (the rest are its fallbacks)")
        models = []
    for m in models:
        if not known.serves(m):
            rep.add(where, f"model '{m}' is not configured; every model of a route must be a "
                           "model_providers entry (or an alias) of this file")
    prefer = "none"
    policy = item.get("selection_policy")
    if policy is not None:
        if not isinstance(policy, dict):
            rep.add(where, "selection_policy must be a mapping like {prefer: cheapest}")
        else:
            check_keys(rep, f"{where}.selection_policy", policy, {"prefer"}, set())
            prefer = policy.get("prefer", "none")
            if prefer not in PREFER:
                rep.add(where, f"selection_policy.prefer must be one of {', '.join(PREFER)}, "
                               f"got {prefer!r}")
                prefer = "none"
    if name is None or description is None or not models:
        return None
    return RoutePreference(name=name, description=description, models=tuple(models),
                           prefer=prefer)


def _text(rep: Report, where: str, item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        rep.add(where, f"{key} must be a non-empty string")
        return None
    return value.strip()


def _inline(rep: Report, data: Mapping[str, Any], known: _Names) -> tuple[RoutePreference, ...]:
    """Plano's v0.3 form: routes under the provider entry that serves them. Lifted to
    top-level routes (one route per name, its models in file order), as Plano's CLI does."""
    section = "model_providers" if "model_providers" in data else "llm_providers"
    items = data.get(section)
    merged: dict[str, tuple[str, list[str]]] = {}
    places: list[str] = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or "routing_preferences" not in item:
            continue
        model = item.get("model")
        where = f"{section}[{i}] ({model})"
        raw = item["routing_preferences"]
        if not isinstance(raw, list):
            rep.add(where, "routing_preferences must be a list of {name, description}")
            continue
        if isinstance(model, str) and model.endswith("/*"):
            rep.add(where, "a wildcard entry cannot carry routing_preferences; name the "
                           "model, or list the routes at the top level with models: [...]")
            continue
        places.append(where)
        for j, pref in enumerate(raw):
            at = f"{where} routing_preferences[{j}]"
            if not isinstance(pref, dict):
                rep.add(at, "must be a mapping with name and description")
                continue
            check_keys(rep, at, pref, INLINE_KEYS, set())
            name, description = _text(rep, at, pref, "name"), _text(rep, at, pref, "description")
            if name is None or description is None or not isinstance(model, str):
                continue
            first = merged.setdefault(name, (description, []))
            if model not in first[1]:
                first[1].append(model)
    for where in places:
        rep.note("deprecated", where, "deprecated: routing_preferences under a provider entry "
                 "(Plano's v0.3 form) are served as top-level routing_preferences with "
                 "models: [this entry]; move them to the top level (version: v0.4.0)")
    return tuple(RoutePreference(name=n, description=d, models=tuple(m))
                 for n, (d, m) in merged.items() if all(known.serves(x) for x in m))


def _settings(rep: Report, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    where = "routing"
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping like {route_on_user_only: true}")
        return {}
    check_keys(rep, where, raw, ROUTING_KEYS, PLANO_ROUTING_KEYS)
    out: dict[str, Any] = {"route_on_user_only": boolean(rep, where, "route_on_user_only",
                                                         raw.get("route_on_user_only"))}
    ttl = positive_int(rep, where, "session_ttl_seconds", raw.get("session_ttl_seconds"), 600)
    entries = positive_int(rep, where, "session_max_entries", raw.get("session_max_entries"),
                           MAX_SESSION_ENTRIES)
    if entries is not None and entries > MAX_SESSION_ENTRIES:
        rep.add(where, f"session_max_entries must be at most {MAX_SESSION_ENTRIES}, got "
                       f"{entries}")
        entries = MAX_SESSION_ENTRIES
    out["session_ttl_s"] = float(ttl or 600)
    out["session_max_entries"] = entries or MAX_SESSION_ENTRIES
    if raw.get("session_cache") is not None:
        out.update(_session_cache(rep, raw["session_cache"]))
    if raw.get("routing_budget") is not None:
        out["budget"] = _budget(rep, raw["routing_budget"])
    threshold = raw.get("embedding_threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
                or not -1.0 <= threshold <= 1.0:
            rep.add(where, f"embedding_threshold must be a cosine similarity from -1 to 1, "
                           f"got {threshold!r}")
        else:
            out["threshold"] = float(threshold)
    if raw.get("llm_timeout") is not None:
        out["llm_timeout_s"] = duration(rep, where, "llm_timeout", raw["llm_timeout"], 5.0)
    return out


def _session_cache(rep: Report, raw: Any) -> dict[str, Any]:
    """`routing.session_cache`: `memory` (each edge's own pins) or `redis` (pins every edge
    shares, under switchyard:affinity:[tenant:]key)."""
    where = "routing.session_cache"
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping like {type: redis, url: redis://redis:6379/0}")
        return {}
    check_keys(rep, where, raw, SESSION_CACHE_KEYS, set(), "key")
    kind = raw.get("type", "memory")
    if kind not in ("memory", "redis"):
        rep.add(where, f"type must be memory or redis, got {kind!r}")
        return {}
    header = raw.get("tenant_header")
    out: dict[str, Any] = {}
    if header is not None:
        if not isinstance(header, str) or not header.strip() or \
                any(c in header for c in " :\t\r\n"):
            rep.add(where, f"tenant_header must be an HTTP header name, got {header!r}")
        else:
            out["session_tenant_header"] = header.strip().lower()
    if kind == "memory":
        return out
    url = expand(rep, where, "url", raw.get("url"))
    if checked_url(rep, where, url, "url is required with type: redis"):
        out["session_cache"] = RedisSettings(url=url, display=redacted(url))
    return out


def _budget(rep: Report, raw: Any) -> RoutingBudget | None:
    where = "routing.routing_budget"
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping like {max_switch_spend_pct: 20}")
        return None
    check_keys(rep, where, raw, BUDGET_KEYS, set(), "key")
    pct = raw.get("max_switch_spend_pct")
    if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 100:
        rep.add(where, f"max_switch_spend_pct must be a percentage from 0 to 100, got {pct!r}")
        return None
    discount = raw.get("cache_read_discount", 0.1)
    if isinstance(discount, bool) or not isinstance(discount, (int, float)) \
            or not 0 <= discount <= 1:
        rep.add(where, f"cache_read_discount must be a fraction from 0 to 1, got {discount!r}")
        discount = 0.1
    return RoutingBudget(
        max_switch_pct=float(pct),
        replenish_on_rebind=boolean(rep, where, "replenish_on_rebind",
                                    raw.get("replenish_on_rebind", True)),
        cache_read_discount=float(discount),
        record_counterfactual=boolean(rep, where, "record_counterfactual",
                                      raw.get("record_counterfactual")))


def check_budget_prices(rep: Report, routing: Routing, providers: Sequence[ProviderEntry],
                        cost_sources: Sequence[CostSource]) -> None:
    """A switch budget is priced: it needs a cost catalog or `pricing:` on an entry."""
    if routing.budget is not None and not cost_sources and \
            not any(p.pricing is not None for p in providers):
        rep.add("routing.routing_budget", "needs prices: a model_metrics_sources entry of "
                                          "type cost, or pricing: on the provider entries")
