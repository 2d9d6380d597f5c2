"""The edge's front door, as one ASGI middleware: the request id on every answer, load
shedding, gateway keys, rate limits (edge/limits/). Runs before routing so a rejected
request costs almost nothing."""
from __future__ import annotations

import hashlib
import hmac
import math
import re
from typing import Any
from urllib.parse import parse_qsl

import orjson

from switchyard.common.config.model import ApiKey, Security
from switchyard.common.errors import GatewayError
from switchyard.edge import ids, limits
from switchyard.edge.formats import format_for_path
from switchyard.edge.limits.memory import RateLimiter as RateLimiter  # its old home

OPEN_PATHS = ("/healthz", "/readyz", "/metrics")
# A client's own request id is kept when it is a plain token; anything else gets a fresh one
# (it is echoed in headers and logs, so it must not carry control characters or be huge).
CLIENT_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")


def presented_key(headers: dict[bytes, bytes], query_string: bytes = b"") -> str:
    """The client's key: `Authorization: Bearer` (OpenAI SDK), `x-api-key` (Anthropic SDK),
    `x-goog-api-key` (Google's SDK) or Google's `?key=` query parameter."""
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    key = headers.get(b"x-api-key") or headers.get(b"x-goog-api-key")
    if key:
        return key.decode("latin-1").strip()
    if b"key=" in query_string:
        for k, v in parse_qsl(query_string.decode("latin-1")):
            if k == "key":
                return v.strip()
    return ""


def find_key(keys: tuple[ApiKey, ...], presented: str) -> ApiKey | None:
    """Compare against every configured digest in constant time."""
    digest = hashlib.sha256(presented.encode()).digest()
    found = None
    for k in keys:
        if hmac.compare_digest(k.sha256, digest):
            found = k
    return found


def authorize_model(state: dict[str, Any], model: str) -> None:
    """403 when the caller's key (in the request's `scope_state`) has an allow-list without
    this model."""
    key: ApiKey | None = state.get("api_key")
    if key is not None and key.models is not None and model not in key.models:
        raise GatewayError(403, f"this API key may not use model '{model}'", type="permission")


def with_request_id(scope: dict[str, Any], send: Any) -> Any:
    """Give the request its id (the client's `x-request-id` when sane, else a new one) and
    put it on the answer as `x-request-id` and `request-id` (Anthropic's name)."""
    rid = b""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            rid = value if CLIENT_REQUEST_ID.fullmatch(value) else b""
            break
    if not rid:
        rid = ids.request_id().encode()
    scope.setdefault("state", {})["request_id"] = rid.decode()

    async def send_with_id(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", ())
                       if h[0] not in (b"x-request-id", b"request-id")]
            headers += [(b"x-request-id", rid), (b"request-id", rid)]
            message = {**message, "headers": headers}
        await send(message)
    return send_with_id


def at_capacity() -> GatewayError:
    """The 503 of an edge at its concurrent request limit."""
    return GatewayError(503, "the gateway is at its concurrent request limit; retry shortly",
                        type="unavailable", retry_after=1.0)


class Slot:
    """A request's place among the edge's `max_concurrent_requests`. The guard puts one in
    scope state; it is taken once the body is read (`read_json`), so a slow upload holds a
    connection but no place, and the guard gives it back when the answer is done."""

    __slots__ = ("guard", "held")

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.held = False

    def take(self) -> None:
        """Count this request in; a 503 when the edge is full."""
        guard = self.guard
        if self.held:
            return
        if guard.inflight >= guard.security.max_concurrent_requests:
            raise at_capacity()
        guard.inflight += 1
        self.held = True


# Methods that carry no body: their place is taken at once, there is nothing to wait for.
BODILESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


class Guard:
    def __init__(self, app, security: Security) -> None:
        self.app = app
        self.security = security
        self.inflight = 0
        self.limits = limits.build(security)   # None: no limits configured, nothing counted

    def swap(self, security: Security, new_limits: limits.Limits | None) -> None:
        """A reloaded config's keys and limits, together: each request is let in under one
        config or the other (it reads both once); those already in keep what they hold."""
        self.security, self.limits = security, new_limits

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                send = self._closing_limits(send)
            await self.app(scope, receive, send)
            return
        send = with_request_id(scope, send)
        if scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        sec, lim = self.security, self.limits   # one config for this request (see swap)
        # Shedding before anything is read; the limit itself is enforced by Slot.take.
        if self.inflight >= sec.max_concurrent_requests:
            await self._reject(scope, send, at_capacity())
            return
        state = scope["state"]
        key, pending = None, None
        if sec.auth_enabled or lim:
            headers = dict(scope["headers"])
            presented = presented_key(headers, scope.get("query_string", b""))
            if sec.auth_enabled:
                key = find_key(sec.keys, presented) if presented else None
                if key is None:
                    await self._reject(scope, send, GatewayError(
                        401, "missing or invalid API key: send it as `Authorization: Bearer "
                        "<key>`, `x-api-key: <key>` or (Gemini clients) `x-goog-api-key: <key>`",
                        type="authentication"))
                    return
                state["tenant"] = key.tenant
                state["api_key"] = key
            if lim:
                caller = lim.caller(key, (scope.get("client") or ("-", 0))[0])
                if lim.counts_tokens and scope["method"] not in BODILESS:
                    # Token limits need the body: the pipeline's admit counts the request
                    # and reserves its tokens in one call; `finish` settles below.
                    pending = state[limits.STATE_KEY] = limits.Pending(lim, caller)
                    send = pending.watch(send)
                else:
                    err = await lim.check(lim.request_charges(caller))
                    if err is not None:
                        await self._reject(scope, send, err)
                        return
        slot = state["slot"] = Slot(self)
        if scope["method"] in BODILESS:
            slot.take()
        try:
            await self.app(scope, receive, send)
        finally:
            if slot.held:
                self.inflight -= 1
            if pending is not None:
                pending.finish()

    def _closing_limits(self, send):
        """Lifespan `send` that closes the limits' store before shutdown completes."""
        async def send_after_close(message: dict[str, Any]) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") \
                    and self.limits is not None:
                await self.limits.close()
            await send(message)
        return send_after_close

    async def _reject(self, scope, send, err: GatewayError) -> None:
        status, body = format_for_path(scope["path"]).error_body(err)
        headers = [(b"content-type", b"application/json")]
        if err.retry_after:
            headers.append((b"retry-after", str(max(1, math.ceil(err.retry_after))).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps(body)})
