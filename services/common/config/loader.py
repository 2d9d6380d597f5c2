"""Reading `plano_config.yaml` into a `Config`: env expansion, validation, every error at once."""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import urlsplit

import yaml

from services.common.config.model import (Alias, Config, Listener, ProviderEntry,
                                          ServiceAddresses, StateStorage, WeightedTarget)
from services.common.config.security import parse_security
from services.common.config.providers_table import (AZURE_DEFAULT_API_VERSION, INTERFACES,
                                                    KNOWN_PROVIDERS, MODEL_FAMILIES,
                                                    OPERATION_PATH)

SERVICE_ENV = {"router": "SWITCHYARD_ROUTER_ADDR", "providers": "SWITCHYARD_PROVIDERS_ADDR",
               "state": "SWITCHYARD_STATE_ADDR"}

# Keys we read; Plano keys we accept and ignore (they configure features we do not have).
TOP_KEYS = {"version", "listeners", "model_providers", "llm_providers", "model_aliases",
            "state_storage", "services", "auth", "limits"}
PLANO_TOP_KEYS = {"agents", "filters", "endpoints", "overrides", "system_prompt", "prompt_guards",
                  "prompt_targets", "tracing", "mode", "ratelimits", "routing_preferences",
                  "error_target", "llm_routing_model"}
PROVIDER_KEYS = {"model", "access_key", "base_url", "default", "name", "provider_interface",
                 "headers", "passthrough_auth", "api_version", "default_max_tokens"}
PLANO_PROVIDER_KEYS = {"http_host", "routing_preferences", "cluster_name", "usage", "stream",
                       "base_url_path_prefix", "rate_limits"}
ALIAS_KEYS = {"target", "fallbacks", "targets"}
STATE_KEYS = {"type", "connection_string", "ttl_seconds", "max_entries", "max_depth"}

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_HOST = re.compile(r"^[A-Za-z0-9._\-:\[\]]+$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigError(Exception):
    """Every problem found in one config file; `str()` gives one line per problem."""

    def __init__(self, path: str, errors: list[str]) -> None:
        self.path = str(path)
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(self.errors)


@dataclass
class _Report:
    """Collects errors as `file: entry: problem` lines."""
    path: str
    errors: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.errors.append(f"{self.path}: {where}: {message}" if where else
                           f"{self.path}: {message}")


# ---- public API --------------------------------------------------------------------------

def load_config(path: str | os.PathLike) -> Config:
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


def parse_config(data: dict, path: str = "<string>") -> Config:
    """Validate an already-parsed config mapping; raises ConfigError listing every problem."""
    rep = _Report(str(path))
    if not isinstance(data, dict):
        rep.add("", "the file must be a YAML mapping with model_providers, listeners, ...")
        raise ConfigError(rep.path, rep.errors)
    _check_keys(rep, "", data, TOP_KEYS, PLANO_TOP_KEYS, "top-level key")
    version = str(data.get("version", "v0.3.0"))
    listener = _parse_listener(rep, data.get("listeners"))
    before = len(rep.errors)
    providers = _parse_providers(rep, data)
    aliases = _parse_aliases(rep, data.get("model_aliases"), providers,
                             check_refs=len(rep.errors) == before)
    state = _parse_state(rep, data.get("state_storage"))
    services = _parse_services(rep, data.get("services"))
    security_errors: list[str] = []
    security = parse_security(data.get("auth"), data.get("limits"), security_errors,
                              lambda where, name, value: _expand(rep, where, name, value))
    for message in security_errors:
        rep.add("", message)
    if rep.errors:
        raise ConfigError(rep.path, rep.errors)
    return Config(path=rep.path, version=version, listener=listener, providers=providers,
                  aliases=aliases, state=state, services=services, raw=data,
                  security=security)


def parse_duration(value: Any) -> float | None:
    """Seconds from `30s`, `500ms`, `2m`, `1h` or a plain number; None when not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    return None


def expand_env(text: str, environ: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """Expand `$VAR`, `${VAR}`, `${VAR:-default}` (`$$` is a literal `$`); also the unset names."""
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(3)
        if name in env:
            return env[name]
        if m.group(2) is not None:
            return m.group(2)
        missing.append(name)
        return ""
    return _VAR.sub(sub, text), missing


def match_providers(providers: Iterable[ProviderEntry], name: str
                    ) -> list[tuple[ProviderEntry, str]]:
    """Entries (with the upstream model) serving a model name, aliases aside.

    Order of precedence: `provider/model` of concrete entries, an entry's own name, a bare
    model name, `provider/anything` against `provider/*`, a bare name by model family.
    """
    entries = list(providers)
    concrete = [e for e in entries if not e.is_wildcard]
    found = [(e, e.model) for e in concrete if e.public_name == name]
    if found:
        return found
    found = [(e, e.model) for e in concrete if e.name == name]
    if found:
        return found
    found = [(e, e.model) for e in concrete if e.model == name]
    if found:
        return found
    if "/" in name:
        prefix, _, model = name.partition("/")
        if model:
            found = [(e, model) for e in entries if e.is_wildcard and e.provider == prefix]
            if found:
                return found
    return [(e, name) for e in entries if e.is_wildcard and name
            and name.startswith(MODEL_FAMILIES.get(e.provider, ()) or ("\0",))]


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


# ---- sections ----------------------------------------------------------------------------

def _check_keys(rep: _Report, where: str, raw: dict, known: set[str], ignored: set[str],
                what: str = "key") -> None:
    """Report keys that are neither ours nor Plano's, suggesting the closest known one."""
    for key in raw:
        if key in known or key in ignored:
            continue
        close = difflib.get_close_matches(str(key), sorted(known), n=1)
        hint = f"did you mean '{close[0]}'?" if close else \
            "allowed: " + ", ".join(sorted(known))
        rep.add(where, f"unknown {what} '{key}'; {hint}")


def _expand(rep: _Report, where: str, field_name: str, value: Any) -> Any:
    """Expand env vars in a string (or strings nested in lists/maps); unset ones are errors."""
    if isinstance(value, str):
        out, missing = expand_env(value)
        for var in missing:
            rep.add(where, f"{field_name} uses ${var}, which is not set in the environment; "
                           f"export {var} or change {field_name}")
        return out
    if isinstance(value, list):
        return [_expand(rep, where, field_name, v) for v in value]
    if isinstance(value, dict):
        return {k: _expand(rep, where, f"{field_name}.{k}", v) for k, v in value.items()}
    return value


def _positive_int(rep: _Report, where: str, key: str, value: Any, default: int | None
                  ) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        rep.add(where, f"{key} must be a positive whole number, got {value!r}")
        return default
    return value


def _duration(rep: _Report, where: str, key: str, value: Any, default: float) -> float:
    if value is None:
        return default
    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        rep.add(where, f"{key} must be a positive duration like 30s, 500ms, 2m or a number of "
                       f"seconds, got {value!r}")
        return default
    return seconds


def _bool(rep: _Report, where: str, key: str, value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        rep.add(where, f"{key} must be true or false, got {value!r}")
        return False
    return value


def _parse_listener(rep: _Report, raw: Any) -> Listener:
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


def _listener_fields(rep: _Report, where: str, raw: Any, default_name: str) -> Listener:
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping with address, port and timeout")
        return Listener()
    d = Listener()
    address = _expand(rep, where, "address", raw.get("address", d.address))
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
                    timeout_s=_duration(rep, where, "timeout", raw.get("timeout"), d.timeout_s),
                    max_retries=retries)


def _parse_providers(rep: _Report, data: dict) -> tuple[ProviderEntry, ...]:
    if "model_providers" in data and "llm_providers" in data:
        rep.add("llm_providers", "both model_providers and llm_providers are given; keep one "
                                 "(llm_providers is the older name)")
    key = "model_providers" if "model_providers" in data else "llm_providers"
    raw = data.get(key)
    if not isinstance(raw, list) or not raw:
        rep.add(key, "no model providers configured; add model_providers: [{model: "
                     "openai/gpt-4o-mini, access_key: $OPENAI_API_KEY}]")
        return ()
    entries: list[ProviderEntry] = []
    taken: dict[str, str] = {}
    for i, item in enumerate(raw):
        entry = _parse_provider(rep, key, i, item, taken)
        if entry is not None:
            entries.append(entry)
    defaults = [e for e in entries if e.default]
    if len(defaults) > 1:
        named = ", ".join(f"{key}[{e.index}] ({e.name})" for e in defaults)
        rep.add(key, f"more than one entry has default: true ({named}); keep it on one")
    return tuple(entries)


def _parse_provider(rep: _Report, key: str, i: int, item: Any, taken: dict[str, str]
                    ) -> ProviderEntry | None:
    where = f"{key}[{i}]"
    if not isinstance(item, dict):
        rep.add(where, "must be a mapping like {model: openai/gpt-4o, access_key: $KEY}")
        return None
    model_str = item.get("model")
    if isinstance(model_str, str) and model_str:
        where = f"{where} ({model_str})"
    n_before = len(rep.errors)
    _check_keys(rep, where, item, PROVIDER_KEYS | {"endpoint"}, PLANO_PROVIDER_KEYS)
    if "endpoint" in item:   # the older arch field; silently ignoring it would misroute
        rep.add(where, "endpoint is not supported; use base_url: http://host:port instead")
    iface_raw = item.get("provider_interface")
    if iface_raw is not None and iface_raw not in INTERFACES:
        rep.add(where, f"provider_interface {iface_raw!r} is not one of "
                       f"{', '.join(sorted(INTERFACES))}")
        iface_raw = None
    if not isinstance(model_str, str) or not model_str:
        rep.add(where, "model is missing; write it as provider/model, e.g. openai/gpt-4o")
        return None
    provider, sep, model = model_str.partition("/")
    if not sep:
        if iface_raw is None:
            rep.add(where, f"model {model_str!r} needs a provider prefix, e.g. "
                           f"openai/{model_str}")
            return None
        provider, model = iface_raw, model_str   # older arch form: provider_interface + model
    if not provider or not model:
        rep.add(where, f"model {model_str!r} must be provider/model, e.g. openai/gpt-4o")
        return None
    if "*" in model and model != "*":
        rep.add(where, f"only whole-provider wildcards are supported: write {provider}/*")
        return None
    kind = KNOWN_PROVIDERS.get(provider)
    if kind is None and iface_raw is None:
        rep.add(where, f"unknown provider {provider!r}; if it speaks the OpenAI API add "
                       "`provider_interface: openai` and `base_url: http://host:port` "
                       f"(known providers: {', '.join(sorted(KNOWN_PROVIDERS))})")
        return None
    azure = provider == "azure_openai" or iface_raw == "azure_openai"
    interface = INTERFACES[iface_raw] if iface_raw else kind.interface  # type: ignore[union-attr]

    name = item.get("name")
    if name is not None:
        if not isinstance(name, str) or not name:
            rep.add(where, f"name must be a non-empty string, got {name!r}")
            name = None
        elif name in taken:
            rep.add(where, f"name {name!r} is already used by {taken[name]}; names must be "
                           "unique")
    if name is None:
        base = name = f"{provider}/{model}"
        n = 2
        while name in taken:
            name, n = f"{base}#{n}", n + 1
    taken.setdefault(name, where)

    passthrough = _bool(rep, where, "passthrough_auth", item.get("passthrough_auth"))
    default = _bool(rep, where, "default", item.get("default"))
    if default and model == "*":
        rep.add(where, "default: true needs a concrete model, not a wildcard; name one, e.g. "
                       f"{provider}/<model>")
    access_key = _access_key(rep, where, item, kind, passthrough, "base_url" in item)
    base_url = _expand(rep, where, "base_url", item.get("base_url"))
    api_version = item.get("api_version")
    if api_version is not None and not isinstance(api_version, str):
        api_version = str(api_version)
    endpoint = _endpoint(rep, where, base_url, kind, interface, azure,
                         api_version or AZURE_DEFAULT_API_VERSION)
    headers = _headers(rep, where, item.get("headers"))
    max_tokens = _positive_int(rep, where, "default_max_tokens",
                               item.get("default_max_tokens"), None)
    if access_key is None and not passthrough:
        auth = "none"
    elif azure:
        auth = "api-key"
    elif kind is not None and not iface_raw:
        auth = kind.auth if kind.auth != "none" else "bearer"
    else:
        auth = "x-api-key" if interface == "anthropic" else "bearer"
    if len(rep.errors) != n_before:
        return None
    return ProviderEntry(name=name, provider=provider, model=model, interface=interface,
                         endpoint=endpoint, auth=auth, access_key=access_key, default=default,
                         headers=headers, passthrough_auth=passthrough,
                         api_version=(api_version or AZURE_DEFAULT_API_VERSION) if azure
                         else api_version, default_max_tokens=max_tokens, index=i)


def _access_key(rep: _Report, where: str, item: dict, kind: Any, passthrough: bool,
                custom_url: bool) -> str | None:
    """The expanded key; unset variables are errors only where the provider needs a key."""
    raw = item.get("access_key")
    needs_key = bool(kind and kind.needs_key) and not passthrough
    if raw is None:
        if needs_key and not custom_url:
            var = f"{str(item.get('model', '')).partition('/')[0].upper() or 'PROVIDER'}_API_KEY"
            rep.add(where, f"access_key is missing; add access_key: ${var} (or "
                           "passthrough_auth: true)")
        return None
    if not isinstance(raw, str):
        rep.add(where, "access_key must be a string, e.g. $OPENAI_API_KEY")
        return None
    value, missing = expand_env(raw)
    if missing:
        if needs_key:
            for var in missing:
                rep.add(where, f"access_key uses ${var}, which is not set in the environment; "
                               f"export {var}=... before starting")
        return value or None
    return value or None


def _endpoint(rep: _Report, where: str, base_url: Any, kind: Any, interface: str, azure: bool,
              api_version: str) -> str:
    """Full URL of the chat operation (docs/architecture.md, "base_url")."""
    if base_url is None:
        if kind is None or kind.base_url is None:
            hint = "https://<resource>.openai.azure.com" if azure else "http://host:port"
            rep.add(where, f"base_url is required for this provider; add base_url: {hint}")
            return ""
        base_url = kind.base_url
    if not isinstance(base_url, str):
        rep.add(where, "base_url must be a string like http://host:port")
        return ""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not _HOST.match(parts.hostname or "") \
            or parts.query or parts.fragment:
        shown = base_url if not parts.password else base_url.replace(parts.password, "***")
        rep.add(where, f"base_url {shown!r} must look like scheme://host[:port][/path] with "
                       "scheme http or https")
        return ""
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        rep.add(where, "base_url has an invalid port; use scheme://host:port")
        return ""
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    operation = OPERATION_PATH[interface]
    if azure:
        prefix = path or "/openai"
        return f"{origin}{prefix}/deployments/{{model}}{operation}?api-version={api_version}"
    if path.endswith(operation):
        path = path[: -len(operation)]   # the user pasted the full operation URL
    prefix = path or (kind.path_prefix if kind is not None else "/v1")
    return f"{origin}{prefix}{operation}"


def _headers(rep: _Report, where: str, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        rep.add(where, "headers must be a map of header name to value")
        return {}
    out: dict[str, str] = {}
    for k, v in raw.items():
        if v is None or isinstance(v, (dict, list)):
            rep.add(where, f"headers.{k} must be a string value")
            continue
        out[str(k)] = _expand(rep, where, f"headers.{k}", str(v))
    return out


def _parse_aliases(rep: _Report, raw: Any, providers: tuple[ProviderEntry, ...],
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
                close = difflib.get_close_matches(ref, _names(providers, aliases), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else \
                    "; point it at a configured model or alias"
                rep.add(f"model_aliases.{name}", f"{ref!r} does not match any configured model "
                                                 f"or alias{hint}")
    return aliases


def _parse_alias(rep: _Report, where: str, name: str, spec: Any) -> Alias | None:
    if isinstance(spec, str):
        spec = {"target": spec}
    if not isinstance(spec, dict):
        rep.add(where, "must be a mapping like {target: gpt-4o-mini}")
        return None
    n_before = len(rep.errors)
    _check_keys(rep, where, spec, ALIAS_KEYS, set())
    spec = _expand(rep, where, "alias", spec)
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


def _names(providers: Iterable[ProviderEntry], aliases: dict[str, Alias]) -> list[str]:
    out = list(aliases)
    for e in providers:
        out.append(e.public_name)
        if not e.is_wildcard:
            out.append(e.model)
    return out


def _parse_state(rep: _Report, raw: Any) -> StateStorage:
    d = StateStorage()
    if raw is None:
        return d
    where = "state_storage"
    if not isinstance(raw, dict):
        rep.add(where, "must be a mapping like {type: memory}")
        return d
    _check_keys(rep, where, raw, STATE_KEYS, set())
    kind = raw.get("type", "memory")
    if kind not in ("memory", "postgres"):
        rep.add(where, f"type must be memory or postgres, got {kind!r}")
        kind = "memory"
    conn = None
    if "connection_string" in raw:
        conn = _expand(rep, where, "connection_string", raw["connection_string"])
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
        ttl_seconds=_positive_int(rep, where, "ttl_seconds", ttl, d.ttl_seconds) or d.ttl_seconds,
        max_entries=_positive_int(rep, where, "max_entries", raw.get("max_entries"),
                                  d.max_entries) or d.max_entries,
        max_depth=_positive_int(rep, where, "max_depth", raw.get("max_depth"),
                                d.max_depth) or d.max_depth)


def _parse_services(rep: _Report, raw: Any) -> ServiceAddresses:
    """Service addresses from the file, then `SWITCHYARD_<SERVICE>_ADDR` overrides."""
    d = ServiceAddresses()
    values = {s: getattr(d, s) for s in SERVICE_ENV}
    if raw is not None and not isinstance(raw, dict):
        rep.add("services", "must be a map like {router: 127.0.0.1:12001}")
        raw = None
    if raw:
        _check_keys(rep, "services", raw, set(SERVICE_ENV), set(), "service")
        for s in SERVICE_ENV:
            if s in raw:
                values[s] = _expand(rep, f"services.{s}", "address", raw[s])
    for s, var in SERVICE_ENV.items():
        env = os.environ.get(var)
        where = f"services.{s}"
        if env:
            values[s], where = env, f"environment variable {var}"
        if not _is_host_port(values[s]):
            rep.add(where, f"address {values[s]!r} must be host:port, e.g. 127.0.0.1:12001")
            values[s] = getattr(d, s)
    return ServiceAddresses(**values)


def _is_host_port(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith("unix:") or "://" in value:
        return True
    host, sep, port = value.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)
