"""A real OTLP/gRPC trace receiver for tests: the collector's TraceService on a free port,
served by grpc.aio in a background thread; spans are kept as plain `Span` records."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.support.ports import free_port


@dataclass
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: int = 0
    start_ns: int = 0


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OTLPReceiver) -> None:
        self.sink = sink

    async def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,
                     context: grpc.aio.ServicerContext
                     ) -> trace_service_pb2.ExportTraceServiceResponse:
        got = []
        for rs in request.resource_spans:
            res = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    got.append(Span(service=str(res.get("service.name", "")), name=s.name,
                                    trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                                    parent_id=s.parent_span_id.hex(), kind=s.kind,
                                    attributes={a.key: _value(a.value) for a in s.attributes},
                                    status_code=s.status.code, start_ns=s.start_time_unix_nano))
        self.sink.add(got)
        return trace_service_pb2.ExportTraceServiceResponse()


class OTLPReceiver:
    """`with OTLPReceiver() as otlp:` then point `opentracing_grpc_endpoint` at `otlp.endpoint`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._spans: list[Span] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="otlp-receiver")

    def add(self, spans: list[Span]) -> None:
        with self._lock:
            self._spans.extend(spans)

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def wait_for(self, predicate: Callable[[list[Span]], Any], timeout: float = 20.0,
                 what: str = "spans") -> Any:
        """Poll the received spans until `predicate` returns something truthy (returned)."""
        end = time.monotonic() + timeout
        while True:
            found = predicate(self.spans())
            if found:
                return found
            if time.monotonic() > end:
                names = sorted({f"{s.service}:{s.name}" for s in self.spans()})
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                     f"received {names}")
            time.sleep(0.05)

    def servicer(self) -> _Servicer:
        """What answers Export (a subclass may keep more of each call)."""
        return _Servicer(self)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self.servicer(), server)
        server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await server.stop(0)

    def start(self) -> OTLPReceiver:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the OTLP receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def trace_of(otlp: OTLPReceiver, request_id: str,
             want: Callable[[list[Span]], bool] = lambda spans: True,
             timeout: float = 20.0) -> list[Span]:
    """Every span of the trace whose edge span carries `request_id`, once `want` holds."""
    def ready(spans):
        edge = [s for s in spans if s.attributes.get("switchyard.request_id") == request_id
                and s.service == "switchyard-edge"]
        if not edge:
            return None
        same = [s for s in spans if s.trace_id == edge[0].trace_id]
        return same if want(same) else None
    return otlp.wait_for(ready, timeout, f"the trace of request {request_id}")


def one(spans: list[Span], service: str, prefix: str) -> Span:
    """The one span of `service` whose name starts with `prefix`."""
    found = [s for s in spans if s.service == service and s.name.startswith(prefix)]
    assert len(found) == 1, [(s.service, s.name) for s in spans]
    return found[0]


def has(*pairs: tuple[str, str]) -> Callable[[list[Span]], bool]:
    """A `want` for `trace_of`: a span of each (service, name prefix) is there."""
    return lambda spans: all(any(s.service == svc and s.name.startswith(p) for s in spans)
                             for svc, p in pairs)
