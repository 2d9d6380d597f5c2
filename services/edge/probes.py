"""GET /healthz and GET /readyz: what a supervisor (k8s) asks of an edge.

Liveness is this process answering: a backend outage must never get every edge restarted.
Readiness is being able to serve generations: a route table held and a providers replica
up. A state outage leaves the edge ready — only calls that need state fail (503, in the
client's format) — and both answers say which backends are up."""
from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from switchyard.common.launched import INSTANCE_HEADERS  # the launcher's token: "this edge is mine"
from switchyard.edge.routes.common import backends

# Needed to serve generations; the others only degrade some calls.
REQUIRED = ("providers",)
# How long an answer may wait for the backends' first health answers after start-up (k8s
# probes time out after 1 s by default); later the answers are known and nothing waits.
LIVE_SETTLE_S = 0.2
READY_SETTLE_S = 0.5


def _json(body: dict[str, object], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=INSTANCE_HEADERS)


async def healthz(request: Request) -> Response:
    """Always 200 while the process serves; the backends' last known health rides along."""
    services = await backends(request).health(LIVE_SETTLE_S)
    return _json({"status": "ok", "services": services})


async def readyz(request: Request) -> Response:
    """200 when routes are loaded and providers reachable, else 503; says what is up."""
    be = backends(request)
    services = await be.health(READY_SETTLE_S)
    routes = be.routes.loaded
    ready = routes and all(services[s] for s in REQUIRED)
    return _json({"status": "ready" if ready else "unavailable", "routes_loaded": routes,
                  "services": services,
                  "degraded": [s for s, up in services.items() if not up],
                  "replicas": be.replicas()},
                 200 if ready else 503)
