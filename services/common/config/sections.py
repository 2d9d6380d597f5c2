"""The small sections: `state_storage`, `services` (listeners: config/listeners.py)."""
from __future__ import annotations

import os
from typing import Any

from switchyard.common.config.fields import (
    Report,
    check_keys,
    expand,
    is_host_port,
    parse_duration,
    positive_int,
)
from switchyard.common.config.model import (
    ServiceAddresses,
    StateStorage,
    endpoints_of,
)

SERVICE_ENV = {"router": "SWITCHYARD_ROUTER_ADDR", "providers": "SWITCHYARD_PROVIDERS_ADDR",
               "state": "SWITCHYARD_STATE_ADDR"}

STATE_KEYS = {"type", "connection_string", "ttl_seconds", "max_entries", "max_depth"}


def parse_state(rep: Report, raw: Any) -> StateStorage:
    d = StateStorage()
    if raw is None:
        return d
    where = "state_storage"
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping like {type: memory}")
        return d
    check_keys(rep, where, raw, STATE_KEYS, set())
    kind = raw.get("type", "memory")
    if kind not in ("memory", "postgres"):
        rep.add(where, f"type must be memory or postgres, got {kind!r}")
        kind = "memory"
    conn = None
    # Read for another service: the DSN is the state service's secret, left out.
    unread = "connection_string" in raw and not rep.reads("state_storage")
    if "connection_string" in raw and not unread:
        conn = expand(rep, where, "connection_string", raw["connection_string"])
        if not isinstance(conn, str):
            rep.add(where, "connection_string must be a string like "
                           "postgresql://user:password@host:5432/db")
            conn = None
    if kind == "postgres" and not conn and not unread:
        rep.add(where, "type postgres needs connection_string: "
                       "postgresql://user:password@host:5432/db")
    ttl = raw.get("ttl_seconds")
    if isinstance(ttl, str) and (seconds := parse_duration(ttl)) is not None:
        ttl = int(seconds)
    return StateStorage(
        type=kind, connection_string=conn or None,
        ttl_seconds=positive_int(rep, where, "ttl_seconds", ttl, d.ttl_seconds) or d.ttl_seconds,
        max_entries=positive_int(rep, where, "max_entries", raw.get("max_entries"),
                                 d.max_entries) or d.max_entries,
        max_depth=positive_int(rep, where, "max_depth", raw.get("max_depth"),
                               d.max_depth) or d.max_depth)


def parse_services(rep: Report, raw: Any) -> ServiceAddresses:
    """Service addresses from the file, then `SWITCHYARD_<SERVICE>_ADDR` overrides; an address
    may list replicas (a YAML list or commas). Also the servers' connection age (extension)."""
    d = ServiceAddresses()
    values = {s: getattr(d, s) for s in SERVICE_ENV}
    named: set[str] = set()
    age, grace = d.max_connection_age_s, d.max_connection_age_grace_s
    if raw is not None and not isinstance(raw, dict):
        rep.add("services", "must be a map like {router: 127.0.0.1:12001}")
        raw = None
    if raw:
        check_keys(rep, "services", raw, set(SERVICE_ENV) | set(CONNECTION_KEYS), set(),
                   "service")
        for s in SERVICE_ENV:
            if s in raw:
                value = expand(rep, f"services.{s}", "address", raw[s])
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    value = ",".join(value)   # replicas: one string, as the env var gives it
                values[s] = value
                named.add(s)
        if "max_connection_age" in raw:
            age = _age(rep, "max_connection_age", raw["max_connection_age"], age)
        if "max_connection_age_grace" in raw:
            grace = _age(rep, "max_connection_age_grace", raw["max_connection_age_grace"], grace)
    for s, var in SERVICE_ENV.items():
        env = os.environ.get(var)
        where = f"services.{s}"
        if env:
            values[s], where = env, f"environment variable {var}"
            named.add(s)
        value = values[s]
        parts = endpoints_of(value) if isinstance(value, str) else ()
        bad = [p for p in parts if not _is_address(p)] if parts else [value]
        if bad:
            rep.add(where, f"address {bad[0]!r} must be host:port, e.g. 127.0.0.1:12001, "
                           f"dns:///name:port, unix:/absolute/path.sock, or a list of those "
                           f"(replicas)")
            values[s] = getattr(d, s)
    return ServiceAddresses(**values, named=frozenset(named), max_connection_age_s=age,
                            max_connection_age_grace_s=grace)


# `services:` keys that are settings of the servers' connections, not services.
CONNECTION_KEYS = {"max_connection_age", "max_connection_age_grace"}
NO_LIMIT = ("none", "off", "never")


def _age(rep: Report, key: str, value: Any, default: float | None) -> float | None:
    """Seconds from a duration; 0, `none`, `off`, `never` or null: no limit."""
    if value is None or (isinstance(value, str) and value.strip().lower() in NO_LIMIT):
        return None
    seconds = parse_duration(value)
    if seconds is None or seconds < 0:
        rep.add(f"services.{key}", f"must be a duration like 60s, 500ms or 10m, or 0/none "
                                   f"for no limit, got {value!r}")
        return default
    return seconds or None


def _is_address(value: Any) -> bool:
    """host:port, `dns:[//authority]/host:port`, another gRPC target, or `unix:` and a path."""
    if not isinstance(value, str) or "," in value:
        return False
    if value.startswith("unix:"):
        return len(value) > len("unix:")
    if value.startswith("dns:"):
        rest = value[len("dns:"):]
        name = rest.split("/", 3)[3] if rest.startswith("//") and rest.count("/") >= 3 \
            else rest.lstrip("/")
        return is_host_port(name) and "://" not in name and not name.startswith("unix:")
    return is_host_port(value)
