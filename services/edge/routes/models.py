"""GET /v1/models, GET /healthz and GET /metrics."""
from __future__ import annotations

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from services.edge.formats import openai_chat
from services.edge.routes.common import backends, guarded


@guarded(openai_chat)
async def list_models(request: Request) -> Response:
    models = backends(request).routes.models()
    data = [{"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
            for m in models.models]
    return Response(orjson.dumps({"object": "list", "data": data}),
                    media_type="application/json")


async def healthz(request: Request) -> Response:
    """200 only when router, providers and state all answer their gRPC health checks."""
    status = await backends(request).health()
    ok = all(status.values())
    body = {"status": "ok" if ok else "unavailable", "services": status}
    return Response(orjson.dumps(body), status_code=200 if ok else 503,
                    media_type="application/json")


async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text exposition of this edge process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
