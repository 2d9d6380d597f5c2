"""Parsing of our `auth:` and `limits:` config extensions."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from switchyard.common.config import descriptors
from switchyard.common.config.model import ApiKey, RateLimitRule, RedisSettings, Security

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
AUTH_KEY_FIELDS = {"key", "key_sha256", "tenant", "models", "requests_per_minute",
                   "tokens_per_minute"}
# limits.<name> -> Security field; counts are positive integers, durations positive seconds.
LIMIT_COUNTS = {"max_body_bytes": "max_body_bytes", "requests_per_minute": "requests_per_minute",
                "max_concurrent_requests": "max_concurrent_requests",
                "max_connections": "max_connections", "tokens_per_minute": "tokens_per_minute"}
LIMIT_SECONDS = {"header_timeout_seconds": "header_timeout_s",
                 "body_timeout_seconds": "body_timeout_s",
                 "keep_alive_seconds": "keep_alive_s", "drain_seconds": "drain_s"}
LIMIT_FIELDS = set(LIMIT_COUNTS) | set(LIMIT_SECONDS)

Expand = Callable[[str, str, Any], Any]   # (where, field, value) -> expanded value


def parse_security(auth: Any, limits: Any, errors: list[str], expand: Expand,
                   ratelimits: tuple[RateLimitRule, ...] = (),
                   redis: RedisSettings | None = None) -> Security:
    """Build Security from the raw sections (`ratelimits` and `redis` come parsed); append
    one message per problem to `errors`."""
    keys = _parse_keys(auth, errors, expand) if auth is not None else ()
    values: dict[str, Any] = {}
    if limits is not None:
        if not isinstance(limits, dict):
            errors.append("limits: must be a mapping of "
                          + ", ".join(sorted(LIMIT_FIELDS)))
            limits = {}
        for name in sorted(set(limits) - LIMIT_FIELDS):
            errors.append(f"limits.{name}: unknown field; known: {', '.join(sorted(LIMIT_FIELDS))}")
        for name, value in limits.items():
            if name in LIMIT_COUNTS:
                if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                    errors.append(f"limits.{name}: must be a positive integer, got {value!r}")
                else:
                    values[LIMIT_COUNTS[name]] = value
            elif name in LIMIT_SECONDS:
                if not isinstance(value, (int, float)) or isinstance(value, bool) \
                        or not 0 < value < float("inf"):
                    errors.append(f"limits.{name}: must be a positive number of seconds, "
                                  f"got {value!r}")
                else:
                    values[LIMIT_SECONDS[name]] = float(value)
    if "max_connections" in values and "max_concurrent_requests" not in values:
        # Each in-flight request holds a connection: no more than the connections allowed.
        values["max_concurrent_requests"] = min(values["max_connections"],
                                                descriptors.default_max_concurrent())
    return Security(keys=keys, ratelimits=ratelimits, redis=redis, **values)


def _parse_keys(auth: Any, errors: list[str], expand: Expand) -> tuple[ApiKey, ...]:
    if not isinstance(auth, dict) or not isinstance(auth.get("keys"), list):
        errors.append("auth: must be a mapping with a `keys:` list "
                      "(each entry `key: $ENV_VAR` or `key_sha256: <hex>`, plus `tenant`)")
        return ()
    out: list[ApiKey] = []
    for i, item in enumerate(auth["keys"]):
        where = f"auth.keys[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be a mapping with `key` or `key_sha256` and `tenant`")
            continue
        for name in sorted(set(item) - AUTH_KEY_FIELDS):
            errors.append(f"{where}.{name}: unknown field; known: "
                          + ", ".join(sorted(AUTH_KEY_FIELDS)))
        tenant = item.get("tenant")
        if not isinstance(tenant, str) or not tenant:
            errors.append(f"{where}: `tenant` is required (a non-empty string)")
            continue
        has_key, has_digest = "key" in item, "key_sha256" in item
        if has_key == has_digest:
            errors.append(f"{where} (tenant {tenant}): give exactly one of `key` "
                          "(e.g. key: $TEAM_KEY) or `key_sha256` (hex SHA-256 of the key)")
            continue
        if has_key:
            key = expand(where, "key", item["key"])
            if not isinstance(key, str) or not key:
                errors.append(f"{where} (tenant {tenant}): `key` is empty; set the "
                              "environment variable it names")
                continue
            digest = hashlib.sha256(key.encode()).digest()
        else:
            hexd = item["key_sha256"]
            if not isinstance(hexd, str) or not _HEX64.match(hexd):
                errors.append(f"{where} (tenant {tenant}): `key_sha256` must be 64 hex digits")
                continue
            digest = bytes.fromhex(hexd)
        models = item.get("models")
        if models is not None and (not isinstance(models, list)
                                   or not all(isinstance(m, str) for m in models)):
            errors.append(f"{where} (tenant {tenant}): `models` must be a list of model names")
            continue
        rates = {name: item.get(name) for name in ("requests_per_minute", "tokens_per_minute")}
        bad = [name for name, n in rates.items() if n is not None and (
            not isinstance(n, int) or isinstance(n, bool) or n <= 0)]
        if bad:
            errors.append(f"{where} (tenant {tenant}): `{bad[0]}` must be a positive integer")
            continue
        rpm, tpm = rates["requests_per_minute"], rates["tokens_per_minute"]
        out.append(ApiKey(sha256=digest, tenant=tenant, requests_per_minute=rpm,
                          tokens_per_minute=tpm,
                          models=frozenset(models) if models is not None else None))
    return tuple(out)
