"""The hand-labelled routing evaluation sets (*.yaml here): each case as the router sees it,
decoded by the edge's own Chat Completions decoder and reduced by the edge's own
`route_messages` (so tool turns and system prompts are dropped as in production)."""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import yaml

from switchyard.common.config.model import RoutePreference
from switchyard.common.proto import router_pb2
from switchyard.edge.formats.openai_chat.request import decode_request
from switchyard.edge.preferences import route_messages

HERE = pathlib.Path(__file__).resolve().parent
SETS = ("plano_routes", "assistant_routes")


@dataclass(frozen=True)
class Case:
    label: str
    messages: list[router_pb2.RouteMessage]
    text: str                     # a short name for reports


@dataclass(frozen=True)
class EvalSet:
    name: str
    routes: list[RoutePreference]
    cases: list[Case]


def load(name: str) -> EvalSet:
    doc = yaml.safe_load((HERE / f"{name}.yaml").read_text())
    routes = [RoutePreference(name=r["name"], description=r["description"], models=("m",))
              for r in doc["routes"]]
    cases = []
    for c in doc["cases"]:
        messages = c.get("messages") or [{"role": "user", "content": c["prompt"]}]
        req = decode_request({"model": "m", "messages": messages})
        last_user = [m for m in messages if m["role"] == "user"][-1]["content"]
        cases.append(Case(c["route"], route_messages(req), last_user[:60]))
    return EvalSet(name, routes, cases)
