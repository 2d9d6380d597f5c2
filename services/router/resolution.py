"""Model names to route plans: pure functions of a Config (docs/architecture.md, "Model names")."""
from __future__ import annotations

import difflib
import math
from typing import Any

from switchyard.common.canonical.mappings import INTERFACE_WIRE
from switchyard.common.config.model import Alias, Config, ProviderEntry
from switchyard.common.config.providers import match_providers
from switchyard.common.proto import router_pb2

# A plan before it gets a name and policy: the weighted group, then ordered fallbacks.
_Key = tuple[str, str]                        # (provider entry name, upstream model)
_Flat = tuple[list[tuple[router_pb2.Target, int]], list[router_pb2.Target]]


class AliasCycleError(ValueError):
    """An alias refers back to itself (the loader rejects such configs)."""


def resolve(config: Config, name: str) -> router_pb2.RoutePlan | None:
    """The route plan for `name`, or None when nothing serves it."""
    flat = _resolve_flat(config, name, ())
    if flat is None:
        return None
    return _plan(config, name, flat)


def pool_plan(config: Config, name: str, models: list[str]) -> router_pb2.RoutePlan | None:
    """A routed request's plan: its ranked candidate pool as an alias with fallbacks (the
    first model's targets, then the others'), named after the route."""
    if not models:
        return None
    alias = Alias(name=name, target=models[0], fallbacks=tuple(models[1:]))
    flat = _alias_flat(config, alias, ())
    return None if flat is None else _plan(config, name, flat)


def build_route_table(config: Config, version: int = 0) -> router_pb2.RouteTable:
    """Every exact name (aliases, provider/model, bare and entry names, "" for the default)."""
    table = router_pb2.RouteTable(version=version)
    for name in _exact_names(config):
        plan = resolve(config, name)
        if plan is not None:
            table.routes[name].CopyFrom(plan)
    table.known_names.extend(known_names(config))
    table.models.CopyFrom(model_list(config))
    return table


def known_names(config: Config) -> list[str]:
    """Names worth suggesting: aliases, then models as users write them (wildcards too)."""
    out: list[str] = []
    for name in config.aliases:
        _add(out, name)
    for e in config.providers:
        if not e.is_wildcard:
            _add(out, e.model)
        _add(out, e.public_name)
    return out


def suggestions(config: Config, name: str, n: int = 5) -> list[str]:
    """Up to `n` configured names, the closest to `name` first."""
    names = known_names(config)
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.4) if name else []
    rest = [x for x in names if x not in close]
    return (close + rest)[:n]


def model_list(config: Config) -> router_pb2.ModelList:
    """What GET /v1/models lists: concrete models (one per name) and aliases."""
    out = router_pb2.ModelList()
    seen: set[str] = set()
    for e in config.providers:
        if not e.is_wildcard and e.model not in seen and e.model not in config.aliases:
            seen.add(e.model)
            out.models.add(id=e.model, owned_by=e.provider)
    for name in config.aliases:
        out.models.add(id=name, owned_by="switchyard", alias=True)
    return out


def default_entry(config: Config) -> ProviderEntry | None:
    """The `default: true` entry, which answers requests without a model."""
    return next((e for e in config.providers if e.default), None)


# ---- internals ---------------------------------------------------------------------------

def _add(out: list[str], name: str) -> None:
    if name not in out:
        out.append(name)


def _exact_names(config: Config) -> list[str]:
    names: list[str] = list(config.aliases)
    for e in config.providers:
        if not e.is_wildcard:
            names += [e.public_name, e.model, e.name]
    if default_entry(config) is not None:
        names.append("")
    return list(dict.fromkeys(names))


def _target(entry: ProviderEntry, model: str, weight: int = 0) -> router_pb2.Target:
    return router_pb2.Target(provider=entry.name, model=model,
                             wire=INTERFACE_WIRE[entry.interface],
                             weight=weight)


def _resolve_flat(config: Config, name: str, seen: tuple[str, ...]) -> _Flat | None:
    """Group (target, weight) and fallbacks for a name; aliases flattened recursively."""
    if name in config.aliases:
        if name in seen:
            raise AliasCycleError(" → ".join((*seen, name)))
        return _alias_flat(config, config.aliases[name], (*seen, name))
    if name == "":
        entry = default_entry(config)
        return ([(_target(entry, entry.model), 1)], []) if entry else None
    matches = match_providers(config.providers, name)
    if not matches:
        return None
    return [(_target(e, m), 1) for e, m in matches], []


def _alias_flat(config: Config, alias: Alias, seen: tuple[str, ...]) -> _Flat | None:
    group: list[tuple[router_pb2.Target, int]] = []
    fallbacks: list[router_pb2.Target] = []
    if alias.target:
        sub = _resolve_flat(config, alias.target, seen)
        if sub is None:
            return None
        group, fallbacks = list(sub[0]), list(sub[1])
    else:
        subs = []
        for wt in alias.targets:
            sub = _resolve_flat(config, wt.model, seen)
            if sub is not None:
                subs.append((wt.weight, sub))
        if not subs:
            return None
        # Split each item's weight across its own group in integers: scale by the LCM of sums.
        lcm = math.lcm(*(sum(w for _, w in sub[0]) for _, sub in subs))
        for weight, (sub_group, sub_fallbacks) in subs:
            scale = lcm // sum(w for _, w in sub_group)
            for target, w in sub_group:
                group.append((target, weight * w * scale))
            fallbacks.extend(sub_fallbacks)
    for ref in alias.fallbacks:
        sub = _resolve_flat(config, ref, seen)
        if sub is not None:
            fallbacks.extend(t for t, _ in sub[0])
            fallbacks.extend(sub[1])
    return _dedupe(group, fallbacks)


def _dedupe(group: list[tuple[router_pb2.Target, int]], fallbacks: list[router_pb2.Target]
            ) -> _Flat:
    """Merge repeated targets: weights add up in the group; a fallback already seen is dropped."""
    merged: dict[_Key, list[Any]] = {}
    for target, weight in group:
        key = (target.provider, target.model)
        if key in merged:
            merged[key][1] += weight
        else:
            merged[key] = [target, weight]
    divisor = math.gcd(*(w for _, w in merged.values())) or 1
    out_group = [(t, w // divisor) for t, w in merged.values()]
    seen = set(merged)
    out_fallbacks = []
    for t in fallbacks:
        key = (t.provider, t.model)
        if key not in seen:
            seen.add(key)
            out_fallbacks.append(t)
    return out_group, out_fallbacks


def _plan(config: Config, name: str, flat: _Flat) -> router_pb2.RoutePlan:
    group, fallbacks = flat
    plan = router_pb2.RoutePlan(name=name, weighted_count=len(group),
                                max_retries=config.listener.max_retries,
                                timeout_s=config.listener.timeout_s)
    for target, weight in group:
        t = plan.targets.add()
        t.CopyFrom(target)
        t.weight = weight
    for target in fallbacks:
        t = plan.targets.add()
        t.CopyFrom(target)
        t.weight = 0
    return plan
