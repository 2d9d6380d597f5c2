"""The standard grpc.health.v1 Health service every backend serves (k8s gRPC probes, the
edges' health watches, `switchyard probe`). Unlike grpc's reference servicer, its Watch
streams end once the server drains: a watch never ends on its own, so it would hold the
drain open for its whole length."""
from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

Status = int   # a HealthCheckResponse.ServingStatus value
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class Health(health_pb2_grpc.HealthServicer):
    """Statuses by service name ("" is the whole server)."""

    def __init__(self) -> None:
        self._status: dict[str, Status] = {"": SERVING}
        self._changed = asyncio.Event()
        self._draining = False

    async def Check(self, request: health_pb2.HealthCheckRequest,
                    context: grpc.aio.ServicerContext) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: health_pb2.HealthCheckRequest,
                    context: grpc.aio.ServicerContext) -> None:
        """The status now and at every change; the stream ends after NOT_SERVING of a drain."""
        last: Status | None = None
        while True:
            changed = self._changed
            status = self._status.get(request.service, SERVICE_UNKNOWN)
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            if self._draining:
                return
            await changed.wait()

    async def set(self, service: str, status: Status) -> None:
        """Set a service's status (ignored once draining)."""
        if not self._draining:
            self._status[service] = status
            self._wake()

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING for good; watchers hear it, then their streams end."""
        if self._draining:
            return
        self._draining = True
        for service in self._status:
            self._status[service] = NOT_SERVING
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
