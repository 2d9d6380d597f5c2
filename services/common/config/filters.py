"""Plano's `filters` and the model listener's filter keys (`filter_chain`, `input_filters`,
`output_filters`) → `FilterChains`: which services see each request and reply, in order."""
from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import urlsplit

from switchyard.common.config.fields import Report, boolean, check_keys, duration, expand
from switchyard.common.config.model import Filter, FilterChains

FILTER_KEYS = {"id", "url", "type", "transport", "tool"}     # Plano's schema
FILTER_EXTENSIONS = {"timeout", "fail_open"}                 # ours
TYPES = ("mcp", "http")
TRANSPORTS = ("streamable-http",)
DEFAULT_TIMEOUT_S = 30.0
# The model listener's keys naming filters. `filter_chain` is the spelling of Plano's docs,
# `input_filters` its schema's: both are input chains, run in this order.
INPUT_KEYS = ("filter_chain", "input_filters")
OUTPUT_KEY = "output_filters"
EXAMPLE = "{id: content_guard, url: http://127.0.0.1:10500, type: http}"


def parse_filters(rep: Report, data: dict[str, Any]) -> FilterChains:
    """The top-level `filters` and the chains the model listener names from them."""
    defined, named = _parse_defined(rep, data.get("filters"))
    listener = _model_listener(data.get("listeners"))
    if listener is None:
        return FilterChains()
    where, item = listener
    inputs: list[Filter] = []
    for key in INPUT_KEYS:
        inputs += _chain(rep, where, key, item.get(key), defined, named, inputs)
    outputs = _chain(rep, where, OUTPUT_KEY, item.get(OUTPUT_KEY), defined, named, [])
    return FilterChains(input=tuple(inputs), output=tuple(outputs))


def _parse_defined(rep: Report, raw: Any) -> tuple[dict[str, Filter], set[str]]:
    """The valid filters by id, and every id written (a broken entry is reported once, not
    again where the listener names it)."""
    found: dict[str, Filter] = {}
    named: set[str] = set()
    if raw is None:
        return found, named
    if not isinstance(raw, list):
        rep.add("filters", f"must be a list of filters like [{EXAMPLE}]")
        return found, named
    for i, item in enumerate(raw):
        where = f"filters[{i}]"
        if not isinstance(item, dict):
            rep.add(where, f"must be a mapping like {EXAMPLE}")
            continue
        check_keys(rep, where, item, FILTER_KEYS | FILTER_EXTENSIONS, set(), "filter key")
        if isinstance(item.get("id"), str):
            named.add(item["id"])
        f = _parse_one(rep, where, item)
        if f is None:
            continue
        if f.id in found:
            rep.add(where, f"id '{f.id}' is defined twice; give each filter its own id")
            continue
        found[f.id] = f
    return found, named


def _parse_one(rep: Report, where: str, item: dict[str, Any]) -> Filter | None:
    fid = item.get("id")
    if not isinstance(fid, str) or not fid.strip():
        rep.add(where, f"needs an id (a name the listener refers to), e.g. {EXAMPLE}")
        return None
    where = f"{where} ({fid})"
    ok = True
    kind = item.get("type", "mcp")
    if kind not in TYPES:
        rep.add(where, f"type must be http (a plain HTTP filter) or mcp (an MCP tool; the "
                       f"default), got {kind!r}")
        ok = False
    transport = item.get("transport")
    if transport is not None and transport not in TRANSPORTS:
        rep.add(where, f"transport must be streamable-http (the only one Plano defines), "
                       f"got {transport!r}")
        ok = False
    tool = item.get("tool", "")
    if not isinstance(tool, str):
        rep.add(where, f"tool must be the MCP tool's name, got {tool!r}")
        ok = False
    url = _url(rep, where, item.get("url"))
    timeout = duration(rep, where, "timeout", item.get("timeout"), DEFAULT_TIMEOUT_S)
    fail_open = boolean(rep, where, "fail_open", item.get("fail_open"))
    if not ok or url is None:
        return None
    return Filter(id=fid, url=url, type=kind, tool=tool if isinstance(tool, str) else "",
                  timeout_s=timeout, fail_open=fail_open)


def _url(rep: Report, where: str, raw: Any) -> str | None:
    """The expanded URL; messages show it as written (an expanded variable may be a secret)."""
    if raw is None:
        rep.add(where, "needs a url, e.g. url: http://127.0.0.1:10500")
        return None
    value = expand(rep, where, "url", raw)
    if not isinstance(value, str):
        rep.add(where, f"url must be a string like http://127.0.0.1:10500, got {raw!r}")
        return None
    try:
        parts = urlsplit(value)
        parts.port   # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or parts.fragment:
        rep.add(where, f"url must be http://host[:port][/path] or https://..., got {raw!r}")
        return None
    return value


def _model_listener(raw: Any) -> tuple[str, dict[str, Any]] | None:
    """The listener item the gateway serves (sections.parse_listener's choice: the first of
    type model) and its place in the file; None for the older map form, which has no
    filter keys."""
    if not isinstance(raw, list):
        return None
    for i, item in enumerate(raw):
        if isinstance(item, dict) and item.get("type", "model") == "model":
            return f"listeners[{i}]", item
    return None


def _chain(rep: Report, where: str, key: str, raw: Any, defined: dict[str, Filter],
           named: set[str], before: list[Filter]) -> list[Filter]:
    """The filters a listener key names, in order; `before` are the chain's earlier ones."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        rep.add(where, f"{key} must be a list of filter ids, e.g. {key}: [content_guard]")
        return []
    out: list[Filter] = []
    seen = {f.id for f in before}
    for fid in raw:
        f = defined.get(fid)
        if f is None:
            if fid in named:
                continue   # its entry's error is already reported
            rep.add(where, f"{key} names filter '{fid}', which filters does not define; "
                           f"{_missing_hint(fid, named)}")
            continue
        if fid in seen:
            both = (" (filter_chain and input_filters both name it)"
                    if any(b.id == fid for b in before) else "")
            rep.add(where, f"{key} names filter '{fid}' twice{both}; name it once")
            continue
        seen.add(fid)
        out.append(f)
    return out


def _missing_hint(fid: str, named: set[str]) -> str:
    close = difflib.get_close_matches(fid, sorted(named), n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    if named:
        return "defined: " + ", ".join(sorted(named))
    return f"add it under the top-level filters: [{EXAMPLE}]"
