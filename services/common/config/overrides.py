"""Plano's `overrides:`: the keys that mean something to Switchyard's upstream client
(`upstream_connect_timeout`, `upstream_tls_ca_path`), type checks for the rest (which
config/plano_scope.py names)."""
from __future__ import annotations

import os
import ssl
from typing import Any

from switchyard.common.config.fields import Report, check_keys, duration, expand
from switchyard.common.config.model import UpstreamOverrides

HONOURED = {"upstream_connect_timeout", "upstream_tls_ca_path"}
_NUMBER: tuple[tuple[type, ...], str] = ((int, float), "a number")
_BOOL: tuple[tuple[type, ...], str] = ((bool,), "true or false")
_MODEL: tuple[tuple[type, ...], str] = ((str,), "a model name")
# Plano's other overrides and the type each must have (what they mean: plano_scope.GAPS).
TYPED: dict[str, tuple[tuple[type, ...], str]] = {
    "prompt_target_intent_matching_threshold": _NUMBER,
    "optimize_context_window": _BOOL,
    "use_agent_orchestrator": _BOOL,
    "disable_signals": _BOOL,
    "llm_routing_model": _MODEL,
    "agent_orchestration_model": _MODEL,
    "orchestrator_model_context_length": ((int,), "a whole number"),
}


def parse_overrides(rep: Report, raw: Any) -> UpstreamOverrides:
    if raw is None:
        return UpstreamOverrides()
    where = "overrides"
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping like {upstream_connect_timeout: 5s}")
        return UpstreamOverrides()
    check_keys(rep, where, raw, HONOURED | set(TYPED), set(), "override")
    for key, (types, name) in TYPED.items():
        value = raw.get(key)
        bad_bool = isinstance(value, bool) and bool not in types
        if value is not None and (bad_bool or not isinstance(value, types)):
            rep.add(f"{where}.{key}", f"must be {name}, got {value!r}")
    connect = None
    if raw.get("upstream_connect_timeout") is not None:
        connect = duration(rep, f"{where}.upstream_connect_timeout", "upstream_connect_timeout",
                           raw["upstream_connect_timeout"], 0.0)
    return UpstreamOverrides(connect_timeout_s=connect or None,
                             tls_ca_path=_ca_path(rep, raw.get("upstream_tls_ca_path")))


def _ca_path(rep: Report, raw: Any) -> str | None:
    """The CA bundle, checked at load time: a wrong path is a start-up error, not a TLS
    failure at the first request."""
    if raw is None:
        return None
    where = "overrides.upstream_tls_ca_path"
    path = expand(rep, where, "upstream_tls_ca_path", raw)
    if not isinstance(path, str) or not path:
        rep.add(where, f"must be the path of a PEM file of CA certificates, got {raw!r}")
        return None
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        rep.add(where, f"{path} is not a readable file; point it at a PEM bundle of the CAs "
                       "upstreams are signed by (e.g. /etc/ssl/certs/ca-certificates.crt)")
        return None
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, ValueError):
        rep.add(where, f"{path} holds no PEM CA certificate; point it at a PEM bundle (e.g. "
                       "/etc/ssl/certs/ca-certificates.crt)")
        return None
    return path
