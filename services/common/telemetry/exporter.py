"""The span exporter process, one per traced service (started by `shipper.Shipper`, run as
`python -m switchyard.common.telemetry.exporter`). It reads marshalled span records from
stdin, encodes each as an OTLP Span (`otlp.Encoder`) and sends them in batches with the SDK's
OTLP/gRPC exporter, so OTEL_EXPORTER_OTLP_* (headers, TLS, compression, timeout), the
batching variables OTEL_BSP_SCHEDULE_DELAY / _MAX_EXPORT_BATCH_SIZE / _MAX_QUEUE_SIZE,
the span limits OTEL_SPAN_* / OTEL_ATTRIBUTE_* and OTEL_RESOURCE_ATTRIBUTES mean here what
they mean for the SDK.

It runs at idle CPU priority: it uses the time the serving process leaves free and never
delays a request (the shipper lowers it right after starting it, so its imports too). It
ends when stdin closes (the service stopped or died), after one last export.
"""
from __future__ import annotations

import logging
import marshal
import os
import select
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.export import SpanExportResult

from switchyard.common.telemetry.otlp import Encoder
from switchyard.common.telemetry.shipper import FRAME, lower_priority
from switchyard.common.telemetry.tracer import env_int

log = logging.getLogger("switchyard.telemetry.exporter")

SCOPE = "switchyard"   # the instrumentation scope every span is recorded under
STDIN = 0


def read_exact(fd: int, size: int) -> bytes | None:
    """`size` bytes from `fd` (unbuffered, so `select` sees everything not yet read), or
    None at the end of the stream."""
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> Any:
    """The next marshalled value, or None at the end of the stream."""
    head = read_exact(fd, FRAME.size)
    if head is None:
        return None
    data = read_exact(fd, FRAME.unpack(head)[0])
    return None if data is None else marshal.loads(data)


def encoder_for(service: str) -> Encoder:
    """The service's resource (OTEL_RESOURCE_ATTRIBUTES merged in, as the SDK builds it) and
    the SDK's span limits (OTEL_SPAN_*_LIMIT variables)."""
    resource = Resource.create({"service.name": f"switchyard-{service}",
                                "service.namespace": "switchyard"})
    limits = SpanLimits()
    return Encoder(resource.attributes, SCOPE, limits.max_span_attributes,
                   limits.max_span_attribute_length, limits.max_events,
                   limits.max_event_attributes, limits.max_attribute_length)


EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _as_is(request: bytes) -> bytes:
    return request


class EncodedStub:
    """TraceService's Export for a request that is bytes already: the generated stub would
    make the SDK parse our bytes into a message only to serialize it again."""

    def __init__(self, channel: Any) -> None:
        self.Export = channel.unary_unary(EXPORT_METHOD, request_serializer=_as_is,
                                          response_deserializer=ExportTraceServiceResponse.FromString)


class EncodedExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC exporter — endpoint, credentials, headers, compression, timeout,
    retries with backoff, reconnection — sending spans this process encoded itself (`export`
    takes the encoded Span messages instead of ReadableSpans)."""

    def __init__(self, encoder: Encoder, endpoint: str) -> None:
        super().__init__(endpoint=endpoint)
        self._encoder = encoder
        # The SDK makes its client from `_stub` again when it reconnects.
        self._stub = EncodedStub
        self._client = EncodedStub(self._channel)  # type: ignore[assignment]

    def export_encoded(self, spans: Sequence[bytes]) -> SpanExportResult:
        """Export encoded Span messages: `export` hands its argument as it is to
        `_translate_data` (and counts it with len)."""
        return self.export(spans)  # type: ignore[arg-type]

    def _translate_data(self, data: Sequence[bytes]) -> bytes:  # type: ignore[override]
        return self._encoder.request(data)


class Batcher:
    """Encoded spans waiting for export: sent when a batch is full or the oldest waiting
    span is `delay_s` old (the BatchSpanProcessor's schedule); beyond `max_queue`, dropped."""

    def __init__(self, exporter: EncodedExporter, delay_s: float, batch_size: int,
                 max_queue: int) -> None:
        self.exporter = exporter
        self.delay_s = delay_s
        self.batch_size = batch_size
        self.max_queue = max_queue
        self.pending: list[bytes] = []
        self.due = 0.0
        self.dropped = 0

    def add(self, spans: list[bytes]) -> None:
        if not self.pending:
            self.due = time.monotonic() + self.delay_s
        room = self.max_queue - len(self.pending)
        if len(spans) > room:
            self.dropped += len(spans) - room
            spans = spans[:max(room, 0)]
        self.pending.extend(spans)
        while len(self.pending) >= self.batch_size:
            self._send(self.batch_size)

    def wait_s(self) -> float | None:
        """How long the next read may block (None: until input)."""
        return max(self.due - time.monotonic(), 0.0) if self.pending else None

    def tick(self) -> None:
        if self.pending and time.monotonic() >= self.due:
            self.flush()

    def flush(self) -> None:
        while self.pending:
            self._send(self.batch_size)

    def _send(self, count: int) -> None:
        batch, self.pending = self.pending[:count], self.pending[count:]
        self.due = time.monotonic() + self.delay_s
        if self.exporter.export_encoded(batch) is not SpanExportResult.SUCCESS:
            self.dropped += len(batch)   # the SDK logged why


def serve(fd: int, settings: dict[str, Any]) -> None:
    """Read, encode and export until `fd` ends, then export what is left."""
    encoder = encoder_for(settings["service"])
    exporter = EncodedExporter(encoder, settings["endpoint"])
    batcher = Batcher(exporter, settings["schedule_delay_ms"] / 1000.0,
                      env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
                      env_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048))
    try:
        while True:
            readable, _, _ = select.select([fd], [], [], batcher.wait_s())
            if readable:
                batch = read_frame(fd)
                if batch is None:
                    break
                batcher.add([encoder.span(record) for record in batch])
            batcher.tick()
    except (ValueError, EOFError, TypeError) as exc:   # a torn frame: the service died mid-write
        log.warning("span exporter for %s: unreadable input (%s); exporting what arrived",
                    settings["service"], type(exc).__name__)
    finally:
        batcher.flush()
        exporter.shutdown()
        if batcher.dropped:
            log.warning("span exporter for %s: %d spans were not exported", settings["service"],
                        batcher.dropped)


def main() -> int:
    # Ctrl-C is for the service (it closes our stdin when it stops), SIGHUP too (its reload);
    # SIGTERM: export, exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    lower_priority(0)   # done by the shipper already; again when run by hand
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    settings = read_frame(STDIN)
    if isinstance(settings, dict):
        try:   # `ps` then says whose exporter this is
            import setproctitle
            setproctitle.setproctitle(f"switchyard span-exporter {settings['service']}")
        except ImportError:
            pass
        serve(STDIN, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
