"""The collector the traced rows export to: OTLP/gRPC's trace Export method in a process of
its own, pinned to the load core like the emulator. It parses each request (so the spans
are valid OTLP) and counts them, keeping nothing: a sink that stored every span, in the
bench's own unpinned process, took CPU from the gateway's core and grew without bound.

`python -m bench.otlp_sink --port N` prints `listening` once serving, and on SIGINT/SIGTERM
`received <spans> spans in <exports> exports`.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class Counts:
    def __init__(self) -> None:
        self.spans = 0
        self.exports = 0
        self._lock = threading.Lock()

    def export(self, data: bytes, context: Any) -> bytes:
        request = ExportTraceServiceRequest.FromString(data)
        spans = sum(len(scope.spans) for resource in request.resource_spans
                    for scope in resource.scope_spans)
        with self._lock:
            self.spans += spans
            self.exports += 1
        return b""   # an empty ExportTraceServiceResponse: every span accepted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args(argv)
    counts = Counts()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "Export": grpc.unary_unary_rpc_method_handler(counts.export)}),))
    if server.add_insecure_port(f"127.0.0.1:{a.port}") != a.port:
        print(f"cannot listen on 127.0.0.1:{a.port}", file=sys.stderr)
        return 1
    server.start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print("listening", flush=True)
    done.wait()
    server.stop(grace=2).wait()
    print(f"received {counts.spans} spans in {counts.exports} exports", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
