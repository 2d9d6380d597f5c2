"""The process's tracer, set up once from `tracing:` and the standard OTEL_* variables.

`ENABLED` is the one switch the hot path reads: False means no tracer call, no span object.
On, spans are recorded in this process (`spans`) and exported from another (`shipper`).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Tracer

from switchyard.common.config.model import Tracing

if TYPE_CHECKING:
    from switchyard.common.telemetry.shipper import Shipper

log = logging.getLogger(__name__)

ENABLED = False            # read as `tracer.ENABLED`, never imported by value
INTERNAL = False           # trace_arch_internal: spans of the internal hops too
SETTINGS = Tracing()
TRACER: Tracer = trace.NoOpTracer()
_shipper: Shipper | None = None

# The exporter sends batches on this schedule (OTEL_BSP_SCHEDULE_DELAY); short: fresh traces.
DEFAULT_SCHEDULE_DELAY_MS = 1000
DEFAULT_MAX_QUEUE = 2048   # spans waiting in this process for the next shipment (~0.1 s)


def endpoint_for(settings: Tracing, environ: Mapping[str, str] | None = None) -> str | None:
    """Where spans go: `opentracing_grpc_endpoint`, else OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT."""
    env = os.environ if environ is None else environ
    return (settings.endpoint or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None)


def wanted(settings: Tracing, environ: Mapping[str, str] | None = None) -> bool:
    """Tracing is on with sampling above 0, an endpoint, and OTEL_SDK_DISABLED not true."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return settings.random_sampling > 0 and endpoint_for(settings, env) is not None


def setup(settings: Tracing, service: str) -> bool:
    """Record spans (`spans.SpanTracer`) and export them over OTLP/gRPC from a separate
    process (`shipper`, `exporter`) when `settings` ask for tracing."""
    global ENABLED, INTERNAL, SETTINGS, TRACER, _shipper
    SETTINGS = settings
    if ENABLED or not wanted(settings):
        return ENABLED
    # Imported here: a gateway with tracing off has no shipper thread, no exporter process.
    from switchyard.common.telemetry.shipper import Shipper
    from switchyard.common.telemetry.spans import SpanTracer

    endpoint = endpoint_for(settings)
    delay = env_int("OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS)
    queue = env_int("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE)
    shipper = Shipper({"service": service, "endpoint": endpoint, "schedule_delay_ms": delay},
                      max_queue=max(queue, DEFAULT_MAX_QUEUE))
    _shipper = shipper
    TRACER = SpanTracer(shipper.add, settings.random_sampling / 100.0)
    INTERNAL = settings.trace_arch_internal
    ENABLED = True
    log.info("%s: tracing %g%% of requests to %s", service, settings.random_sampling,
             endpoint)
    return True


def env_int(name: str, default: int) -> int:
    """A positive whole number from the environment; like the SDK, a bad value is logged and
    the default used."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        log.warning("%s=%r is not a positive whole number; using %d", name, raw, default)
        return default
    return value


def shutdown(timeout_s: float = 10.0) -> None:
    """Ship the last spans and let the exporter process export them and exit (at process
    exit; waits up to `timeout_s`)."""
    global ENABLED, TRACER, _shipper
    shipper, _shipper = _shipper, None
    ENABLED = False
    TRACER = trace.NoOpTracer()
    if shipper is not None:
        shipper.shutdown(timeout_s)
