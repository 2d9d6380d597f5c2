"""The small sections: `listeners`, `state_storage`, `services`."""
from __future__ import annotations

import os
from typing import Any

from switchyard.common.config.fields import (
    Report,
    check_keys,
    duration,
    expand,
    is_host_port,
    parse_duration,
    positive_int,
)
from switchyard.common.config.model import Listener, ServiceAddresses, StateStorage

SERVICE_ENV = {"router": "SWITCHYARD_ROUTER_ADDR", "providers": "SWITCHYARD_PROVIDERS_ADDR",
               "state": "SWITCHYARD_STATE_ADDR"}

STATE_KEYS = {"type", "connection_string", "ttl_seconds", "max_entries", "max_depth"}


def parse_listener(rep: Report, raw: Any) -> Listener:
    """The model listener: Plano's list form (`type: model`) or the older `egress_traffic` map."""
    if raw is None:
        return Listener()
    if isinstance(raw, dict):
        egress = raw.get("egress_traffic")
        if egress is None:
            return Listener()
        return _listener_fields(rep, "listeners.egress_traffic", egress, "egress_traffic")
    if not isinstance(raw, list):
        rep.add("listeners", "must be a list of listeners ([{type: model, port: 12000}]) or "
                             "a map with egress_traffic")
        return Listener()
    chosen: Listener | None = None
    for i, item in enumerate(raw):
        where = f"listeners[{i}]"
        if not isinstance(item, dict):
            rep.add(where, "must be a mapping like {type: model, port: 12000}")
            continue
        if item.get("type", "model") != "model":
            continue  # agent / prompt listeners are Plano features we do not serve
        if chosen is not None:
            rep.add(where, "only one listener of type model is supported; remove the others")
            continue
        chosen = _listener_fields(rep, where, item, "model_listener")
    return chosen or Listener()


def _listener_fields(rep: Report, where: str, raw: Any, default_name: str) -> Listener:
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping with address, port and timeout")
        return Listener()
    d = Listener()
    address = expand(rep, where, "address", raw.get("address", d.address))
    if not isinstance(address, str) or not address:
        rep.add(where, f"address must be a host name or IP, got {address!r}")
        address = d.address
    port = raw.get("port", d.port)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        rep.add(where, f"port must be a number between 1 and 65535, got {port!r}")
        port = d.port
    retries = raw.get("max_retries", d.max_retries)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        rep.add(where, f"max_retries must be a whole number ≥ 0, got {retries!r}")
        retries = d.max_retries
    return Listener(name=str(raw.get("name", default_name)), address=address, port=port,
                    timeout_s=duration(rep, where, "timeout", raw.get("timeout"), d.timeout_s),
                    max_retries=retries)


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
    if "connection_string" in raw:
        conn = expand(rep, where, "connection_string", raw["connection_string"])
        if not isinstance(conn, str):
            rep.add(where, "connection_string must be a string like "
                           "postgresql://user:password@host:5432/db")
            conn = None
    if kind == "postgres" and not conn:
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
    """Service addresses from the file, then `SWITCHYARD_<SERVICE>_ADDR` overrides."""
    d = ServiceAddresses()
    values = {s: getattr(d, s) for s in SERVICE_ENV}
    named: set[str] = set()
    if raw is not None and not isinstance(raw, dict):
        rep.add("services", "must be a map like {router: 127.0.0.1:12001}")
        raw = None
    if raw:
        check_keys(rep, "services", raw, set(SERVICE_ENV), set(), "service")
        for s in SERVICE_ENV:
            if s in raw:
                values[s] = expand(rep, f"services.{s}", "address", raw[s])
                named.add(s)
    for s, var in SERVICE_ENV.items():
        env = os.environ.get(var)
        where = f"services.{s}"
        if env:
            values[s], where = env, f"environment variable {var}"
            named.add(s)
        if not _is_address(values[s]):
            rep.add(where, f"address {values[s]!r} must be host:port, e.g. 127.0.0.1:12001, "
                           f"or unix:/absolute/path.sock")
            values[s] = getattr(d, s)
    return ServiceAddresses(**values, named=frozenset(named))


def _is_address(value: Any) -> bool:
    """host:port, a gRPC target, or `unix:` followed by a socket path."""
    if isinstance(value, str) and value.startswith("unix:"):
        return len(value) > len("unix:")
    return is_host_port(value)
