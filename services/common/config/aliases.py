"""`model_aliases`: targets, fallbacks, weighted targets, and cycle detection."""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from switchyard.common.config.fields import Report, check_keys, expand
from switchyard.common.config.model import Alias, ProviderEntry, WeightedTarget
from switchyard.common.config.providers import match_providers

ALIAS_KEYS = {"target", "fallbacks", "targets"}


def parse_aliases(rep: Report, raw: Any, providers: tuple[ProviderEntry, ...],
                  check_refs: bool = True) -> dict[str, Alias]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        rep.add("model_aliases", "must be a map like {fast-model: {target: gpt-4o-mini}}")
        return {}
    aliases: dict[str, Alias] = {}
    for name, spec in raw.items():
        where = f"model_aliases.{name}"
        alias = _parse_alias(rep, where, str(name), spec)
        if alias is not None:
            aliases[str(name)] = alias
    for cycle in _alias_cycles(aliases):
        rep.add(f"model_aliases.{cycle[0]}", "aliases form a cycle: " + " → ".join(cycle))
    if not check_refs:
        return aliases  # names cannot be checked against providers that failed to parse
    for name, alias in aliases.items():
        for ref in _alias_refs(alias):
            if ref not in aliases and not match_providers(providers, ref):
                close = difflib.get_close_matches(ref, known_names(providers, aliases), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else \
                    "; point it at a configured model or alias"
                rep.add(f"model_aliases.{name}", f"{ref!r} does not match any configured model "
                                                 f"or alias{hint}")
    return aliases


def _parse_alias(rep: Report, where: str, name: str, spec: Any) -> Alias | None:
    if isinstance(spec, str):
        spec = {"target": spec}
    if not isinstance(spec, dict):
        rep.add(where, "must be a mapping like {target: gpt-4o-mini}")
        return None
    n_before = len(rep.errors)
    check_keys(rep, where, spec, ALIAS_KEYS, set())
    spec = expand(rep, where, "alias", spec)
    target = spec.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        rep.add(where, f"target must be a model name, got {target!r}")
    fallbacks = spec.get("fallbacks") or []
    if isinstance(fallbacks, str):
        fallbacks = [fallbacks]
    if not isinstance(fallbacks, list) or not all(isinstance(f, str) and f for f in fallbacks):
        rep.add(where, "fallbacks must be a list of model names")
        fallbacks = []
    targets: list[WeightedTarget] = []
    raw_targets = spec.get("targets")
    if raw_targets is not None:
        if not isinstance(raw_targets, list) or not raw_targets:
            rep.add(where, "targets must be a list like [{model: a, weight: 3}, {model: b, "
                           "weight: 1}]")
        else:
            for j, t in enumerate(raw_targets):
                if isinstance(t, str):
                    t = {"model": t}
                if not isinstance(t, dict) or not isinstance(t.get("model"), str):
                    rep.add(f"{where}.targets[{j}]", "must be {model: name, weight: N}")
                    continue
                weight = t.get("weight", 1)
                if isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0:
                    rep.add(f"{where}.targets[{j}]", f"weight must be a positive whole number, "
                                                     f"got {weight!r}")
                    continue
                targets.append(WeightedTarget(t["model"], weight))
    if target and raw_targets is not None:
        rep.add(where, "give either target or targets, not both")
    elif not target and raw_targets is None:
        rep.add(where, "needs a target (target: gpt-4o-mini) or weighted targets "
                       "(targets: [{model: a, weight: 1}])")
    if len(rep.errors) != n_before:
        return None
    return Alias(name=name, target=target or None, fallbacks=tuple(fallbacks),
                 targets=tuple(targets))


def _alias_refs(alias: Alias) -> list[str]:
    return ([alias.target] if alias.target else []) + [t.model for t in alias.targets] + \
        list(alias.fallbacks)


def _alias_cycles(aliases: dict[str, Alias]) -> list[list[str]]:
    """Each cycle in the alias graph once, as [a, b, ..., a]."""
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = stack[stack.index(name):] + [name]
            key = frozenset(cycle)
            if key not in seen_cycles:
                seen_cycles.add(key)
                cycles.append(cycle)
            return
        if name in done or name not in aliases:
            return
        for ref in _alias_refs(aliases[name]):
            visit(ref, stack + [name])
        done.add(name)
    for name in aliases:
        visit(name, [])
    return cycles


def known_names(providers: Iterable[ProviderEntry], aliases: dict[str, Alias]) -> list[str]:
    out = list(aliases)
    for e in providers:
        out.append(e.public_name)
        if not e.is_wildcard:
            out.append(e.model)
    return out
