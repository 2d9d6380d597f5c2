"""docs/architecture.md's Observability section lists every metric the gateway defines and
every span attribute it sets of its own (`switchyard.*`, telemetry/genai.py): adding one
without its line fails here."""
from __future__ import annotations

import pathlib

from prometheus_client import REGISTRY

import switchyard.common.metrics  # noqa: F401 - defines the metrics
import switchyard.edge.limits.metrics  # noqa: F401
from switchyard.common.telemetry import genai

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def observability_section() -> str:
    text = DOC.read_text()
    start = text.index("### Observability")
    return text[start:text.index("\n## ", start)]


def test_every_metric_is_listed():
    doc = observability_section()
    # A counter's family is named without its `_total`, a prefix of what the doc writes.
    names = {f.name for f in REGISTRY.collect() if f.name.startswith("switchyard_")}
    assert len(names) >= 15
    missing = sorted(n for n in names if n not in doc)
    assert not missing, f"metrics not in docs/architecture.md, Observability: {missing}"


def test_every_span_attribute_of_ours_is_listed():
    doc = observability_section()
    ours = [v for k, v in vars(genai).items() if k.isupper() and isinstance(v, str)
            and v.startswith("switchyard.")]
    assert len(ours) >= 10
    # The doc abbreviates a run of them as `switchyard.attempts`, `.tenant`, ...
    missing = [a for a in ours if a not in doc and f"`.{a.removeprefix('switchyard.')}`"
               not in doc]
    assert not missing, f"span attributes not in docs/architecture.md: {missing}"
