"""GET /v1/models, GET /healthz and GET /metrics."""
from __future__ import annotations

from datetime import UTC, datetime

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from switchyard.common.errors import GatewayError
from switchyard.edge.formats.openai_chat import FORMAT
from switchyard.edge.routes.common import backends, guarded


@guarded(FORMAT)
async def list_models(request: Request) -> Response:
    """OpenAI's list format, or Anthropic's when the client sends `anthropic-version`."""
    models = backends(request).routes.models().models
    if "anthropic-version" in request.headers:
        data = [_anthropic_model(m) for m in models]
        body = {"data": data, "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}
    else:
        body = {"object": "list", "data": [_openai_model(m) for m in models]}
    return Response(orjson.dumps(body), media_type="application/json")


@guarded(FORMAT)
async def get_model(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    for m in backends(request).routes.models().models:
        if m.id == model_id:
            body = (_anthropic_model(m) if "anthropic-version" in request.headers
                    else _openai_model(m))
            return Response(orjson.dumps(body), media_type="application/json")
    raise GatewayError(404, f"The model '{model_id}' does not exist", type="not_found",
                       code="model_not_found")


def _openai_model(m) -> dict:
    return {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}


def _anthropic_model(m) -> dict:
    created = datetime.fromtimestamp(m.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": m.id, "display_name": m.id, "created_at": created}


async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text exposition of this edge process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
