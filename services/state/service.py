"""The State gRPC service: a thin mapping from the State contract onto a `Store`."""
from __future__ import annotations

import logging

import grpc

from switchyard.common.config.model import Config, StateStorage
from switchyard.common.errors import RESPONSE_NOT_FOUND, echo
from switchyard.common.grpc_server import run_server
from switchyard.common.proto import state_pb2, state_pb2_grpc
from switchyard.state.stores.base import (
    InvalidInput,
    NotFound,
    Store,
    StoreUnavailable,
    TooDeep,
    key_problem,
    tenant_key,
    text_problem,
)
from switchyard.state.stores.memory import MemoryStore
from switchyard.state.stores.postgres import PostgresStore

log = logging.getLogger(__name__)
SERVICE_NAME = "switchyard.v1.State"
KeyedRequest = (state_pb2.GetRequest | state_pb2.GetHistoryRequest | state_pb2.DeleteRequest
                | state_pb2.ListInputItemsRequest)


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
        await _check(context, key_problem(id=resp.id, tenant=resp.tenant,
                                          previous_response_id=resp.previous_response_id)
                     or text_problem(model=resp.model, provider=resp.provider, kind=resp.kind))
        resp.tenant = tenant_key(resp.tenant)
        await self._call(context, self.store.put(resp))
        return state_pb2.PutReply()

    async def Get(self, request: state_pb2.GetRequest,
                  context: grpc.aio.ServicerContext) -> state_pb2.StoredResponse:
        await _check_key(context, request)
        found = await self._call(context, self.store.get(tenant_key(request.tenant), request.id))
        if found is None:
            await _not_found(context, request.id)
        return found

    async def GetHistory(self, request: state_pb2.GetHistoryRequest,
                         context: grpc.aio.ServicerContext) -> state_pb2.History:
        await _check_key(context, request)
        messages, ids = await self._call(context, self.store.history(
            tenant_key(request.tenant), request.id, self.max_depth))
        return state_pb2.History(messages=messages, response_ids=ids)

    async def Delete(self, request: state_pb2.DeleteRequest,
                     context: grpc.aio.ServicerContext) -> state_pb2.DeleteReply:
        await _check_key(context, request)
        deleted = await self._call(context, self.store.delete(tenant_key(request.tenant),
                                                              request.id))
        return state_pb2.DeleteReply(deleted=deleted)

    async def ListInputItems(self, request: state_pb2.ListInputItemsRequest,
                             context: grpc.aio.ServicerContext) -> state_pb2.InputItems:
        await _check_key(context, request)
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
        except InvalidInput as e:  # the value's fault, not an outage: no warning
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except StoreUnavailable as e:
            log.warning("state: backend unavailable: %s", e)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))


async def _not_found(context: grpc.aio.ServicerContext, id: str) -> None:
    await context.abort(grpc.StatusCode.NOT_FOUND, RESPONSE_NOT_FOUND.format(subject=echo(id)))


async def _check(context: grpc.aio.ServicerContext, problem: str) -> None:
    """INVALID_ARGUMENT before any store call when a request names an unusable value."""
    if problem:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)


async def _check_key(context: grpc.aio.ServicerContext, request: KeyedRequest) -> None:
    await _check(context, key_problem(id=request.id, tenant=request.tenant))


async def serve(config: Config, address: str = "", token: str | None = None) -> None:
    """Run the state service on `address` (default: config.services.state) until signalled
    (`token`: see run_server)."""
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
                         on_stop=store.close, token=token, tracing=config.tracing)
    except BaseException:
        await store.close()
        raise
