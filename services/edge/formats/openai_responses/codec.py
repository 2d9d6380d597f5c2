"""The Responses API as a `ClientFormat`: stored unless `store: false`, `instructions`
never stored, the client's input items kept for GET .../input_items."""
from __future__ import annotations

from typing import Any

import orjson

from switchyard.common.canonical.aggregate import Turn
from switchyard.common.errors import GatewayError
from switchyard.edge import ids
from switchyard.edge.formats.base import Decoded, Reply
from switchyard.edge.formats.fields import check_response_id
from switchyard.edge.formats.openai_responses.context import ResponsesContext
from switchyard.edge.formats.openai_responses.conversation import ItemsConversation
from switchyard.edge.formats.openai_responses.request import decode_request
from switchyard.edge.formats.openai_responses.response import encode_response, error_body
from switchyard.edge.formats.openai_responses.stream import StreamEncoder


def _context(reply: Reply) -> ResponsesContext:
    ctx = reply.decoded.context
    assert isinstance(ctx, ResponsesContext)
    return ctx


class ResponsesFormat:
    """POST /v1/responses."""

    name = "openai_responses"
    record_kind = "response"
    always_stores = True

    def new_id(self) -> str:
        return ids.response_id()

    def decode(self, body: dict[str, Any]) -> Decoded:
        req, ctx = decode_request(body)
        if ctx.previous_response_id is not None:
            check_response_id(ctx.previous_response_id, "previous_response_id")
        return Decoded(req, previous_id=ctx.previous_response_id or "", store=ctx.store,
                       unstored_lead=1 if ctx.instructions is not None else 0,
                       input_items_json=orjson.dumps(ctx.input_items) if ctx.store else b"",
                       context=ctx, dropped=ctx.dropped,
                       conversation=ItemsConversation(ctx.conversation, ctx.input_items)
                       if ctx.conversation else None)

    def encode_response(self, turn: Turn, reply: Reply) -> dict[str, Any]:
        return encode_response(turn, model=reply.shown_model, response_id=reply.response_id,
                               created=reply.created, ctx=_context(reply))

    def stream_encoder(self, reply: Reply) -> StreamEncoder:
        return StreamEncoder(reply.shown_model, reply.response_id, reply.created,
                             reply.decoded.request, _context(reply))

    def error_body(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        return error_body(err)


FORMAT = ResponsesFormat()
