"""What every route shares: the guard that turns surprises into clean errors and metrics."""
from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from switchyard.common import metrics
from switchyard.common.errors import GatewayError
from switchyard.edge import observe
from switchyard.edge.formats.base import ClientFormat
from switchyard.edge.pipeline import Exchange, backends, tenant_of

__all__ = ["Handler", "backends", "guarded", "tenant_of"]

log = logging.getLogger("switchyard.edge")

Handler = Callable[[Request], Awaitable[Response]]


def guarded(fmt: ClientFormat) -> Callable[[Handler], Handler]:
    """Any unexpected exception becomes a 500 in the client's format; the trace stays in
    the log, never in the response. Counts the answer in the route's metrics."""
    def wrap(handler: Handler) -> Handler:
        route = handler.__name__

        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            obs = observe.begin(request, route, fmt.name)   # None: tracing and log off
            if obs is None:
                response = await _answer(request)
            else:
                with observe.current(obs):
                    response = await _answer(request)
            metrics.child(metrics.HTTP_REQUESTS, route, str(response.status_code)).inc()
            overhead = response.headers.get("x-switchyard-overhead-ms")
            if overhead:
                metrics.child(metrics.GATEWAY_OVERHEAD, route).observe(float(overhead) / 1000.0)
            if obs is not None:
                if overhead and not obs.overhead_ms:
                    obs.overhead_ms = float(overhead)
                return observe.finish(obs, response)
            return response

        async def _answer(request: Request) -> Response:
            try:
                return await handler(request)
            except GatewayError as exc:
                ex = Exchange(request, fmt, "")
                observe.failed(request, exc.type)
                if exc.http_status >= 500:
                    log.warning("request %s %s: %d %s", ex.request_id, request.url.path,
                                exc.http_status, exc.type)
                return ex.error_response(exc)
            except Exception:  # noqa: BLE001 - the last line of defence
                ex = Exchange(request, fmt, "")
                observe.failed(request, "api_error")
                log.exception("request %s %s: unhandled error", ex.request_id, request.url.path)
                return ex.error_response(
                    GatewayError(500, "internal gateway error", type="api_error"))
        return run
    return wrap
