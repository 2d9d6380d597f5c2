"""The State gRPC service: a thin mapping from the State contract onto a `Store`."""
from __future__ import annotations

import logging
import sys

import grpc

from switchyard.common.config import reload
from switchyard.common.config.model import Config, StateStorage
from switchyard.common.errors import RESPONSE_NOT_FOUND, echo
from switchyard.common.grpc_server import run_server
from switchyard.common.proto import state_pb2, state_pb2_grpc
from switchyard.state.stores.base import (
    ConversationNotFound,
    InvalidInput,
    ItemNotFound,
    NotFound,
    Store,
    StoreUnavailable,
    TooDeep,
    key_problem,
    new_conversation_id,
    tenant_key,
    text_problem,
)
from switchyard.state.stores.memory import MemoryStore

log = logging.getLogger(__name__)
SERVICE_NAME = "switchyard.v1.State"
KeyedRequest = (state_pb2.GetRequest | state_pb2.GetHistoryRequest | state_pb2.DeleteRequest
                | state_pb2.ListInputItemsRequest | state_pb2.ConversationKey
                | state_pb2.UpdateConversationRequest)
# NOT_FOUND details of conversations, in OpenAI's words: the edge passes them to the client.
CONVERSATION_NOT_FOUND = "Conversation with id '{subject}' not found."
ITEM_NOT_FOUND = "Item with id '{subject}' not found."
AFTER_NOT_FOUND = "Invalid 'after': no item with id '{subject}' in this conversation."


def make_store(cfg: StateStorage) -> Store:
    """The backend `state_storage` asks for; a config error is a SystemExit with a reason."""
    if cfg.type == "memory":
        return MemoryStore(max_entries=cfg.max_entries, ttl_seconds=cfg.ttl_seconds)
    if cfg.type == "postgres":
        if not cfg.connection_string:
            raise SystemExit("state_storage: type postgres needs a connection_string")
        # Imported here: asyncpg (~3.5 MB) is not loaded by a state service keeping memory.
        from switchyard.state.stores.postgres import PostgresStore
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

    # ---- conversations ---------------------------------------------------------------------

    async def CreateConversation(self, request: state_pb2.CreateConversationRequest,
                                 context: grpc.aio.ServicerContext) -> state_pb2.Conversation:
        await _check(context, key_problem(tenant=request.tenant)
                     or _items_problem(request.items))
        conv = state_pb2.Conversation(id=new_conversation_id(),
                                      tenant=tenant_key(request.tenant),
                                      metadata_json=request.metadata_json)
        created: state_pb2.Conversation = await self._call(
            context, self.store.create_conversation(conv, list(request.items)))
        return created

    async def GetConversation(self, request: state_pb2.ConversationKey,
                              context: grpc.aio.ServicerContext) -> state_pb2.Conversation:
        await _check_key(context, request)
        found = await self._call(context, self.store.get_conversation(
            tenant_key(request.tenant), request.id))
        if found is None:
            await _abort_not_found(context, CONVERSATION_NOT_FOUND, request.id)
        return found

    async def UpdateConversation(self, request: state_pb2.UpdateConversationRequest,
                                 context: grpc.aio.ServicerContext) -> state_pb2.Conversation:
        await _check_key(context, request)
        found = await self._call(context, self.store.update_conversation(
            tenant_key(request.tenant), request.id, request.metadata_json))
        if found is None:
            await _abort_not_found(context, CONVERSATION_NOT_FOUND, request.id)
        return found

    async def DeleteConversation(self, request: state_pb2.ConversationKey,
                                 context: grpc.aio.ServicerContext) -> state_pb2.DeleteReply:
        await _check_key(context, request)
        deleted = await self._call(context, self.store.delete_conversation(
            tenant_key(request.tenant), request.id))
        if not deleted:   # unlike stored responses: OpenAI answers 404 here
            await _abort_not_found(context, CONVERSATION_NOT_FOUND, request.id)
        return state_pb2.DeleteReply(deleted=True)

    async def AppendItems(self, request: state_pb2.AppendItemsRequest,
                          context: grpc.aio.ServicerContext) -> state_pb2.ConversationItems:
        await _check(context, key_problem(id=request.conversation_id, tenant=request.tenant)
                     or _items_problem(request.items))
        await self._call(context, self.store.append_items(
            tenant_key(request.tenant), request.conversation_id, list(request.items)))
        return state_pb2.ConversationItems(items=request.items)

    async def ListItems(self, request: state_pb2.ListItemsRequest,
                        context: grpc.aio.ServicerContext) -> state_pb2.ConversationItems:
        await _check(context, key_problem(id=request.conversation_id, tenant=request.tenant,
                                          after=request.after))
        if request.limit < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "limit must not be negative")
        items, more = await self._call(context, self.store.list_items(
            tenant_key(request.tenant), request.conversation_id, after=request.after,
            limit=request.limit, descending=request.descending), after=True)
        return state_pb2.ConversationItems(items=items, has_more=more)

    async def GetItem(self, request: state_pb2.ItemKey,
                      context: grpc.aio.ServicerContext) -> state_pb2.ConversationItem:
        await _check_item_key(context, request)
        item: state_pb2.ConversationItem = await self._call(context, self.store.get_item(
            tenant_key(request.tenant), request.conversation_id, request.item_id))
        return item

    async def DeleteItem(self, request: state_pb2.ItemKey,
                         context: grpc.aio.ServicerContext) -> state_pb2.Conversation:
        await _check_item_key(context, request)
        conv: state_pb2.Conversation = await self._call(context, self.store.delete_item(
            tenant_key(request.tenant), request.conversation_id, request.item_id))
        return conv

    async def _call(self, context: grpc.aio.ServicerContext, op, *, after: bool = False):
        """Await a store operation, turning store errors into gRPC statuses (`after`: an
        unknown item is the list's `after`, a bad argument)."""
        try:
            return await op
        except NotFound as e:
            await _not_found(context, str(e))
        except ConversationNotFound as e:
            await _abort_not_found(context, CONVERSATION_NOT_FOUND, str(e))
        except ItemNotFound as e:
            if after:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    AFTER_NOT_FOUND.format(subject=echo(str(e))))
            await _abort_not_found(context, ITEM_NOT_FOUND, str(e))
        except TooDeep as e:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except InvalidInput as e:  # the value's fault, not an outage: no warning
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except StoreUnavailable as e:
            log.warning("state: backend unavailable: %s", e)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))


async def _not_found(context: grpc.aio.ServicerContext, id: str) -> None:
    await context.abort(grpc.StatusCode.NOT_FOUND, RESPONSE_NOT_FOUND.format(subject=echo(id)))


async def _abort_not_found(context: grpc.aio.ServicerContext, template: str, id: str) -> None:
    await context.abort(grpc.StatusCode.NOT_FOUND, template.format(subject=echo(id)))


def _items_problem(items) -> str:
    """Why these items cannot be stored (an empty, unusable or repeated id); "" if they can."""
    seen: set[str] = set()
    for item in items:
        if not item.id:
            return "every conversation item needs an id"
        problem = key_problem(item_id=item.id)
        if problem:
            return problem
        if item.id in seen:
            return "an item with this id is already in the conversation"
        seen.add(item.id)
    return ""


async def _check_item_key(context: grpc.aio.ServicerContext, request: state_pb2.ItemKey) -> None:
    await _check(context, key_problem(id=request.conversation_id, tenant=request.tenant,
                                      item_id=request.item_id))


async def _check(context: grpc.aio.ServicerContext, problem: str) -> None:
    """INVALID_ARGUMENT before any store call when a request names an unusable value."""
    if problem:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)


async def _check_key(context: grpc.aio.ServicerContext, request: KeyedRequest) -> None:
    await _check(context, key_problem(id=request.id, tenant=request.tenant))


def reconfigure(servicer: StateServicer, cfg: StateStorage) -> None:
    """A reloaded `state_storage`: the TTL of what is written from now, the history depth
    and the memory store's bound. Another backend or DSN waits for a restart."""
    servicer.max_depth = cfg.max_depth
    store = servicer.store
    postgres = sys.modules.get("switchyard.state.stores.postgres")   # loaded only if in use
    if isinstance(store, MemoryStore) or (
            postgres is not None and isinstance(store, postgres.PostgresStore)):
        store.ttl_seconds = cfg.ttl_seconds
    if isinstance(store, MemoryStore):
        store.max_entries = cfg.max_entries


async def serve(config: Config, address: str = "", token: str | None = None, *,
                allow_unsupported: bool = False) -> None:
    """Run the state service on `address` (default: config.services.state) until signalled
    (`token`: see run_server), applying config changes as they come (config/reload.py)."""
    store = make_store(config.state)
    try:
        await store.start()
    except StoreUnavailable as e:
        raise SystemExit(f"state: {e}") from None
    servicer = StateServicer(store, config.state.max_depth)
    log.info("state: %s store, ttl %ss, max depth %d", config.state.type,
             config.state.ttl_seconds, config.state.max_depth)

    async def apply(new: Config) -> None:
        reconfigure(servicer, new.state)

    watcher = reload.watch(config, "state", apply, allow_unsupported=allow_unsupported)

    async def on_stop() -> None:
        if watcher is not None:
            await watcher.close()
        await store.close()

    try:
        await run_server(SERVICE_NAME, address or config.services.state,
                         lambda server: state_pb2_grpc.add_StateServicer_to_server(servicer,
                                                                                    server),
                         on_stop=on_stop, token=token, tracing=config.tracing,
                         config=config)
    except BaseException:
        await store.close()
        raise
    finally:
        if watcher is not None:
            await watcher.close()
