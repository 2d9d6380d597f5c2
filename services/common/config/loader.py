"""Reading `plano_config.yaml` into a `Config`: env expansion, validation, every error at once."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from switchyard.common.config import plano_scope
from switchyard.common.config.aliases import parse_aliases
from switchyard.common.config.clashes import check_port_clashes
from switchyard.common.config.envfile import config_environment, env_file_for
from switchyard.common.config.fields import (
    SERVICES,
    ConfigError,
    Report,
    check_keys,
    expand,
    expand_env,
    parse_duration,
)
from switchyard.common.config.filters import parse_filters
from switchyard.common.config.listeners import listen_override, parse_listeners
from switchyard.common.config.model import Config, FilterChains
from switchyard.common.config.observability import (
    parse_metrics_sources,
    parse_request_log,
    parse_tracing,
)
from switchyard.common.config.overrides import parse_overrides
from switchyard.common.config.providers import match_providers, parse_providers
from switchyard.common.config.ratelimits import parse_ratelimits
from switchyard.common.config.redis import parse_redis
from switchyard.common.config.routing import check_budget_prices, parse_routing
from switchyard.common.config.sections import parse_services, parse_state
from switchyard.common.config.security import parse_security
from switchyard.common.config.yamlfile import read_yaml

__all__ = ["ConfigError", "expand_env", "format_listener_table", "format_model_table",
           "load_config", "match_providers", "parse_config", "parse_duration",
           "source_digest"]

# Keys we read; Plano keys we accept without parsing them (config/plano_scope.py names each).
TOP_KEYS = {"version", "listeners", "model_providers", "llm_providers", "model_aliases",
            "state_storage", "services", "auth", "limits", "tracing", "model_metrics_sources",
            "logging", "redis", "ratelimits", "filters", "overrides", "routing_preferences",
            "routing"}

PLANO_TOP_KEYS = {"agents", "endpoints", "system_prompt", "prompt_guards",
                  "prompt_targets", "mode", "prompt_caching"}
# Keys of older formats, and where they live now.
MOVED_TOP_KEYS = {"llm_routing_model": "overrides.llm_routing_model"}
# The config versions Plano knows (its schema's enum, release 0.4.36).
VERSIONS = ("v0.1", "v0.1.0", "0.1-beta", "0.2.0", "v0.3.0", "v0.4.0")


def load_config(path: str | os.PathLike[str], for_service: str | None = None) -> Config:
    """Read, expand and validate a config file; raises ConfigError listing every problem.
    `for_service` (router, providers, state, edge): expand only the secrets that service
    uses (fields.SECRET_READERS); None: all of them (`check`, `up`)."""
    p = os.fspath(path)
    if for_service is not None and for_service not in SERVICES:
        raise ValueError(f"unknown service {for_service!r}; one of {', '.join(SERVICES)}")
    try:
        with open(p, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError(p, [f"{p}: file not found; pass --config FILE or set "
                              "SWITCHYARD_CONFIG"]) from None
    except OSError as exc:
        raise ConfigError(p, [f"{p}: cannot read the file: {exc.strerror}"]) from None
    try:
        data, duplicates = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(p, [f"{p}: {at}invalid YAML ({problem}); fix the syntax"]) from None
    environ, env_file, env_problems = config_environment(p)
    try:
        config = parse_config(data if data is not None else {}, p, environ=environ,
                              env_file=env_file, problems=duplicates, service=for_service,
                              digest=source_digest(text, p))
    except ConfigError as exc:
        raise ConfigError(p, env_problems + exc.errors) from None
    if env_problems:
        raise ConfigError(p, env_problems)
    return config


def source_digest(text: str, path: str) -> str:
    """SHA-256 of a config file's text and of the `.env` beside it: the same digest means
    the same config (a reload compares them)."""
    digest = hashlib.sha256(text.encode())
    try:
        with open(env_file_for(path), "rb") as fh:
            digest.update(b"\0" + fh.read())
    except OSError:
        pass
    return digest.hexdigest()


def parse_config(data: Any, path: str = "<string>", *, environ: Mapping[str, str] | None = None,
                 env_file: str | None = None, problems: list[tuple[str, str]] | None = None,
                 service: str | None = None, digest: str = "") -> Config:
    """Validate an already-parsed config mapping; raises ConfigError listing every problem.
    `environ` is what `$VAR`s expand from (default: the environment); `problems` are
    (place, message) pairs found while reading the file; `service`: see load_config."""
    rep = Report(str(path), service=service) if environ is None else \
        Report(str(path), env=environ, service=service)
    for where, message in problems or ():
        rep.add(where, message)
    if not isinstance(data, dict):
        rep.add("", "the file must be a YAML mapping with model_providers, listeners, ...")
        raise ConfigError(rep.path, rep.errors)
    check_keys(rep, "", data, TOP_KEYS, PLANO_TOP_KEYS, "top-level key", MOVED_TOP_KEYS)
    version = _version(rep, data.get("version", "v0.3.0"))
    listener, unserved = parse_listeners(rep, data.get("listeners"))
    listener = listen_override(rep, listener)
    before = len(rep.errors)
    providers = parse_providers(rep, data)
    aliases = parse_aliases(rep, data.get("model_aliases"), providers,
                            check_refs=len(rep.errors) == before)
    state = parse_state(rep, data.get("state_storage"))
    services = parse_services(rep, data.get("services"))
    security_errors: list[str] = []
    # Gateway keys, the Redis URL and the filters are the edge's alone: other services
    # leave them out (and need none of their variables).
    security = parse_security(data.get("auth") if rep.reads("auth") else None,
                              data.get("limits"), security_errors,
                              lambda where, name, value: expand(rep, where, name, value),
                              ratelimits=parse_ratelimits(rep, data.get("ratelimits")),
                              redis=parse_redis(rep, data.get("redis"))
                              if rep.reads("redis") else None)
    for message in security_errors:
        rep.add("", message)
    tracing = parse_tracing(rep, data.get("tracing"))
    cost_sources, latency_sources = parse_metrics_sources(rep,
                                                          data.get("model_metrics_sources"))
    request_log = parse_request_log(rep, data.get("logging"))
    filters = parse_filters(rep, data) if rep.reads("filters") else FilterChains()
    upstream = parse_overrides(rep, data.get("overrides"))
    routing = parse_routing(rep, data, providers, aliases, version)
    check_budget_prices(rep, routing, providers, cost_sources)
    check_port_clashes(rep, listener, services)
    plano_scope.note_sections(rep, data)
    if rep.errors:
        raise ConfigError(rep.path, rep.errors)
    return Config(path=rep.path, version=version, listener=listener, providers=providers,
                  aliases=aliases, state=state, services=services, raw=data,
                  security=security, tracing=tracing, cost_sources=cost_sources,
                  latency_sources=latency_sources,
                  request_log=request_log, filters=filters, notices=tuple(rep.notices),
                  unserved_listeners=unserved, upstream=upstream, env_file=env_file,
                  routing=routing, service=service, source_digest=digest)


def _version(rep: Report, raw: Any) -> str:
    """`version` must be one Plano knows (a bare number is YAML's float: quote it)."""
    if isinstance(raw, str) and raw in VERSIONS:
        return raw
    rep.add("version", f"{raw!r} is not a Plano config version; use one of "
                       f"{', '.join(VERSIONS)} (as a string, e.g. version: v0.4.0)")
    return "v0.3.0"


def format_listener_table(config: Config) -> str:
    """The listeners `switchyard check` prints: the model listener, and those not served."""
    rows = [("LISTENER", "TYPE", "ADDRESS", "TIMEOUT", "MAX RETRIES")]
    lst = config.listener
    rows.append((lst.name, lst.type, f"{lst.address}:{lst.port}", f"{lst.timeout_s:g}s",
                 str(lst.max_retries)))
    for other in config.unserved_listeners:
        port = str(other.port) if other.port else "?"
        rows.append((other.name, f"{other.type} (not served)", f"{other.address}:{port}", "",
                     ""))
    table = _table(rows)
    chains = config.filters
    for phase, chain in (("input", chains.input), ("output", chains.output)):
        if chain:
            table += f"\n  {phase} filters: " + " → ".join(f"{f.id} ({f.type})" for f in chain)
    return table


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
    return _table(rows)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
