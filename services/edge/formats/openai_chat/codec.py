"""Chat Completions as a `ClientFormat`, plus the two fields only the gateway reads."""
from __future__ import annotations

from typing import Any

from switchyard.common.canonical.aggregate import Turn
from switchyard.common.errors import GatewayError
from switchyard.edge import ids
from switchyard.edge.formats.base import Decoded, Reply
from switchyard.edge.formats.fields import check_response_id
from switchyard.edge.formats.openai_chat.request import decode_request
from switchyard.edge.formats.openai_chat.response import encode_response, error_body
from switchyard.edge.formats.openai_chat.stream import StreamEncoder


def take_gateway_fields(body: dict[str, Any]) -> tuple[str | None, bool]:
    """Remove what only the gateway reads: `metadata.response_id` and `store`."""
    conversation = None
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and "response_id" in metadata:
        conversation = metadata.pop("response_id")
        if not isinstance(conversation, str) or not conversation:
            raise GatewayError(400, "metadata.response_id must be a non-empty string",
                               param="metadata.response_id")
        check_response_id(conversation, "metadata.response_id")
        if not metadata:
            del body["metadata"]
    store = body.pop("store", True)
    if not isinstance(store, bool):
        raise GatewayError(400, "store must be a boolean", param="store")
    return conversation, store


class ChatCompletionsFormat:
    """POST /v1/chat/completions; stored only when the config has `state_storage`."""

    name = "openai_chat"
    record_kind = "chat.completion"
    always_stores = False

    def new_id(self) -> str:
        return ids.chat_completion_id()

    def decode(self, body: dict[str, Any]) -> Decoded:
        conversation, store = take_gateway_fields(body)
        return Decoded(decode_request(body), previous_id=conversation or "", store=store)

    def encode_response(self, turn: Turn, reply: Reply) -> dict[str, Any]:
        return encode_response(turn, model=reply.shown_model, response_id=reply.response_id,
                               created=reply.created)

    def stream_encoder(self, reply: Reply) -> StreamEncoder:
        return StreamEncoder(reply.shown_model, reply.response_id, reply.created,
                             reply.decoded.request)

    def error_body(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        return error_body(err)


FORMAT = ChatCompletionsFormat()
