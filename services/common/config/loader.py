"""Reading `plano_config.yaml` into a `Config`: env expansion, validation, every error at once."""
from __future__ import annotations

import os
from typing import Any

import yaml

from switchyard.common.config.aliases import parse_aliases
from switchyard.common.config.fields import (
    ConfigError,
    Report,
    check_keys,
    expand,
    expand_env,
    parse_duration,
)
from switchyard.common.config.model import Config
from switchyard.common.config.observability import (
    parse_cost_sources,
    parse_request_log,
    parse_tracing,
)
from switchyard.common.config.providers import match_providers, parse_providers
from switchyard.common.config.sections import parse_listener, parse_services, parse_state
from switchyard.common.config.security import parse_security

__all__ = ["ConfigError", "expand_env", "format_model_table", "load_config", "match_providers",
           "parse_config", "parse_duration"]

# Keys we read; Plano keys we accept and ignore (they configure features we do not have).
TOP_KEYS = {"version", "listeners", "model_providers", "llm_providers", "model_aliases",
            "state_storage", "services", "auth", "limits", "tracing", "model_metrics_sources",
            "logging"}

PLANO_TOP_KEYS = {"agents", "filters", "endpoints", "overrides", "system_prompt", "prompt_guards",
                  "prompt_targets", "mode", "ratelimits", "routing_preferences",
                  "error_target", "llm_routing_model"}


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, expand and validate a config file; raises ConfigError listing every problem."""
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError(p, [f"{p}: file not found; pass --config FILE or set "
                              "SWITCHYARD_CONFIG"]) from None
    except OSError as exc:
        raise ConfigError(p, [f"{p}: cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(p, [f"{p}: {at}invalid YAML ({problem}); fix the syntax"]) from None
    return parse_config(data if data is not None else {}, p)


def parse_config(data: Any, path: str = "<string>") -> Config:
    """Validate an already-parsed config mapping; raises ConfigError listing every problem."""
    rep = Report(str(path))
    if not isinstance(data, dict):
        rep.add("", "the file must be a YAML mapping with model_providers, listeners, ...")
        raise ConfigError(rep.path, rep.errors)
    check_keys(rep, "", data, TOP_KEYS, PLANO_TOP_KEYS, "top-level key")
    version = str(data.get("version", "v0.3.0"))
    listener = parse_listener(rep, data.get("listeners"))
    before = len(rep.errors)
    providers = parse_providers(rep, data)
    aliases = parse_aliases(rep, data.get("model_aliases"), providers,
                            check_refs=len(rep.errors) == before)
    state = parse_state(rep, data.get("state_storage"))
    services = parse_services(rep, data.get("services"))
    security_errors: list[str] = []
    security = parse_security(data.get("auth"), data.get("limits"), security_errors,
                              lambda where, name, value: expand(rep, where, name, value))
    for message in security_errors:
        rep.add("", message)
    tracing = parse_tracing(rep, data.get("tracing"))
    cost_sources = parse_cost_sources(rep, data.get("model_metrics_sources"))
    request_log = parse_request_log(rep, data.get("logging"))
    if rep.errors:
        raise ConfigError(rep.path, rep.errors)
    return Config(path=rep.path, version=version, listener=listener, providers=providers,
                  aliases=aliases, state=state, services=services, raw=data,
                  security=security, tracing=tracing, cost_sources=cost_sources,
                  request_log=request_log)


def format_model_table(config: Config) -> str:
    """The table `switchyard check` prints: names → entry, upstream model, endpoint, interface."""
    rows = [("MODEL", "ENTRY", "UPSTREAM MODEL", "ENDPOINT", "INTERFACE")]
    for e in config.providers:
        label = e.public_name + (" (default)" if e.default else "")
        upstream = "(any)" if e.is_wildcard else e.model
        rows.append((label, e.name, upstream, e.endpoint, e.interface))
    for name, alias in config.aliases.items():
        refs = ([alias.target] if alias.target else []) + [f"{t.model}×{t.weight}"
                                                          for t in alias.targets]
        desc = ", ".join(refs) + (" → " + " → ".join(alias.fallbacks) if alias.fallbacks else "")
        rows.append((f"{name} (alias)", desc, "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
