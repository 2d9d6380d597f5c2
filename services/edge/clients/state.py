"""The edge's client of the state service: one reused channel, short deadlines, and failed
calls turned into `GatewayError`s by errors.py (rendered in the client's format).

Arguments follow the `Store` order, (tenant, id); tenant "" means the default tenant.
"""
from __future__ import annotations

import grpc

from switchyard.common.proto import chat_pb2, state_pb2, state_pb2_grpc
from switchyard.edge.clients.channel import open_channel
from switchyard.edge.clients.errors import grpc_to_gateway_error

READ_TIMEOUT = 2.0    # seconds; reads are single indexed lookups
WRITE_TIMEOUT = 5.0   # a write must land before the client sees its response complete


class StateClient:
    """Async client of switchyard.v1.State over one channel kept for the process's life.

    Calls wait for the channel to (re)connect, but never longer than their deadline: a state
    service that restarts costs a short wait, one that is down a 503 after the deadline.
    """

    def __init__(self, address: str, *, read_timeout: float = READ_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT) -> None:
        self.address = address
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self._channel = open_channel(address)
        self._stub = state_pb2_grpc.StateStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> StateClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def put(self, resp: state_pb2.StoredResponse) -> None:
        """Store (or overwrite) a response; expires_at 0 means the service's default TTL."""
        try:
            await self._stub.Put(state_pb2.PutRequest(response=resp),
                                 timeout=self.write_timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as e:
            raise grpc_to_gateway_error(e, "state", resp.id) from None

    async def get(self, tenant: str, id: str) -> state_pb2.StoredResponse:
        """The stored response; 404 GatewayError when absent or expired."""
        try:
            return await self._stub.Get(state_pb2.GetRequest(id=id, tenant=tenant),
                                        timeout=self.read_timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as e:
            raise grpc_to_gateway_error(e, "state", id) from None

    async def history(self, tenant: str, id: str) -> list[chat_pb2.Message]:
        """Messages of the conversation ending at `id`, oldest first, ready to prepend."""
        return list((await self.history_reply(tenant, id)).messages)

    async def history_reply(self, tenant: str, id: str) -> state_pb2.History:
        """The whole `History` reply: messages and the response ids of the chain."""
        try:
            return await self._stub.GetHistory(
                state_pb2.GetHistoryRequest(id=id, tenant=tenant),
                timeout=self.read_timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as e:
            raise grpc_to_gateway_error(e, "state", id) from None

    async def delete(self, tenant: str, id: str) -> bool:
        """True when a live response was deleted; False when there was none."""
        try:
            reply = await self._stub.Delete(state_pb2.DeleteRequest(id=id, tenant=tenant),
                                            timeout=self.write_timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as e:
            raise grpc_to_gateway_error(e, "state", id) from None
        return reply.deleted

    async def input_items(self, tenant: str, id: str) -> bytes:
        """The stored JSON array of input items; 404 GatewayError when absent."""
        try:
            reply = await self._stub.ListInputItems(
                state_pb2.ListInputItemsRequest(id=id, tenant=tenant),
                timeout=self.read_timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as e:
            raise grpc_to_gateway_error(e, "state", id) from None
        return reply.items_json

