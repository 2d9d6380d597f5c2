from switchyard.common.proto import chat_pb2 as _chat_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Target(_message.Message):
    __slots__ = ("provider", "model", "wire", "weight")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WIRE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    wire: _chat_pb2.WireFormat
    weight: int
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., wire: _Optional[_Union[_chat_pb2.WireFormat, str]] = ..., weight: _Optional[int] = ...) -> None: ...

class RoutePlan(_message.Message):
    __slots__ = ("name", "targets", "weighted_count", "max_retries", "timeout_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    targets: _containers.RepeatedCompositeFieldContainer[Target]
    weighted_count: int
    max_retries: int
    timeout_s: float
    def __init__(self, name: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[Target, _Mapping]]] = ..., weighted_count: _Optional[int] = ..., max_retries: _Optional[int] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("id", "owned_by", "created", "alias")
    ID_FIELD_NUMBER: _ClassVar[int]
    OWNED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    id: str
    owned_by: str
    created: int
    alias: bool
    def __init__(self, id: _Optional[str] = ..., owned_by: _Optional[str] = ..., created: _Optional[int] = ..., alias: _Optional[bool] = ...) -> None: ...

class ModelList(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class RouteTable(_message.Message):
    __slots__ = ("version", "routes", "known_names", "models")
    class RoutesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RoutePlan
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RoutePlan, _Mapping]] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    KNOWN_NAMES_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    version: int
    routes: _containers.MessageMap[str, RoutePlan]
    known_names: _containers.RepeatedScalarFieldContainer[str]
    models: ModelList
    def __init__(self, version: _Optional[int] = ..., routes: _Optional[_Mapping[str, RoutePlan]] = ..., known_names: _Optional[_Iterable[str]] = ..., models: _Optional[_Union[ModelList, _Mapping]] = ...) -> None: ...

class WatchRoutesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RouteMessage(_message.Message):
    __slots__ = ("role", "text")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    role: _chat_pb2.Role
    text: str
    def __init__(self, role: _Optional[_Union[_chat_pb2.Role, str]] = ..., text: _Optional[str] = ...) -> None: ...

class RoutePreference(_message.Message):
    __slots__ = ("name", "description", "models", "prefer")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    PREFER_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    models: _containers.RepeatedScalarFieldContainer[str]
    prefer: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., prefer: _Optional[str] = ...) -> None: ...

class TargetLatency(_message.Message):
    __slots__ = ("provider", "model", "ms")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    ms: float
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., ms: _Optional[float] = ...) -> None: ...

class RouteRequest(_message.Message):
    __slots__ = ("model", "messages", "has_preferences", "preferences", "latencies", "request_id", "traceparent", "allowed")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    HAS_PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    LATENCIES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[RouteMessage]
    has_preferences: bool
    preferences: _containers.RepeatedCompositeFieldContainer[RoutePreference]
    latencies: _containers.RepeatedCompositeFieldContainer[TargetLatency]
    request_id: str
    traceparent: str
    allowed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[RouteMessage, _Mapping]]] = ..., has_preferences: _Optional[bool] = ..., preferences: _Optional[_Iterable[_Union[RoutePreference, _Mapping]]] = ..., latencies: _Optional[_Iterable[_Union[TargetLatency, _Mapping]]] = ..., request_id: _Optional[str] = ..., traceparent: _Optional[str] = ..., allowed: _Optional[_Iterable[str]] = ...) -> None: ...

class RouteDecision(_message.Message):
    __slots__ = ("route", "models", "plan", "router", "reason", "score")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    ROUTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    route: str
    models: _containers.RepeatedScalarFieldContainer[str]
    plan: RoutePlan
    router: str
    reason: str
    score: float
    def __init__(self, route: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., plan: _Optional[_Union[RoutePlan, _Mapping]] = ..., router: _Optional[str] = ..., reason: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
