"""The process's tracer, set up once from `tracing:` and the standard OTEL_* variables.

`ENABLED` is the one switch the hot path reads: False means no tracer call, no span object.
On, spans are recorded in this process (`spans`) and exported from another (`shipper`).
Until tracing first starts, the OpenTelemetry API is not imported (0.4–0.6 MB a process).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from switchyard.common.config.model import Tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from switchyard.common.telemetry.shipper import Shipper

log = logging.getLogger(__name__)

ENABLED = False            # read as `tracer.ENABLED`, never imported by value
INTERNAL = False           # trace_arch_internal: spans of the internal hops too
SETTINGS = Tracing()
# Read only where ENABLED was seen true; once tracing has been on, switching it off leaves a
# tracer that drops its spans, so a request that began traced still finishes cleanly.
TRACER: Tracer = cast("Tracer", None)
_shipper: Shipper | None = None
_export_to: tuple[str | None, int, int] | None = None   # what `_shipper` was started with

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
    global SETTINGS
    SETTINGS = settings
    if ENABLED or not wanted(settings):
        return ENABLED
    _start(settings, service)
    return True


def reconfigure(settings: Tracing, service: str) -> Shipper | None:
    """Apply a reloaded `tracing:` in place (in the event loop: only names are swapped).
    Returns the shipper that is no longer used, for the caller to `shutdown` off the loop;
    spans still open when tracing stops or moves end in that one's last shipment or not at
    all."""
    global ENABLED, INTERNAL, SETTINGS, TRACER, _shipper
    SETTINGS = settings
    old = _shipper
    if not wanted(settings):
        if ENABLED:
            ENABLED, TRACER, _shipper = False, _dropping(), None
            log.info("%s: tracing off", service)
            return old
        return None
    if ENABLED and _export_to == _export_settings(settings):   # same exporter: new ratio
        from switchyard.common.telemetry.spans import SpanTracer
        assert old is not None
        TRACER = SpanTracer(old.add, settings.random_sampling / 100.0)
        INTERNAL = settings.trace_arch_internal
        log.info("%s: tracing %g%% of requests to %s", service, settings.random_sampling,
                 endpoint_for(settings))
        return None
    _start(settings, service)
    return old


def _export_settings(settings: Tracing) -> tuple[str | None, int, int]:
    return (endpoint_for(settings), env_int("OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS),
            env_int("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE))


def _start(settings: Tracing, service: str) -> None:
    """A new shipper and tracer for `settings` (wanted); the old shipper is the caller's."""
    global ENABLED, INTERNAL, TRACER, _shipper, _export_to
    # Imported here: a gateway with tracing off has no shipper thread, no exporter process.
    from switchyard.common.telemetry.shipper import Shipper
    from switchyard.common.telemetry.spans import SpanTracer

    _export_to = _export_settings(settings)
    endpoint, delay, queue = _export_to
    shipper = Shipper({"service": service, "endpoint": endpoint, "schedule_delay_ms": delay},
                      max_queue=max(queue, DEFAULT_MAX_QUEUE))
    _shipper = shipper
    TRACER = SpanTracer(shipper.add, settings.random_sampling / 100.0)
    INTERNAL = settings.trace_arch_internal
    ENABLED = True
    log.info("%s: tracing %g%% of requests to %s", service, settings.random_sampling,
             endpoint)


def _dropping() -> Tracer:
    """A tracer whose spans go nowhere (tracing was on, and is off now)."""
    from switchyard.common.telemetry.spans import SpanTracer
    return SpanTracer(lambda record: None, 0.0)


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
    if shipper is not None:
        TRACER = _dropping()
        shipper.shutdown(timeout_s)
