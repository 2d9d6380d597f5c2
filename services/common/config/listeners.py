"""`listeners`: the model listener Switchyard serves, and Plano's other listeners, named.

Plano's list form (`- {type: model, name: ..., port: ...}`) or its older map form
(`egress_traffic` / `ingress_traffic`). A typo in a key or a type is an error, never a
silent move to the default 127.0.0.1:12000.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import replace
from typing import Any

from switchyard.common.config import plano_scope
from switchyard.common.config.fields import Report, check_keys, duration, expand
from switchyard.common.config.model import Listener
from switchyard.common.ports import split_host_port

TYPES = ("model", "prompt", "agent")
# Plano's listener keys; filter_chain is the spelling of Plano's docs (config/filters.py).
LISTENER_KEYS = {"name", "port", "address", "timeout", "router", "max_retries", "type",
                 "agents", "input_filters", "output_filters", "filter_chain"}
AGENT_ONLY = ("router", "agents")
EGRESS_KEYS = {"address", "port", "message_format", "timeout"}
EGRESS_EXTENSIONS = {"max_retries"}
LEGACY_KEYS = {"egress_traffic"}
EXAMPLE = "[{type: model, name: model_listener, address: 127.0.0.1, port: 12000}]"
# Plano's defaults for the listeners it does not need a line for.
PROMPT_DEFAULT = ("0.0.0.0", 10000)


def parse_listeners(rep: Report, raw: Any) -> tuple[Listener, tuple[Listener, ...]]:
    """(the model listener, the prompt/agent listeners named but not served)."""
    if raw is None:
        return Listener(), ()
    if isinstance(raw, dict):
        return _legacy(rep, raw), _legacy_unserved(rep, raw)
    if not isinstance(raw, list):
        rep.add("listeners", f"must be a list of listeners like {EXAMPLE}")
        return Listener(), ()
    if not raw:
        rep.add("listeners", f"is empty; add the model listener: listeners: {EXAMPLE}, or leave "
                             "listeners out for the default 127.0.0.1:12000")
        return Listener(), ()
    chosen: Listener | None = None
    unserved: list[Listener] = []
    for i, item in enumerate(raw):
        where = f"listeners[{i}]"
        if not isinstance(item, dict):
            rep.add(where, "must be a mapping like {type: model, port: 12000}")
            continue
        if isinstance(item.get("name"), str):
            where = f"{where} ({item['name']})"
        check_keys(rep, where, item, LISTENER_KEYS, set(), "listener key")
        kind = _type(rep, where, item.get("type"))
        if kind is None:
            continue
        if kind != "model":
            unserved.append(_unserved(rep, where, item, kind))
            continue
        for key in AGENT_ONLY:
            if key in item:
                rep.add(where, f"{key} applies to listeners of type agent only; remove it "
                               "from the model listener")
        if chosen is not None:
            rep.add(where, "only one listener of type model is supported; remove the others")
            continue
        chosen = _fields(rep, where, item, "model_listener")
    if chosen is None and unserved:
        d = Listener()
        rep.note("default", "listeners", f"no listener of type model; the model listener is "
                                         f"the default {d.address}:{d.port} (add {EXAMPLE} to "
                                         "choose)")
    return chosen or Listener(), tuple(unserved)


def _type(rep: Report, where: str, kind: Any) -> str | None:
    if kind in TYPES:
        return str(kind)
    if kind is None:
        rep.add(where, "type is missing; add type: model (the listener Switchyard serves; "
                       "prompt and agent are Plano listeners it names but does not serve)")
        return None
    close = difflib.get_close_matches(str(kind), TYPES, n=1)
    hint = f"did you mean '{close[0]}'?" if close else "use type: model"
    rep.add(where, f"type {kind!r} is not a listener type (model, prompt, agent); {hint}")
    return None


def _unserved(rep: Report, where: str, item: dict[str, Any], kind: str) -> Listener:
    """A prompt or agent listener: named by plano_scope, kept for `check`'s table."""
    port = item.get("port")
    address = item.get("address", "0.0.0.0")
    plano_scope.note(rep, f"listeners.{kind}", where, item, address=address,
                     port=port if port is not None else "its port")
    return Listener(name=str(item.get("name", kind)), address=str(address),
                    port=port if isinstance(port, int) and not isinstance(port, bool) else 0,
                    type=kind)


def _legacy(rep: Report, raw: dict[str, Any]) -> Listener:
    """The older map form: egress_traffic is the model listener."""
    if not raw:
        rep.add("listeners", f"is empty; add the model listener: listeners: {EXAMPLE}, or leave "
                             "listeners out for the default 127.0.0.1:12000")
        return Listener()
    check_keys(rep, "listeners", raw, LEGACY_KEYS, {"ingress_traffic"}, "listener")
    egress = raw.get("egress_traffic")
    if egress is None:
        if raw.get("ingress_traffic"):
            d = Listener()
            rep.note("default", "listeners", f"no egress_traffic; the model listener is the "
                                             f"default {d.address}:{d.port}")
        return Listener()
    where = "listeners.egress_traffic"
    if isinstance(egress, dict):
        check_keys(rep, where, egress, EGRESS_KEYS | EGRESS_EXTENSIONS, set())
        if egress.get("message_format", "openai") != "openai":
            rep.add(where, f"message_format must be openai (the only one Plano defines), got "
                           f"{egress['message_format']!r}")
    return _fields(rep, where, egress, "egress_traffic")


def _legacy_unserved(rep: Report, raw: dict[str, Any]) -> tuple[Listener, ...]:
    ingress = raw.get("ingress_traffic")
    if not ingress:   # Plano serves no prompt listener for an empty one either
        return ()
    where = "listeners.ingress_traffic"
    if not isinstance(ingress, dict):
        rep.add(where, "must be a mapping with address and port")
        return ()
    check_keys(rep, where, ingress, EGRESS_KEYS, set())
    address = ingress.get("address", PROMPT_DEFAULT[0])
    port = ingress.get("port", PROMPT_DEFAULT[1])
    plano_scope.note(rep, "listeners.ingress_traffic", where, ingress, address=address,
                     port=port)
    return (Listener(name="ingress_traffic", address=str(address),
                     port=port if isinstance(port, int) else 0, type="prompt"),)


def _fields(rep: Report, where: str, raw: Any, default_name: str) -> Listener:
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


LISTEN_ENV = "SWITCHYARD_EDGE_LISTEN"


def listen_override(rep: Report, listener: Listener) -> Listener:
    """`SWITCHYARD_EDGE_LISTEN=host:port` moves the model listener: several edges on one
    machine can read one file (as the gRPC services have SWITCHYARD_<SERVICE>_LISTEN)."""
    raw = os.environ.get(LISTEN_ENV)
    if not raw:
        return listener
    found = split_host_port(raw.strip())
    if found is None or not found[0] or not 0 < found[1] < 65536:
        rep.add(f"environment variable {LISTEN_ENV}", f"{raw!r} must be host:port, e.g. "
                                                      "127.0.0.1:12010")
        return listener
    return replace(listener, address=found[0], port=found[1])
