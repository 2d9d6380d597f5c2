from switchyard.common.proto import chat_pb2 as _chat_pb2
from switchyard.common.proto import router_pb2 as _router_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateRequest(_message.Message):
    __slots__ = ("request", "plan", "request_id", "client_api_key", "forward_headers", "traceparent")
    class ForwardHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_API_KEY_FIELD_NUMBER: _ClassVar[int]
    FORWARD_HEADERS_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    request: _chat_pb2.ChatRequest
    plan: _router_pb2.RoutePlan
    request_id: str
    client_api_key: str
    forward_headers: _containers.ScalarMap[str, str]
    traceparent: str
    def __init__(self, request: _Optional[_Union[_chat_pb2.ChatRequest, _Mapping]] = ..., plan: _Optional[_Union[_router_pb2.RoutePlan, _Mapping]] = ..., request_id: _Optional[str] = ..., client_api_key: _Optional[str] = ..., forward_headers: _Optional[_Mapping[str, str]] = ..., traceparent: _Optional[str] = ...) -> None: ...

class MuxRequest(_message.Message):
    __slots__ = ("id", "generate", "cancel", "whole")
    ID_FIELD_NUMBER: _ClassVar[int]
    GENERATE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    WHOLE_FIELD_NUMBER: _ClassVar[int]
    id: int
    generate: GenerateRequest
    cancel: bool
    whole: bool
    def __init__(self, id: _Optional[int] = ..., generate: _Optional[_Union[GenerateRequest, _Mapping]] = ..., cancel: _Optional[bool] = ..., whole: _Optional[bool] = ...) -> None: ...

class MuxReply(_message.Message):
    __slots__ = ("id", "batch", "last")
    ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    id: int
    batch: _chat_pb2.EventBatch
    last: bool
    def __init__(self, id: _Optional[int] = ..., batch: _Optional[_Union[_chat_pb2.EventBatch, _Mapping]] = ..., last: _Optional[bool] = ...) -> None: ...

class MuxRequests(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[MuxRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[MuxRequest, _Mapping]]] = ...) -> None: ...

class MuxReplies(_message.Message):
    __slots__ = ("replies",)
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[MuxReply]
    def __init__(self, replies: _Optional[_Iterable[_Union[MuxReply, _Mapping]]] = ...) -> None: ...

class CountTokensReply(_message.Message):
    __slots__ = ("input_tokens", "estimated")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    estimated: bool
    def __init__(self, input_tokens: _Optional[int] = ..., estimated: _Optional[bool] = ...) -> None: ...
