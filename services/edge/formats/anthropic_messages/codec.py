"""Anthropic Messages as a `ClientFormat` (never stored: the API has no conversation state)."""
from __future__ import annotations

from typing import Any

from switchyard.common.canonical.aggregate import Turn
from switchyard.common.errors import GatewayError
from switchyard.edge import ids
from switchyard.edge.formats.anthropic_messages.request import decode_request
from switchyard.edge.formats.anthropic_messages.response import encode_response, error_body
from switchyard.edge.formats.anthropic_messages.stream import StreamEncoder
from switchyard.edge.formats.base import Decoded, Reply


class MessagesFormat:
    """POST /v1/messages."""

    name = "anthropic_messages"
    record_kind = "message"
    always_stores = False

    def new_id(self) -> str:
        return ids.message_id()

    def decode(self, body: dict[str, Any]) -> Decoded:
        return Decoded(decode_request(body))

    def encode_response(self, turn: Turn, reply: Reply) -> dict[str, Any]:
        return encode_response(turn, model=reply.shown_model, response_id=reply.response_id,
                               created=reply.created)

    def stream_encoder(self, reply: Reply) -> StreamEncoder:
        return StreamEncoder(reply.shown_model, reply.response_id, reply.created,
                             reply.decoded.request)

    def error_body(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        return error_body(err)


FORMAT = MessagesFormat()
