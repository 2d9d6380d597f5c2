"""POST /v1/chat/completions: the shared flow in OpenAI Chat Completions' format (stored,
for `metadata.response_id`, when the config has `state_storage`)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from switchyard.edge.formats.openai_chat import FORMAT
from switchyard.edge.pipeline import serve_turn
from switchyard.edge.routes.common import guarded


@guarded(FORMAT)
async def create_chat_completion(request: Request) -> Response:
    return await serve_turn(request, FORMAT)
