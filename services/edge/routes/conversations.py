"""OpenAI's Conversations API: conversations and their items, kept by the state service under
the caller's tenant. Items are validated and normalised as Responses input items are (ids
minted where missing), so any of them can be the history of a later `conversation` turn.
Errors are OpenAI's error bodies; another tenant's conversation is a 404 like an absent one."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from switchyard.common.errors import echo, invalid_request
from switchyard.common.proto import state_pb2
from switchyard.edge.formats.fields import MAX_ID_CHARS, check_name
from switchyard.edge.formats.openai_responses import FORMAT
from switchyard.edge.formats.openai_responses.request import (
    check_conversation_id,
    check_metadata,
    items_to_history,
    normalise_items,
)
from switchyard.edge.pipeline import read_json
from switchyard.edge.routes.common import backends, guarded, tenant_of

# How many items one create call may add, as OpenAI allows.
MAX_ITEMS_PER_CALL = 20
# `include` values the API knows (ResponseIncludable). Stored items keep everything they
# were given (encrypted reasoning included), so each is accepted and already satisfied.
INCLUDABLE = frozenset({
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "message.input_image.image_url", "computer_call_output.output.image_url",
    "code_interpreter_call.outputs", "reasoning.encrypted_content",
    "message.output_text.logprobs"})


def _json(obj: Any) -> Response:
    return Response(orjson.dumps(obj), media_type="application/json")


def _conversation_id(request: Request) -> str:
    """The path's conversation id, refused (400) before any backend call when malformed."""
    conversation_id: str = request.path_params["conversation_id"]
    check_conversation_id(conversation_id, "conversation_id")
    return conversation_id


def _item_id(request: Request) -> str:
    item_id: str = request.path_params["item_id"]
    check_name(item_id, "item_id", MAX_ID_CHARS)
    return item_id


def _check_include(request: Request) -> None:
    """`include` (`include[]` as the SDK spells arrays): known values only."""
    q = request.query_params
    for value in (*q.getlist("include"), *q.getlist("include[]")):
        if value not in INCLUDABLE:
            raise invalid_request(f"Invalid 'include': unknown value '{echo(value)}'.",
                                  "include")


async def _body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    body = await read_json(request)
    for key in body:
        if key not in allowed:
            raise invalid_request(f"Unknown parameter: '{echo(key)}'.", echo(key))
    return body


def _metadata_json(value: Any) -> bytes:
    return orjson.dumps({} if value is None else check_metadata(value))


def _new_items(raw: Any, *, required: bool) -> list[state_pb2.ConversationItem]:
    """The body's `items`: at most 20 input items, each normalised and fit to be history."""
    if raw is None and not required:
        return []
    if raw is None:
        raise invalid_request("Missing required parameter: 'items'.", "items")
    items = normalise_items(raw, "items")
    if len(items) > MAX_ITEMS_PER_CALL:
        raise invalid_request(f"Invalid 'items': array too long. Expected an array with "
                              f"maximum length {MAX_ITEMS_PER_CALL}, but got an array with "
                              f"length {len(items)} instead.", "items")
    if required and not items:
        raise invalid_request("Invalid 'items': empty array. Expected an array with minimum "
                              "length 1, but got an empty array instead.", "items")
    items_to_history(items, [])   # a part no turn could send (e.g. a bad data URL) is a 400 now
    return [state_pb2.ConversationItem(id=item["id"], item_json=orjson.dumps(item))
            for item in items]


def conversation_object(conv: state_pb2.Conversation) -> dict[str, Any]:
    """The `conversation` object as the API returns it."""
    return {"id": conv.id, "object": "conversation", "created_at": conv.created_at,
            "metadata": orjson.loads(conv.metadata_json or b"{}")}


def item_list(items: list[state_pb2.ConversationItem], has_more: bool) -> dict[str, Any]:
    """A `list` of conversation items; first_id/last_id are null for an empty page."""
    return {"object": "list", "data": [orjson.loads(i.item_json) for i in items],
            "first_id": items[0].id if items else None,
            "last_id": items[-1].id if items else None, "has_more": has_more}


# ---- conversations -------------------------------------------------------------------------

@guarded(FORMAT)
async def create_conversation(request: Request) -> Response:
    body = await _body(request, frozenset({"items", "metadata"}))
    metadata = _metadata_json(body.get("metadata"))
    items = _new_items(body.get("items"), required=False)
    conv = await backends(request).state.create_conversation(tenant_of(request), metadata,
                                                             items)
    return _json(conversation_object(conv))


@guarded(FORMAT)
async def get_conversation(request: Request) -> Response:
    conv = await backends(request).state.get_conversation(tenant_of(request),
                                                          _conversation_id(request))
    return _json(conversation_object(conv))


@guarded(FORMAT)
async def update_conversation(request: Request) -> Response:
    conversation_id = _conversation_id(request)
    body = await _body(request, frozenset({"metadata"}))
    if "metadata" not in body:
        raise invalid_request("Missing required parameter: 'metadata'.", "metadata")
    conv = await backends(request).state.update_conversation(
        tenant_of(request), conversation_id, _metadata_json(body["metadata"]))
    return _json(conversation_object(conv))


@guarded(FORMAT)
async def delete_conversation(request: Request) -> Response:
    conversation_id = _conversation_id(request)
    await backends(request).state.delete_conversation(tenant_of(request), conversation_id)
    return _json({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


# ---- items ---------------------------------------------------------------------------------

@guarded(FORMAT)
async def create_items(request: Request) -> Response:
    conversation_id = _conversation_id(request)
    _check_include(request)
    body = await _body(request, frozenset({"items"}))
    items = _new_items(body.get("items"), required=True)
    await backends(request).state.append_items(tenant_of(request), conversation_id, items)
    return _json(item_list(items, False))


@guarded(FORMAT)
async def list_items(request: Request) -> Response:
    conversation_id = _conversation_id(request)
    _check_include(request)
    q = request.query_params
    try:
        limit = int(q.get("limit", "20"))
    except ValueError:
        raise invalid_request("limit must be an integer", "limit") from None
    if not 1 <= limit <= 100:
        raise invalid_request("limit must be between 1 and 100", "limit")
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_request("order must be 'asc' or 'desc'", "order")
    after = q.get("after", "")
    if after:
        check_name(after, "after", MAX_ID_CHARS)
    page = await backends(request).state.list_items(
        tenant_of(request), conversation_id, after=after, limit=limit,
        descending=order == "desc")
    return _json(item_list(list(page.items), page.has_more))


@guarded(FORMAT)
async def get_item(request: Request) -> Response:
    conversation_id = _conversation_id(request)
    _check_include(request)
    item = await backends(request).state.get_item(tenant_of(request), conversation_id,
                                                  _item_id(request))
    return Response(item.item_json, media_type="application/json")


@guarded(FORMAT)
async def delete_item(request: Request) -> Response:
    conversation_id = _conversation_id(request)
    conv = await backends(request).state.delete_item(tenant_of(request), conversation_id,
                                                     _item_id(request))
    return _json(conversation_object(conv))
