"""`model_providers` entries: names, interfaces, keys, endpoints, and name matching."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from switchyard.common.config.bedrock import BEDROCK_KEYS, parse_bedrock, reject_bedrock_keys
from switchyard.common.config.fields import (
    HOST_PATTERN,
    Report,
    boolean,
    check_keys,
    expand,
    expand_env,
    positive_int,
)
from switchyard.common.config.model import ProviderEntry
from switchyard.common.config.observability import parse_pricing
from switchyard.common.config.providers_table import (
    AZURE_DEFAULT_API_VERSION,
    BASE_URL_REASONS,
    INTERFACE_AUTH,
    INTERFACES,
    KNOWN_PROVIDERS,
    MODEL_FAMILIES,
    OPERATION_PATH,
    REFUSED_PROVIDERS,
    responses_only,
)

PROVIDER_KEYS = {"model", "access_key", "base_url", "default", "name", "provider_interface",
                 "headers", "passthrough_auth", "api_version", "default_max_tokens", "pricing",
                 "http_host", "group"}

PROVIDER_KEYS |= BEDROCK_KEYS   # amazon_bedrock/ entries only (config/bedrock.py)

# Plano's, read elsewhere: inline routing_preferences are config/routing.py's.
PLANO_PROVIDER_KEYS = {"routing_preferences"}


def parse_providers(rep: Report, data: Mapping[str, Any]) -> tuple[ProviderEntry, ...]:
    if "model_providers" in data and "llm_providers" in data:
        rep.add("llm_providers", "both model_providers and llm_providers are given; keep one "
                                 "(llm_providers is the older name)")
    key = "model_providers" if "model_providers" in data else "llm_providers"
    raw = data.get(key)
    if isinstance(raw, dict) and raw:
        first = next(iter(raw))
        rep.add(key, f"must be a list of entries, not a map (found '{first}: ...'); write "
                     f"each entry as a list item: {key}: [{{model: openai/gpt-4o-mini, "
                     "access_key: $OPENAI_API_KEY}, ...]")
        return ()
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
    _check_duplicates(rep, key, raw, entries)
    return tuple(entries)


def _check_duplicates(rep: Report, key: str, raw: list[Any], entries: list[ProviderEntry]
                      ) -> None:
    """Plano refuses two entries for one model; ours may share one when every such entry
    names the same `group` (extension): then they form an equal-weight load-balancing group
    (`provider/model`, wildcards too, or one bare model id under two providers)."""
    groups = {e.index: raw[e.index].get("group") for e in entries}
    first: dict[tuple[str, str], ProviderEntry] = {}
    for e in entries:
        # A bare model id answers for every concrete entry holding it (match_providers).
        names = [("name", e.public_name)] if e.is_wildcard else \
            [("name", e.public_name), ("id", e.model)]
        for name in names:
            other = first.setdefault(name, e)
            if other is e:
                continue
            group, other_group = groups[e.index], groups[other.index]
            if group is not None and group == other_group:
                continue
            same = "" if name[0] == "name" else f" (model id '{name[1]}')"
            rep.add(f"{key}[{e.index}] ({e.public_name})",
                    f"serves the same model as {key}[{other.index}] ({other.public_name})"
                    f"{same}; Plano refuses duplicate models: remove one, or give each of them "
                    "the same `group: <name>` (extension) to load-balance between them")
            break


def _parse_provider(rep: Report, key: str, i: int, item: Any, taken: dict[str, str]
                    ) -> ProviderEntry | None:
    where = f"{key}[{i}]"
    if not isinstance(item, dict):
        rep.add(where, "must be a mapping like {model: openai/gpt-4o, access_key: $KEY}")
        return None
    model_str = item.get("model")
    if isinstance(model_str, str) and model_str:
        where = f"{where} ({model_str})"
    n_before = len(rep.errors)
    group = item.get("group")
    if group is not None and (not isinstance(group, str) or not group):
        rep.add(where, f"group must be a name shared by the entries it load-balances, got "
                       f"{group!r}")
    check_keys(rep, where, item, PROVIDER_KEYS | {"endpoint"}, PLANO_PROVIDER_KEYS)
    if "endpoint" in item:   # the older arch field; silently ignoring it would misroute
        rep.add(where, "endpoint is not supported; use base_url: http://host:port instead")
    iface_raw = item.get("provider_interface")
    if isinstance(iface_raw, str) and iface_raw in REFUSED_PROVIDERS:
        rep.add(where, REFUSED_PROVIDERS[iface_raw])
        return None
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
    if provider in REFUSED_PROVIDERS:
        rep.add(where, REFUSED_PROVIDERS[provider])
        return None
    kind = KNOWN_PROVIDERS.get(provider)
    if provider in BASE_URL_REASONS and item.get("base_url") is None:
        rep.add(where, BASE_URL_REASONS[provider])
        return None
    if kind is None and iface_raw is None:
        rep.add(where, f"unknown provider {provider!r}; if it speaks the OpenAI API add "
                       "`provider_interface: openai` and `base_url: http://host:port` "
                       f"(known providers: {', '.join(sorted(KNOWN_PROVIDERS))})")
        return None
    azure = provider == "azure_openai" or iface_raw == "azure_openai"
    interface = INTERFACES[iface_raw] if iface_raw else kind.interface  # type: ignore[union-attr]
    if iface_raw is None and responses_only(provider, model):
        interface = "openai_responses"   # the model is not served on chat completions
    if azure and interface == "openai_responses":
        rep.add(where, "provider_interface openai_responses is not supported for Azure OpenAI "
                       "entries; use an openai/ entry")
    if interface != "bedrock":
        reject_bedrock_keys(rep, where, item)

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

    passthrough = boolean(rep, where, "passthrough_auth", item.get("passthrough_auth"))
    default = boolean(rep, where, "default", item.get("default"))
    if default and model == "*":
        rep.add(where, "default: true needs a concrete model, not a wildcard; name one, e.g. "
                       f"{provider}/<model>")
    access_key = _access_key(rep, where, item, kind, passthrough, "base_url" in item)
    base_url = expand(rep, where, "base_url", item.get("base_url"))
    bedrock = None
    if interface == "bedrock":
        bedrock = parse_bedrock(rep, where, item, access_key, base_url, passthrough)
        if bedrock is None:
            return None
        access_key, base_url = bedrock.access_key, bedrock.base_url
    api_version = item.get("api_version")
    if api_version is not None and not isinstance(api_version, str):
        api_version = str(api_version)
    endpoint = _endpoint(rep, where, base_url, kind, interface, azure,
                         api_version or AZURE_DEFAULT_API_VERSION)
    headers = _headers(rep, where, item.get("headers"))
    _http_host(rep, where, item.get("http_host"), headers)
    max_tokens = positive_int(rep, where, "default_max_tokens",
                              item.get("default_max_tokens"), None)
    pricing = parse_pricing(rep, where, item.get("pricing"))
    if access_key is None and not passthrough:
        auth = "none"
    elif azure:
        auth = "api-key"
    elif kind is not None and not iface_raw:
        auth = kind.auth if kind.auth != "none" else "bearer"
    else:
        auth = INTERFACE_AUTH.get(interface, "bearer")
    if bedrock is not None:
        auth = bedrock.auth   # sigv4 | bearer (config/bedrock.py)
    if len(rep.errors) != n_before:
        return None
    return ProviderEntry(name=name, provider=provider, model=model, interface=interface,
                         endpoint=endpoint, auth=auth, access_key=access_key, default=default,
                         headers=headers, passthrough_auth=passthrough,
                         api_version=(api_version or AZURE_DEFAULT_API_VERSION) if azure
                         else api_version, default_max_tokens=max_tokens, index=i,
                         pricing=pricing, aws=bedrock.aws if bedrock else None)


def _access_key(rep: Report, where: str, item: Mapping[str, Any], kind: Any, passthrough: bool,
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
    if not rep.reads("model_providers"):
        return None   # read for another service: provider keys stay with providers
    value, missing = expand_env(raw, rep.env)
    if missing:
        if needs_key:
            for var in missing:
                rep.add(where, f"access_key uses ${var}, which is not set in the environment; "
                               f"export {var}=... before starting")
        return value or None
    return value or None


def _endpoint(rep: Report, where: str, base_url: Any, kind: Any, interface: str, azure: bool,
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
    if parts.scheme not in ("http", "https") or not HOST_PATTERN.match(parts.hostname or "") \
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
    if kind is None:
        default_prefix = "/v1"
    elif interface == "openai" and kind.interface != "openai" and kind.openai_path_prefix:
        default_prefix = kind.openai_path_prefix   # e.g. Gemini's OpenAI-compatible endpoint
    else:
        default_prefix = kind.path_prefix
    prefix = path or default_prefix
    return f"{origin}{prefix}{operation}"


def _headers(rep: Report, where: str, raw: Any) -> dict[str, str]:
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
        # Values may be credentials: only the providers service expands them.
        out[str(k)] = expand(rep, where, f"headers.{k}", str(v)) \
            if rep.reads("model_providers") else ""
    return out


def _http_host(rep: Report, where: str, raw: Any, headers: dict[str, str]) -> None:
    """Plano's `http_host`: the Host header sent upstream (TLS still names base_url's host)."""
    if raw is None:
        return
    host = expand(rep, where, "http_host", raw)
    if not isinstance(host, str) or not HOST_PATTERN.match(host):
        rep.add(where, f"http_host must be a host name like api.example.com[:port], got "
                       f"{raw!r}")
        return
    if any(k.lower() == "host" for k in headers):
        rep.add(where, "http_host and headers.Host both set the Host header; keep one")
        return
    headers["Host"] = host


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
