"""The parsed configuration: plain frozen dataclasses every service reads its part of."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchyard.common.config import descriptors


@dataclass(frozen=True)
class Price:
    """USD per million tokens; a cache price left out costs as much as plain input."""
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True)
class ProviderEntry:
    """One `model_providers` entry, resolved."""
    name: str                   # unique entry name: `name:` or the model string ("openai/gpt-4o")
    provider: str               # prefix: openai, anthropic, ollama, vllm, ...
    model: str                  # upstream model name, or "*" for a wildcard entry
    interface: str              # "openai" or "anthropic"
    endpoint: str               # full URL of the chat operation ({model} for Azure deployments)
    auth: str                   # bearer | api-key | x-api-key | none
    access_key: str | None = field(default=None, repr=False)
    default: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    passthrough_auth: bool = False
    api_version: str | None = None         # Azure
    default_max_tokens: int | None = None  # overrides the per-model table
    index: int = 0                         # position in the file, for messages
    pricing: Price | None = None           # extension: USD per million tokens, beats catalogs

    @property
    def is_wildcard(self) -> bool:
        return self.model == "*"

    @property
    def public_name(self) -> str:
        """`provider/model` as users write it."""
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class WeightedTarget:
    model: str
    weight: int


@dataclass(frozen=True)
class Alias:
    name: str
    target: str | None = None
    fallbacks: tuple[str, ...] = ()
    targets: tuple[WeightedTarget, ...] = ()


@dataclass(frozen=True)
class Listener:
    name: str = "model_listener"
    address: str = "127.0.0.1"
    port: int = 12000
    timeout_s: float = 30.0
    max_retries: int = 2


@dataclass(frozen=True)
class StateStorage:
    type: str = "memory"                   # memory | postgres
    connection_string: str | None = field(default=None, repr=False)
    ttl_seconds: int = 30 * 24 * 3600
    max_entries: int = 100_000
    max_depth: int = 1000


@dataclass(frozen=True)
class ServiceAddresses:
    """Where the backend services listen (gRPC host:port or unix:/path)."""
    router: str = "127.0.0.1:12001"
    providers: str = "127.0.0.1:12002"
    state: str = "127.0.0.1:12003"
    # Services whose address the file or SWITCHYARD_<SERVICE>_ADDR names; `switchyard up`
    # gives the others private unix sockets, so two local gateways never share a backend.
    named: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ApiKey:
    """A gateway key, held only as its SHA-256 digest."""
    sha256: bytes = field(repr=False)
    tenant: str
    models: frozenset[str] | None = None   # allow-list; None = every model
    requests_per_minute: int | None = None  # overrides limits.requests_per_minute


@dataclass(frozen=True)
class Security:
    """Our extensions `auth:` and `limits:`. No keys = auth off (local use stays keyless)."""
    keys: tuple[ApiKey, ...] = ()
    max_body_bytes: int = 32 * 1024 * 1024
    requests_per_minute: int | None = None      # per key (per client address without auth)
    # Per edge process, counted from the end of the body read to the end of the answer
    # (streams included); beyond it: 503. Default: what the descriptors allow, at most 1024.
    max_concurrent_requests: int = field(default_factory=descriptors.default_max_concurrent)
    # Open client connections per edge process; beyond it a new one is closed at once.
    max_connections: int = field(default_factory=descriptors.connection_budget)
    header_timeout_s: float = 10.0   # complete request headers within this, else closed
    body_timeout_s: float = 30.0     # the whole body within this, else 408
    keep_alive_s: float = 5.0        # an idle keep-alive connection is closed after this
    drain_s: float = 30.0            # on SIGTERM: in-flight requests get this long, then 503

    @property
    def auth_enabled(self) -> bool:
        return bool(self.keys)


@dataclass(frozen=True)
class SpanAttributes:
    header_prefixes: tuple[str, ...] = ()     # lower-case; matching headers become attributes
    static: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Tracing:
    """Plano's `tracing:`; on only with sampling above 0 and an endpoint (file or env)."""
    random_sampling: float = 0.0              # percent of new traces kept
    endpoint: str | None = None               # opentracing_grpc_endpoint (OTLP over gRPC)
    trace_arch_internal: bool = False         # also the internal steps (docs/architecture.md)
    span_attributes: SpanAttributes = field(default_factory=SpanAttributes)
    record_content: bool = False              # extension: message text on the edge span


@dataclass(frozen=True)
class CostSource:
    """A `model_metrics_sources` entry of `type: cost`."""
    provider: str                             # models.dev | digitalocean
    url: str                                  # http(s)://, file:// or a path
    refresh_s: float = 3600.0
    aliases: tuple[tuple[str, str], ...] = () # catalog key -> our `provider/model`


@dataclass(frozen=True)
class Config:
    path: str
    version: str
    listener: Listener
    providers: tuple[ProviderEntry, ...]
    aliases: dict[str, Alias]
    state: StateStorage
    services: ServiceAddresses
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    security: Security = field(default_factory=Security)
    tracing: Tracing = field(default_factory=Tracing)
    cost_sources: tuple[CostSource, ...] = ()
    request_log: bool = False                 # extension `logging: {requests: json}`

    def provider(self, name: str) -> ProviderEntry | None:
        for p in self.providers:
            if p.name == name:
                return p
        return None
