"""Google's generateContent as a `ClientFormat` (never stored: Gemini has no response ids
to continue a conversation from; the client sends the whole history every turn)."""
from __future__ import annotations

from typing import Any

from switchyard.common.canonical.aggregate import Turn
from switchyard.common.errors import GatewayError
from switchyard.edge import ids
from switchyard.edge.formats.base import Decoded, Reply
from switchyard.edge.formats.gemini.request import GeminiContext, decode_request
from switchyard.edge.formats.gemini.response import encode_response, error_body
from switchyard.edge.formats.gemini.stream import StreamEncoder


class GeminiFormat:
    """POST /v1beta/models/{model}:generateContent and :streamGenerateContent."""

    name = "gemini"
    record_kind = "gemini"
    always_stores = False

    def new_id(self) -> str:
        return ids.response_id()

    def decode(self, body: dict[str, Any]) -> Decoded:
        req, ctx = decode_request(body)
        return Decoded(req, context=ctx)

    def encode_response(self, turn: Turn, reply: Reply) -> dict[str, Any]:
        return encode_response(turn, model=reply.shown_model, response_id=reply.response_id)

    def stream_encoder(self, reply: Reply) -> StreamEncoder:
        ctx = reply.decoded.context
        sse_frames = ctx.sse if isinstance(ctx, GeminiContext) else True
        return StreamEncoder(reply.shown_model, reply.response_id, sse_frames=sse_frames)

    def error_body(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        return error_body(err)


FORMAT = GeminiFormat()
