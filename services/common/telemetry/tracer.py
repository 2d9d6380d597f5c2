"""The process's tracer, set up once from `tracing:` and the standard OTEL_* variables.

`ENABLED` is the one switch the hot path reads: False means no tracer call, no span object.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.trace import Tracer

from switchyard.common.config.model import Tracing

log = logging.getLogger(__name__)

ENABLED = False            # read as `tracer.ENABLED`, never imported by value
INTERNAL = False           # trace_arch_internal: spans of the internal hops too
SETTINGS = Tracing()
TRACER: Tracer = trace.NoOpTracer()
_provider: object | None = None

# Spans leave in batches from a background thread; a short delay keeps traces fresh.
DEFAULT_SCHEDULE_DELAY_MS = 1000


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
    """Install an SDK tracer provider exporting over OTLP/gRPC when `settings` ask for one."""
    global ENABLED, INTERNAL, SETTINGS, TRACER, _provider
    SETTINGS = settings
    if ENABLED or not wanted(settings):
        return ENABLED
    # Imported here: a gateway with tracing off never loads the SDK.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    endpoint = endpoint_for(settings)
    resource = Resource.create({"service.name": f"switchyard-{service}",
                                "service.namespace": "switchyard"})
    provider = TracerProvider(resource=resource, sampler=ParentBased(
        TraceIdRatioBased(settings.random_sampling / 100.0)))
    delay = int(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint), schedule_delay_millis=delay))
    _provider = provider
    TRACER = provider.get_tracer("switchyard")
    INTERNAL = settings.trace_arch_internal
    ENABLED = True
    log.info("%s: tracing %g%% of requests to %s", service, settings.random_sampling,
             endpoint)
    return True


def shutdown() -> None:
    """Flush and stop the exporter (at process exit; bounded by the SDK's export timeout)."""
    global ENABLED, TRACER, _provider
    provider, _provider = _provider, None
    ENABLED = False
    TRACER = trace.NoOpTracer()
    if provider is not None:
        provider.shutdown()  # type: ignore[attr-defined]
