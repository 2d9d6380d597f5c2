"""Plano's `ratelimits:` section: token budgets per model and request header.

```yaml
ratelimits:
  - model: gpt-4o
    selector: {key: x-org-id, value: acme}    # value left out: each value its own budget
    limit: {tokens: 100000, unit: minute}     # second | minute | hour | day
```
"""
from __future__ import annotations

from typing import Any

from switchyard.common.config.fields import Report, check_keys, expand
from switchyard.common.config.model import RateLimitRule

ENTRY_KEYS = {"model", "selector", "limit"}
SELECTOR_KEYS = {"key", "value"}
LIMIT_KEYS = {"tokens", "unit"}
UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


def parse_ratelimits(rep: Report, raw: Any) -> tuple[RateLimitRule, ...]:
    """Every well-formed entry as a RateLimitRule; each problem reported with its entry."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        rep.add("ratelimits", "must be a list of {model, selector: {key, value}, "
                              "limit: {tokens, unit}} entries")
        return ()
    rules: list[RateLimitRule] = []
    seen: dict[tuple[str, str, str | None], int] = {}
    for i, item in enumerate(raw):
        where = f"ratelimits[{i}]"
        rule = _parse_entry(rep, where, item)
        if rule is None:
            continue
        ident = (rule.model, rule.header, rule.value)
        if ident in seen:
            rep.add(where, f"repeats ratelimits[{seen[ident]}] (same model, selector key and "
                           "value); give each selector one limit")
            continue
        seen[ident] = i
        rules.append(rule)
    return tuple(rules)


def _parse_entry(rep: Report, where: str, item: Any) -> RateLimitRule | None:
    if not isinstance(item, dict):
        rep.add(where, "must be a mapping with model, selector and limit")
        return None
    check_keys(rep, where, item, ENTRY_KEYS, set(), "key")
    model = expand(rep, where, "model", item.get("model"))
    ok = True
    if not isinstance(model, str) or not model:
        rep.add(where, "model is required: the model name the limit applies to")
        ok = False
    header, value = _selector(rep, f"{where}.selector", item.get("selector"))
    tokens, unit = _limit(rep, f"{where}.limit", item.get("limit"))
    if not ok or header is None or tokens is None or unit is None:
        return None
    assert isinstance(model, str)
    return RateLimitRule(model=model, header=header, value=value, tokens=tokens, unit=unit,
                         unit_s=UNITS[unit])


def _selector(rep: Report, where: str, raw: Any) -> tuple[str | None, str | None]:
    """(lower-case header name, value or None); (None, None) after reporting a problem."""
    if not isinstance(raw, dict):
        rep.add(where, "is required: {key: <request header>, value: <its value>}")
        return None, None
    check_keys(rep, where, raw, SELECTOR_KEYS, set(), "key")
    key = expand(rep, where, "key", raw.get("key"))
    if not isinstance(key, str) or not key.strip():
        rep.add(where, "key is required: the name of the request header that selects the "
                       "limit, e.g. x-org-id")
        return None, None
    value = expand(rep, where, "value", raw.get("value"))
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        rep.add(where, f"value must be a string, got {value!r}")
        return None, None
    return key.strip().lower(), value


def _limit(rep: Report, where: str, raw: Any) -> tuple[int | None, str | None]:
    if not isinstance(raw, dict):
        rep.add(where, "is required: {tokens: <count>, unit: second | minute | hour | day}")
        return None, None
    check_keys(rep, where, raw, LIMIT_KEYS, set(), "key")
    tokens, unit = raw.get("tokens"), raw.get("unit")
    ok = True
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens <= 0:
        rep.add(where, f"tokens must be a positive whole number, got {tokens!r}")
        ok = False
    if unit not in UNITS:
        rep.add(where, f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
        ok = False
    if not ok:
        return None, None
    assert isinstance(tokens, int) and isinstance(unit, str)
    return tokens, unit
