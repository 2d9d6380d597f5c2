"""The edge's client of the state service: a channel per state replica (each call to a live
one, in turn), short deadlines, and failed calls turned into `GatewayError`s by errors.py
(rendered in the client's format).

Arguments follow the `Store` order, (tenant, id); tenant "" means the default tenant.
"""
from __future__ import annotations

from typing import Any

import grpc

from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, state_pb2, state_pb2_grpc
from switchyard.edge.clients.endpoints import Endpoint, EndpointSet, unary
from switchyard.edge.clients.errors import grpc_to_gateway_error, status_error

READ_TIMEOUT = 2.0    # seconds; reads are single indexed lookups
WRITE_TIMEOUT = 5.0   # a write must land before the client sees its response complete
# Calls a retry would repeat (a new conversation, appended items); the others may be
# sent again after an UNAVAILABLE (see endpoints.unary).
ONCE = frozenset({"CreateConversation", "AppendItems"})


class StateClient:
    """Async client of switchyard.v1.State over the endpoints of its address.

    Calls wait for the channel to (re)connect, but never longer than their deadline: a state
    service that restarts costs a short wait, one that is down a 503 after the deadline.
    """

    def __init__(self, address: str | EndpointSet, *, read_timeout: float = READ_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT) -> None:
        self._own = isinstance(address, str)   # a set handed in belongs to the caller
        self.endpoints = EndpointSet(address) if isinstance(address, str) else address
        self.address = self.endpoints.address
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.endpoints.start()

    async def close(self) -> None:
        if self._own:
            await self.endpoints.close()

    async def _call(self, method: str, request: Any, timeout: float, subject: str,
                    *, own_not_found: bool = False) -> Any:
        """`method` on a live endpoint, errors mapped for the client (`own_not_found`: the
        service's NOT_FOUND details are the client's message, as for conversations)."""
        def invoke(endpoint: Endpoint, left: float, alone: bool) -> Any:
            # Alone, wait for a restarting state service; with replicas, fail fast to the next.
            return getattr(endpoint.stub(state_pb2_grpc.StateStub), method)(
                request, timeout=left, wait_for_ready=alone)
        try:
            reply = await unary(self.endpoints, invoke, timeout, retry=method not in ONCE)
        except grpc.aio.AioRpcError as e:
            if own_not_found and e.code() == grpc.StatusCode.NOT_FOUND and e.details():
                raise GatewayError(404, e.details(), type="not_found") from None
            raise grpc_to_gateway_error(e, "state", subject) from None
        if reply is None:
            raise status_error("state", grpc.StatusCode.UNAVAILABLE, subject=subject)
        return reply

    async def __aenter__(self) -> StateClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def put(self, resp: state_pb2.StoredResponse) -> None:
        """Store (or overwrite) a response; expires_at 0 means the service's default TTL."""
        await self._call("Put", state_pb2.PutRequest(response=resp), self.write_timeout,
                         resp.id)

    async def get(self, tenant: str, id: str) -> state_pb2.StoredResponse:
        """The stored response; 404 GatewayError when absent or expired."""
        reply: state_pb2.StoredResponse = await self._call(
            "Get", state_pb2.GetRequest(id=id, tenant=tenant), self.read_timeout, id)
        return reply

    async def history(self, tenant: str, id: str) -> list[chat_pb2.Message]:
        """Messages of the conversation ending at `id`, oldest first, ready to prepend."""
        return list((await self.history_reply(tenant, id)).messages)

    async def history_reply(self, tenant: str, id: str) -> state_pb2.History:
        """The whole `History` reply: messages and the response ids of the chain."""
        reply: state_pb2.History = await self._call(
            "GetHistory", state_pb2.GetHistoryRequest(id=id, tenant=tenant),
            self.read_timeout, id)
        return reply

    async def delete(self, tenant: str, id: str) -> bool:
        """True when a live response was deleted; False when there was none."""
        reply = await self._call("Delete", state_pb2.DeleteRequest(id=id, tenant=tenant),
                                 self.write_timeout, id)
        return bool(reply.deleted)

    async def input_items(self, tenant: str, id: str) -> bytes:
        """The stored JSON array of input items; 404 GatewayError when absent."""
        reply = await self._call("ListInputItems",
                                 state_pb2.ListInputItemsRequest(id=id, tenant=tenant),
                                 self.read_timeout, id)
        return bytes(reply.items_json)

    # ---- conversations: 404s name the conversation or item in OpenAI's words -------------

    async def create_conversation(self, tenant: str, metadata_json: bytes,
                                  items: list[state_pb2.ConversationItem]
                                  ) -> state_pb2.Conversation:
        """A new conversation (the service mints its id) holding `items`."""
        reply: state_pb2.Conversation = await self._call(
            "CreateConversation", state_pb2.CreateConversationRequest(
                tenant=tenant, metadata_json=metadata_json, items=items),
            self.write_timeout, "")
        return reply

    async def get_conversation(self, tenant: str, id: str) -> state_pb2.Conversation:
        reply: state_pb2.Conversation = await self._call(
            "GetConversation", state_pb2.ConversationKey(id=id, tenant=tenant),
            self.read_timeout, id, own_not_found=True)
        return reply

    async def update_conversation(self, tenant: str, id: str,
                                  metadata_json: bytes) -> state_pb2.Conversation:
        reply: state_pb2.Conversation = await self._call(
            "UpdateConversation", state_pb2.UpdateConversationRequest(
                id=id, tenant=tenant, metadata_json=metadata_json),
            self.write_timeout, id, own_not_found=True)
        return reply

    async def delete_conversation(self, tenant: str, id: str) -> None:
        """Delete a live conversation and its items; 404 GatewayError when there is none."""
        await self._call("DeleteConversation", state_pb2.ConversationKey(id=id, tenant=tenant),
                         self.write_timeout, id, own_not_found=True)

    async def append_items(self, tenant: str, id: str,
                           items: list[state_pb2.ConversationItem]) -> None:
        """Append in order, all or nothing (400 past the conversation's bounds)."""
        await self._call("AppendItems", state_pb2.AppendItemsRequest(
            conversation_id=id, tenant=tenant, items=items), self.write_timeout, id,
            own_not_found=True)

    async def list_items(self, tenant: str, id: str, *, after: str = "", limit: int = 0,
                         descending: bool = False) -> state_pb2.ConversationItems:
        """A page of items (`limit` 0: all, oldest first unless `descending`)."""
        reply: state_pb2.ConversationItems = await self._call(
            "ListItems", state_pb2.ListItemsRequest(
                conversation_id=id, tenant=tenant, after=after, limit=limit,
                descending=descending), self.read_timeout, id, own_not_found=True)
        return reply

    async def get_item(self, tenant: str, id: str,
                       item_id: str) -> state_pb2.ConversationItem:
        reply: state_pb2.ConversationItem = await self._call(
            "GetItem", state_pb2.ItemKey(conversation_id=id, tenant=tenant, item_id=item_id),
            self.read_timeout, id, own_not_found=True)
        return reply

    async def delete_item(self, tenant: str, id: str,
                          item_id: str) -> state_pb2.Conversation:
        """Remove one item; the conversation as it is afterwards."""
        reply: state_pb2.Conversation = await self._call(
            "DeleteItem", state_pb2.ItemKey(conversation_id=id, tenant=tenant,
                                            item_id=item_id),
            self.write_timeout, id, own_not_found=True)
        return reply
