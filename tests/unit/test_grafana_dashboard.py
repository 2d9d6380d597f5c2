"""The Grafana dashboard is valid JSON and queries only metrics the gateway exports."""
import json
import pathlib
import re

from prometheus_client import REGISTRY

from switchyard.common import metrics  # noqa: F401 - registers the gateway's metrics

DASHBOARD = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "switchyard.json"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exported_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def test_dashboard_is_json_and_every_queried_metric_exists():
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(dash["panels"]) >= 10 and exprs
    queried = {m for e in exprs for m in re.findall(r"\b((?:switchyard|process)_[a-z0-9_]+)", e)}
    assert {"switchyard_tokens_total", "switchyard_cost_usd_total",
            "switchyard_upstream_attempts_total",
            "switchyard_time_to_first_token_seconds_bucket"} <= queried
    missing = queried - exported_names()
    assert not missing, f"dashboard queries metrics the code does not export: {missing}"
