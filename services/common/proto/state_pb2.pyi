from switchyard.common.proto import chat_pb2 as _chat_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoredResponse(_message.Message):
    __slots__ = ("id", "tenant", "model", "provider", "previous_response_id", "input", "output", "usage", "created_at", "expires_at", "body_json", "input_items_json", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    BODY_JSON_FIELD_NUMBER: _ClassVar[int]
    INPUT_ITEMS_JSON_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    model: str
    provider: str
    previous_response_id: str
    input: _containers.RepeatedCompositeFieldContainer[_chat_pb2.Message]
    output: _containers.RepeatedCompositeFieldContainer[_chat_pb2.Message]
    usage: _chat_pb2.Usage
    created_at: int
    expires_at: int
    body_json: bytes
    input_items_json: bytes
    kind: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., previous_response_id: _Optional[str] = ..., input: _Optional[_Iterable[_Union[_chat_pb2.Message, _Mapping]]] = ..., output: _Optional[_Iterable[_Union[_chat_pb2.Message, _Mapping]]] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ..., created_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., body_json: _Optional[bytes] = ..., input_items_json: _Optional[bytes] = ..., kind: _Optional[str] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: StoredResponse
    def __init__(self, response: _Optional[_Union[StoredResponse, _Mapping]] = ...) -> None: ...

class PutReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("id", "tenant")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("id", "tenant")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class History(_message.Message):
    __slots__ = ("messages", "response_ids")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_IDS_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_chat_pb2.Message]
    response_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, messages: _Optional[_Iterable[_Union[_chat_pb2.Message, _Mapping]]] = ..., response_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("id", "tenant")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class DeleteReply(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class ListInputItemsRequest(_message.Message):
    __slots__ = ("id", "tenant")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class InputItems(_message.Message):
    __slots__ = ("items_json",)
    ITEMS_JSON_FIELD_NUMBER: _ClassVar[int]
    items_json: bytes
    def __init__(self, items_json: _Optional[bytes] = ...) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("id", "tenant", "metadata_json", "created_at", "expires_at", "item_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ITEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    metadata_json: bytes
    created_at: int
    expires_at: int
    item_count: int
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., metadata_json: _Optional[bytes] = ..., created_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., item_count: _Optional[int] = ...) -> None: ...

class ConversationItem(_message.Message):
    __slots__ = ("id", "item_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    item_json: bytes
    def __init__(self, id: _Optional[str] = ..., item_json: _Optional[bytes] = ...) -> None: ...

class CreateConversationRequest(_message.Message):
    __slots__ = ("tenant", "metadata_json", "items")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    metadata_json: bytes
    items: _containers.RepeatedCompositeFieldContainer[ConversationItem]
    def __init__(self, tenant: _Optional[str] = ..., metadata_json: _Optional[bytes] = ..., items: _Optional[_Iterable[_Union[ConversationItem, _Mapping]]] = ...) -> None: ...

class ConversationKey(_message.Message):
    __slots__ = ("id", "tenant")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class UpdateConversationRequest(_message.Message):
    __slots__ = ("id", "tenant", "metadata_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    metadata_json: bytes
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., metadata_json: _Optional[bytes] = ...) -> None: ...

class AppendItemsRequest(_message.Message):
    __slots__ = ("conversation_id", "tenant", "items")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    tenant: str
    items: _containers.RepeatedCompositeFieldContainer[ConversationItem]
    def __init__(self, conversation_id: _Optional[str] = ..., tenant: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ConversationItem, _Mapping]]] = ...) -> None: ...

class ListItemsRequest(_message.Message):
    __slots__ = ("conversation_id", "tenant", "after", "limit", "descending")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    tenant: str
    after: str
    limit: int
    descending: bool
    def __init__(self, conversation_id: _Optional[str] = ..., tenant: _Optional[str] = ..., after: _Optional[str] = ..., limit: _Optional[int] = ..., descending: _Optional[bool] = ...) -> None: ...

class ConversationItems(_message.Message):
    __slots__ = ("items", "has_more")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ConversationItem]
    has_more: bool
    def __init__(self, items: _Optional[_Iterable[_Union[ConversationItem, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class ItemKey(_message.Message):
    __slots__ = ("conversation_id", "tenant", "item_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    tenant: str
    item_id: str
    def __init__(self, conversation_id: _Optional[str] = ..., tenant: _Optional[str] = ..., item_id: _Optional[str] = ...) -> None: ...
