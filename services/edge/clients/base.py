"""The seam between the edge's request flow and its backend clients: what `pipeline.py` and
the routes call. `backends.Backends` is the gRPC implementation; an in-process test hands
the app any object with these members (`tests/unit/test_edge_app.py`)."""
from __future__ import annotations

from typing import Protocol

from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2, state_pb2
from switchyard.edge.clients.providers import EOFType


class Routes(Protocol):
    """Model names → route plans (the router's published table)."""

    async def resolve(self, name: str) -> router_pb2.RoutePlan:
        """The plan for `name`; GatewayError 404 when unknown, 503 when the router is down."""
        ...

    def models(self) -> router_pb2.ModelList:
        """What `GET /v1/models` lists."""
        ...

    async def route(self, request: router_pb2.RouteRequest,
                    timeout: float) -> router_pb2.RouteDecision:
        """A preference-aligned routing decision (only asked when the config routes)."""
        ...

    @property
    def loaded(self) -> bool:
        """A route table has arrived (readiness: the edge can route without the router)."""
        ...


class Conversations(Protocol):
    """Stored responses and history (the state service)."""

    async def put(self, resp: state_pb2.StoredResponse) -> None:
        """Store a finished turn."""
        ...

    async def get(self, tenant: str, id: str) -> state_pb2.StoredResponse:
        """A stored response; GatewayError 404 when absent."""
        ...

    async def history(self, tenant: str, id: str) -> list[chat_pb2.Message]:
        """The conversation ending at `id`, oldest first."""
        ...

    async def delete(self, tenant: str, id: str) -> bool:
        """True when a stored response was deleted."""
        ...

    # The Conversations API's conversations: GatewayError 404 (in OpenAI's words) when the
    # conversation or item is absent or another tenant's.
    async def create_conversation(self, tenant: str, metadata_json: bytes,
                                  items: list[state_pb2.ConversationItem]
                                  ) -> state_pb2.Conversation:
        """A new conversation holding `items` (its id minted by state)."""
        ...

    async def get_conversation(self, tenant: str, id: str) -> state_pb2.Conversation: ...

    async def update_conversation(self, tenant: str, id: str,
                                  metadata_json: bytes) -> state_pb2.Conversation: ...

    async def delete_conversation(self, tenant: str, id: str) -> None: ...

    async def append_items(self, tenant: str, id: str,
                           items: list[state_pb2.ConversationItem]) -> None:
        """Append in order, all or nothing (400 past the conversation's bounds)."""
        ...

    async def list_items(self, tenant: str, id: str, *, after: str = "", limit: int = 0,
                         descending: bool = False) -> state_pb2.ConversationItems:
        """A page of items after `after` (`limit` 0: all, oldest first)."""
        ...

    async def get_item(self, tenant: str, id: str,
                       item_id: str) -> state_pb2.ConversationItem: ...

    async def delete_item(self, tenant: str, id: str,
                          item_id: str) -> state_pb2.Conversation: ...


class Generation(Protocol):
    """One streamed generation's replies."""

    async def read(self) -> chat_pb2.EventBatch | EOFType:
        """The next batch, or EOF after the last; GatewayError when the hop broke."""
        ...

    def cancel(self) -> None:
        """Stop early: the providers service closes the upstream request."""
        ...


class Generations(Protocol):
    """Generations on the providers service."""

    async def generate(self, request: providers_pb2.GenerateRequest) -> Generation:
        """Start a streamed generation."""
        ...

    async def complete(self, request: providers_pb2.GenerateRequest,
                       timeout: float) -> chat_pb2.EventBatch:
        """The whole answer as one batch."""
        ...

    def fail_pending(self, err: GatewayError) -> int:
        """End every pending generation with `err` (the drain's end); how many there were."""
        ...


class EdgeBackends(Protocol):
    """Everything the edge asks of router, state and providers."""

    # Read-only members, so an implementation may hold narrower types (RouteCache, ...).
    @property
    def routes(self) -> Routes: ...

    @property
    def state(self) -> Conversations: ...

    @property
    def mux(self) -> Generations: ...

    async def start(self) -> None:
        """Open what needs opening (the route watch)."""
        ...

    async def close(self) -> None:
        """Close every channel."""
        ...

    async def count_tokens(self, request: providers_pb2.GenerateRequest,
                           timeout: float) -> providers_pb2.CountTokensReply:
        """Input tokens of `request`."""
        ...

    async def health(self, timeout: float = 1.0) -> dict[str, bool]:
        """Each backend's health (some replica serving), without waiting on any backend
        beyond the first answers after start-up."""
        ...

    def replicas(self) -> dict[str, dict[str, str]]:
        """Each backend's endpoints and their status (up, unknown, draining, down)."""
        ...
