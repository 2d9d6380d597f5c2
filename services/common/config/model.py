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
class AwsSettings:
    """How an `amazon_bedrock/` entry reaches AWS (config/bedrock.py): its region and, for
    SigV4, static keys (the entry's access_key + secret_key) or a profile of the standard
    credential chain (none given: the chain's default)."""
    region: str
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None


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
    aws: AwsSettings | None = None         # amazon_bedrock/ entries (auth sigv4 or bearer)

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
    # Plano's default; bounds each request's attempts up to the upstream's first byte (a
    # stream's first content), never the rest of the answer.
    timeout_s: float = 300.0
    max_retries: int = 2
    type: str = "model"                    # model (served) | prompt | agent (named, not served)


@dataclass(frozen=True)
class StateStorage:
    type: str = "memory"                   # memory | postgres
    connection_string: str | None = field(default=None, repr=False)
    ttl_seconds: int = 30 * 24 * 3600
    max_entries: int = 100_000
    max_depth: int = 1000


@dataclass(frozen=True)
class ServiceAddresses:
    """Where the backend services are reached: `host:port`, `dns:///name:port`, `unix:/path`,
    or several of those separated by commas (replicas; see `endpoints_of`)."""
    router: str = "127.0.0.1:12001"
    providers: str = "127.0.0.1:12002"
    state: str = "127.0.0.1:12003"
    # Services whose address the file or SWITCHYARD_<SERVICE>_ADDR names; `switchyard up`
    # gives the others private unix sockets, so two local gateways never share a backend.
    named: frozenset[str] = frozenset()
    # Servers end every client connection after this age (GOAWAY, gRPC adds ±10% jitter) so
    # clients reconnect and re-resolve: long-lived streams move to new replicas. None = never.
    max_connection_age_s: float | None = 60.0
    # Calls still open on such a connection get this long to finish; None = as long as
    # they need (the edge moves its streams at the GOAWAY, so only long answers remain).
    max_connection_age_grace_s: float | None = None


def endpoints_of(address: str) -> tuple[str, ...]:
    """The endpoints a service address names: its comma-separated parts, blanks dropped."""
    return tuple(part for part in (p.strip() for p in address.split(",")) if part)


@dataclass(frozen=True)
class ApiKey:
    """A gateway key, held only as its SHA-256 digest."""
    sha256: bytes = field(repr=False)
    tenant: str
    models: frozenset[str] | None = None   # allow-list; None = every model
    requests_per_minute: int | None = None  # overrides limits.requests_per_minute
    tokens_per_minute: int | None = None    # overrides limits.tokens_per_minute


@dataclass(frozen=True)
class RedisSettings:
    """A Redis every edge shares: our `redis:` extension (the limits), Plano's
    `routing.session_cache` (the routing pins)."""
    url: str = field(repr=False)           # may carry a password: shown only as `display`
    display: str = ""                      # the URL with any password replaced by ***
    on_unavailable: str = "allow"          # allow | deny, while Redis cannot be reached
    timeout_s: float = 0.25                # connect and reply bound of one Redis call


@dataclass(frozen=True)
class RateLimitRule:
    """One Plano `ratelimits` entry: `tokens` per `unit_s` seconds for requests to `model`
    that carry header `header` (with `value`; None: each value has its own budget)."""
    model: str
    header: str                            # lower-case header name
    value: str | None
    tokens: int
    unit: str                              # second | minute | hour | day
    unit_s: float


@dataclass(frozen=True)
class Security:
    """Our extensions `auth:`, `limits:` and `redis:`, and Plano's `ratelimits:`. No keys =
    auth off (local use stays keyless)."""
    keys: tuple[ApiKey, ...] = ()
    max_body_bytes: int = 32 * 1024 * 1024
    requests_per_minute: int | None = None      # per key (per client address without auth)
    tokens_per_minute: int | None = None        # per key (per client address without auth)
    # Per edge process, counted from the end of the body read to the end of the answer
    # (streams included); beyond it: 503. Default: what the descriptors allow, at most 1024.
    max_concurrent_requests: int = field(default_factory=descriptors.default_max_concurrent)
    # Open client connections per edge process; beyond it a new one is closed at once.
    max_connections: int = field(default_factory=descriptors.connection_budget)
    header_timeout_s: float = 10.0   # complete request headers within this, else closed
    body_timeout_s: float = 30.0     # the whole body within this, else 408
    keep_alive_s: float = 5.0        # an idle keep-alive connection is closed after this
    drain_s: float = 30.0            # on SIGTERM: in-flight requests get this long, then 503
    # Plano's `ratelimits:` and our `redis:` (None: limits are counted in this process).
    ratelimits: tuple[RateLimitRule, ...] = ()
    redis: RedisSettings | None = None

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
class LatencySource:
    """A `model_metrics_sources` entry of `type: latency`: a Prometheus query whose result is
    one value per `model_name` label, lower being faster (`prefer: fastest`)."""
    url: str = field(repr=False)              # the Prometheus base URL; may carry a password
    query: str = ""
    refresh_s: float = 60.0
    display: str = ""                         # the URL without its credentials


@dataclass(frozen=True)
class Filter:
    """A `filters` entry: a service that sees each request (input) or reply (output) of the
    model listener and may change or refuse it."""
    id: str
    url: str = field(repr=False)              # may carry credentials: never in a message
    type: str = "mcp"                         # mcp | http (Plano's default is mcp)
    tool: str = ""                            # MCP tool name; "" = the id
    timeout_s: float = 30.0                   # extension `timeout`: one call, whole
    fail_open: bool = False                   # extension: on failure go on without it


@dataclass(frozen=True)
class FilterChains:
    """The model listener's `filter_chain` + `input_filters` (in that order) and
    `output_filters`."""
    input: tuple[Filter, ...] = ()
    output: tuple[Filter, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.input or self.output)


@dataclass(frozen=True)
class Notice:
    """A line `check` and `up` print about a Plano key Switchyard does not serve as written.
    kind: unsupported (check fails, `up` needs --allow-unsupported), pending (accepted, not
    yet applied), ignored (accepted, no effect here) or deprecated (served, in an older
    form: config/routing.py's inline routing_preferences)."""
    kind: str
    line: str                                 # `file: place: what happens without it`


@dataclass(frozen=True)
class UpstreamOverrides:
    """Plano's `overrides` that mean something to the upstream HTTP client."""
    connect_timeout_s: float | None = None    # upstream_connect_timeout (TCP + TLS connect)
    tls_ca_path: str | None = None            # upstream_tls_ca_path: the only CAs trusted


@dataclass(frozen=True)
class RoutePreference:
    """One `routing_preferences` route: what it is for, and its ordered candidate pool."""
    name: str
    description: str
    models: tuple[str, ...]
    prefer: str = "none"                      # none | cheapest | fastest (selection_policy)


@dataclass(frozen=True)
class RoutingBudget:
    """Plano's `routing.routing_budget`: a session's switches away from the model its
    provider cache is warm on may cost at most `max_switch_pct` % of what staying would
    have (edge/routing_budget.py)."""
    max_switch_pct: float
    replenish_on_rebind: bool = True
    cache_read_discount: float = 0.1          # cached rate = input rate × this, unpublished
    record_counterfactual: bool = False


@dataclass(frozen=True)
class Routing:
    """Preference-aligned routing (config/routing.py): the routes, the routing model
    (`overrides.llm_routing_model`; None: the local embedding router) and `routing:`."""
    preferences: tuple[RoutePreference, ...] = ()
    llm_model: str | None = None
    llm_context_tokens: int = 8192            # overrides.orchestrator_model_context_length
    route_on_user_only: bool = False
    session_ttl_s: float = 600.0              # pins of route_on_user_only
    session_max_entries: int = 10_000         # of each edge's in-memory pins
    # routing.session_cache type: redis (None: each edge keeps its own pins in memory)
    session_cache: RedisSettings | None = None
    session_tenant_header: str = ""           # its header whose value prefixes the pin keys
    budget: RoutingBudget | None = None       # routing.routing_budget (None: switches are free)
    threshold: float = 0.05                   # extension: embedding similarity floor
    llm_timeout_s: float = 5.0                # extension: the routing model's answer bound

    @property
    def enabled(self) -> bool:
        """Requests can be routed: routes in the file, or a routing model for routes sent
        per request."""
        return bool(self.preferences) or self.llm_model is not None


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
    latency_sources: tuple[LatencySource, ...] = ()
    request_log: bool = False                 # extension `logging: {requests: json}`
    filters: FilterChains = field(default_factory=FilterChains)
    # What of Plano's config is not served (config/plano_scope.py), the listeners of types
    # we do not serve, Plano's `overrides` we honour, and the `.env` read beside the file.
    notices: tuple[Notice, ...] = ()
    unserved_listeners: tuple[Listener, ...] = ()
    upstream: UpstreamOverrides = field(default_factory=UpstreamOverrides)
    env_file: str | None = None
    routing: Routing = field(default_factory=Routing)
    # The one service this was read for (None: all), which leaves the other services'
    # secrets out (fields.SECRET_READERS); and the digest of the file and its `.env` as
    # read (loader.source_digest), which a reload compares.
    service: str | None = None
    source_digest: str = ""

    @property
    def has_state_storage(self) -> bool:
        """The file names `state_storage` (then chat completions are stored too, for
        `metadata.response_id`; the Responses API always is)."""
        return bool(self.raw.get("state_storage"))

    @property
    def unsupported(self) -> tuple[Notice, ...]:
        """Notices `check` fails on and `up` refuses without --allow-unsupported."""
        return tuple(n for n in self.notices if n.kind == "unsupported")

    def provider(self, name: str) -> ProviderEntry | None:
        for p in self.providers:
            if p.name == name:
                return p
        return None
