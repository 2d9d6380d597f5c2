"""Plano's latency source for `prefer: fastest`: each `model_metrics_sources` entry of
`type: latency` is a PromQL query run against its Prometheus every `refresh_interval`
(`GET /api/v1/query`); the answer's instant vector gives one value per `model_name` label,
lower being faster. A query that fails keeps the last values and is logged once, until it
answers again."""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import orjson

from switchyard.common.config.model import LatencySource
from switchyard.common.refresher import Refresher
from switchyard.common.telemetry.cost import fetch

log = logging.getLogger(__name__)

LABEL = "model_name"


def query_url(source: LatencySource) -> str:
    return f"{source.url}/api/v1/query?{urlencode({'query': source.query})}"


def parse_vector(doc: Any) -> dict[str, float]:
    """`model_name` -> value from a Prometheus query answer; ValueError when it is not a
    successful instant vector. Samples that are not finite and ≥ 0 are left out."""
    if not isinstance(doc, dict) or doc.get("status") != "success":
        error = doc.get("error") if isinstance(doc, dict) else None
        raise ValueError(f"the query failed: {error}" if error else "not a Prometheus answer")
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, dict) else None
        raise ValueError(f"the query must give an instant vector by {LABEL}, it gave {kind}")
    out: dict[str, float] = {}
    for sample in data.get("result") or ():
        name = (sample.get("metric") or {}).get(LABEL) if isinstance(sample, dict) else None
        value = sample.get("value") if isinstance(sample, dict) else None
        if not isinstance(name, str) or not isinstance(value, list) or len(value) != 2:
            continue
        try:
            v = float(value[1])
        except (TypeError, ValueError):
            continue
        if math.isfinite(v) and v >= 0:
            out[name] = v
    return out


class PrometheusLatencies:
    """The latest value of every latency source, refreshed in a task of the running loop."""

    def __init__(self, sources: Iterable[LatencySource]) -> None:
        self.sources = tuple(sources)
        self.values: dict[int, dict[str, float]] = {}
        self._refresher = Refresher([s.refresh_s for s in self.sources], self._load,
                                    self._failed, self._recovered, "latency-sources")

    @property
    def configured(self) -> bool:
        return bool(self.sources)

    def latency(self, model: str) -> float | None:
        """The first source's value for `model` (its name as routing_preferences write it)."""
        for i in sorted(self.values):
            if model in self.values[i]:
                return self.values[i][model]
        return None

    async def refresh(self, index: int) -> bool:
        return await self._refresher.refresh(index)

    async def _load(self, index: int) -> None:
        values = parse_vector(orjson.loads(await fetch(query_url(self.sources[index]))))
        if not values:
            raise ValueError(f"the query gave no value labelled {LABEL}")
        self.values[index] = values

    def _failed(self, index: int, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
        log.warning("latency source %s: %s; prefer: fastest keeps its last values until the "
                    "query answers", self.sources[index].display, reason)

    def _recovered(self, index: int) -> None:
        log.info("latency source %s answers again", self.sources[index].display)

    def start(self) -> None:
        self._refresher.start()

    async def close(self) -> None:
        await self._refresher.close()
