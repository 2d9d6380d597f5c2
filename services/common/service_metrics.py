"""Whether this gRPC service keeps Prometheus metrics. It does only when they are served
(`SWITCHYARD_<SERVICE>_METRICS`, host:port): a service nobody scrapes neither imports
prometheus_client (1.6 MB of an idle service's RSS) nor counts its calls. The edge serves /metrics
always and uses `switchyard.common.metrics` directly."""
from __future__ import annotations

import logging
import os
from types import ModuleType

log = logging.getLogger(__name__)

# `switchyard.common.metrics` once served, else None: the hot paths test this one name.
METRICS: ModuleType | None = None


def env_name(service: str) -> str:
    return f"SWITCHYARD_{service.upper()}_METRICS"


def serve_if_configured(service: str) -> None:
    """Start the metrics HTTP server for a gRPC service when its variable names an address."""
    global METRICS
    address = os.environ.get(env_name(service))
    if not address:
        return
    from prometheus_client import start_http_server

    from switchyard.common import metrics  # defines every counter, so all are exported
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1")
    METRICS = metrics
    log.info("%s metrics on http://%s/metrics", service, address)
