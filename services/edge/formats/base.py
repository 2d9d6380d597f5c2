"""The seam between the edge's request flow and a client wire format.

A client format is one package under `formats/` whose `FORMAT` object satisfies
`ClientFormat`; it turns the client's JSON into a canonical `ChatRequest` and canonical
results back into the client's JSON or SSE. It does no I/O: `pipeline.py` reads the body,
authorizes, resolves, adds history, calls providers and stores. To add a format, write the
package (request, response, stream modules plus a `FORMAT`), register it in
`formats/__init__.py: FORMATS`, and route its endpoint to `pipeline.serve_turn(request, FORMAT)`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchyard.common.canonical.aggregate import Turn
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2


class ConversationLink(Protocol):
    """A turn continuing a stored conversation of items (OpenAI's Conversations API): state
    keeps the items as the format's JSON; the format reads them as history and says which
    items the finished turn adds."""

    @property
    def id(self) -> str: ...

    def history(self, items: Sequence[bytes], dropped: list[str]) -> list[chat_pb2.Message]:
        """The stored items (JSON, oldest first) as canonical messages; what has no
        counterpart is named in `dropped`."""
        ...

    def turn_items(self, body: dict[str, Any]) -> list[tuple[str, bytes]]:
        """(id, JSON) of the items this turn appends: its input, then the reply's output
        (`body`: the reply as the client got it)."""
        ...


@dataclass(slots=True)
class Decoded:
    """A decoded client request: the canonical request plus what the flow needs to know."""
    request: chat_pb2.ChatRequest
    previous_id: str = ""         # continue the stored conversation ending at this id
    store: bool = False           # the client wants this turn stored
    unstored_lead: int = 0        # leading messages of this turn never stored (instructions)
    input_items_json: bytes = b""  # the client's own input items, for GET .../input_items
    context: Any = None           # format-only data its encoders read back
    dropped: list[str] = field(default_factory=list)  # what the decoder could not carry
    conversation: ConversationLink | None = None  # continue (and append to) a conversation


@dataclass(slots=True)
class Reply:
    """What every encoder needs about the answer being rendered."""
    model: str                    # the name the client asked for (alias included)
    response_id: str              # minted by the gateway, never the upstream's
    created: int                  # unix seconds
    decoded: Decoded
    upstream_model: str = ""      # the model the upstream says served it, when it says

    @property
    def shown_model(self) -> str:
        """The `model` a reply names: the upstream's own name (as OpenAI, Plano and LiteLLM
        report it, e.g. a dated snapshot), else the name the client asked for."""
        return self.upstream_model or self.model


class StreamEncoder(Protocol):
    """Canonical event batches -> the client's SSE bytes, for one streamed reply."""

    def encode(self, events: Sequence[chat_pb2.StreamEvent]) -> bytes:
        """SSE bytes for a batch of events; never the terminal bytes."""
        ...

    def error(self, err: chat_pb2.Error) -> bytes:
        """A mid-stream error in the client's stream grammar; nothing follows it."""
        ...

    def reply_body(self, turn: Turn) -> dict[str, Any]:
        """The whole reply as a non-streaming client would get it (what state stores)."""
        ...

    def done(self) -> bytes:
        """The terminal bytes, sent only after the state write succeeded."""
        ...


class ClientFormat(Protocol):
    """One client wire format: decode a request, encode a reply, a stream, an error."""

    name: str            # metrics and log label, e.g. "openai_chat"
    record_kind: str     # `StoredResponse.kind` of the turns it stores
    always_stores: bool  # stores unless told not to (else only when state is configured)

    def new_id(self) -> str:
        """A fresh response id in the format's own style (chatcmpl-…, msg_…, resp_…)."""
        ...

    def decode(self, body: dict[str, Any]) -> Decoded:
        """A request body -> canonical request; raises GatewayError(400) when malformed."""
        ...

    def encode_response(self, turn: Turn, reply: Reply) -> dict[str, Any]:
        """A finished turn -> the client's JSON reply."""
        ...

    def stream_encoder(self, reply: Reply) -> StreamEncoder:
        """A fresh encoder for one streamed reply."""
        ...

    def error_body(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        """An error -> (HTTP status, the client's error JSON)."""
        ...
