"""The State gRPC service: a thin mapping from the State contract onto a `Store`."""
from __future__ import annotations

import logging

import grpc

from switchyard.common.config.model import Config, StateStorage
from switchyard.common.grpc_server import run_server
from switchyard.common.proto import state_pb2, state_pb2_grpc
from switchyard.state.stores.base import NotFound, Store, StoreUnavailable, TooDeep, tenant_key
from switchyard.state.stores.memory import MemoryStore
from switchyard.state.stores.postgres import PostgresStore

log = logging.getLogger(__name__)
SERVICE_NAME = "switchyard.v1.State"


def make_store(cfg: StateStorage) -> Store:
    """The backend `state_storage` asks for; a config error is a SystemExit with a reason."""
    if cfg.type == "memory":
        return MemoryStore(max_entries=cfg.max_entries, ttl_seconds=cfg.ttl_seconds)
    if cfg.type == "postgres":
        if not cfg.connection_string:
            raise SystemExit("state_storage: type postgres needs a connection_string")
        return PostgresStore(cfg.connection_string, ttl_seconds=cfg.ttl_seconds)
    raise SystemExit(f"state_storage: unknown type {cfg.type!r} (expected memory or postgres)")


class StateServicer(state_pb2_grpc.StateServicer):
    """Serves the State contract from a store; an empty tenant is the default tenant."""

    def __init__(self, store: Store, max_depth: int = 1000) -> None:
        self.store = store
        self.max_depth = max_depth

    async def Put(self, request: state_pb2.PutRequest,
                  context: grpc.aio.ServicerContext) -> state_pb2.PutReply:
        resp = request.response
        if not resp.id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "response id is required")
        resp.tenant = tenant_key(resp.tenant)
        await self._call(context, self.store.put(resp))
        return state_pb2.PutReply()

    async def Get(self, request: state_pb2.GetRequest,
                  context: grpc.aio.ServicerContext) -> state_pb2.StoredResponse:
        found = await self._call(context, self.store.get(tenant_key(request.tenant), request.id))
        if found is None:
            await _not_found(context, request.id)
        return found

    async def GetHistory(self, request: state_pb2.GetHistoryRequest,
                         context: grpc.aio.ServicerContext) -> state_pb2.History:
        messages, ids = await self._call(context, self.store.history(
            tenant_key(request.tenant), request.id, self.max_depth))
        return state_pb2.History(messages=messages, response_ids=ids)

    async def Delete(self, request: state_pb2.DeleteRequest,
                     context: grpc.aio.ServicerContext) -> state_pb2.DeleteReply:
        deleted = await self._call(context, self.store.delete(tenant_key(request.tenant),
                                                              request.id))
        return state_pb2.DeleteReply(deleted=deleted)

    async def ListInputItems(self, request: state_pb2.ListInputItemsRequest,
                             context: grpc.aio.ServicerContext) -> state_pb2.InputItems:
        items = await self._call(context, self.store.input_items(tenant_key(request.tenant),
                                                                 request.id))
        if items is None:
            await _not_found(context, request.id)
        return state_pb2.InputItems(items_json=items)

    async def _call(self, context: grpc.aio.ServicerContext, op):
        """Await a store operation, turning store errors into gRPC statuses."""
        try:
            return await op
        except NotFound as e:
            await _not_found(context, str(e))
        except TooDeep as e:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except StoreUnavailable as e:
            log.warning("state: backend unavailable: %s", e)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))


async def _not_found(context: grpc.aio.ServicerContext, id: str) -> None:
    await context.abort(grpc.StatusCode.NOT_FOUND, f"No response found with id '{id}'.")


async def serve(config: Config, address: str = "") -> None:
    """Run the state service on `address` (default: config.services.state) until signalled."""
    store = make_store(config.state)
    try:
        await store.start()
    except StoreUnavailable as e:
        raise SystemExit(f"state: {e}") from None
    servicer = StateServicer(store, config.state.max_depth)
    log.info("state: %s store, ttl %ss, max depth %d", config.state.type,
             config.state.ttl_seconds, config.state.max_depth)
    try:
        await run_server(SERVICE_NAME, address or config.services.state,
                         lambda server: state_pb2_grpc.add_StateServicer_to_server(servicer,
                                                                                    server),
                         on_stop=store.close)
    except BaseException:
        await store.close()
        raise
