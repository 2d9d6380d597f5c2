"""What the edge limits, from the config, and each request's part in it.

Requests per minute and tokens per minute per gateway key (per client address without auth),
and Plano's `ratelimits` token budgets. Without token limits the guard counts a request
before its body is read (`Limits.check`). With them, the guard leaves a `Pending` in scope
state and the pipeline's admit counts the request and reserves its tokens in one limiter
call; the guard settles the reservation with the real usage when the answer has ended.
"""
from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from switchyard.common.config.model import ApiKey, Security
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.edge.limits.base import REQUESTS, TOKENS, Bucket, Charge, Decision, Limiter
from switchyard.edge.limits.metrics import RATE_LIMITED
from switchyard.edge.limits.rules import RuleSet, model_names, reservation_size, used_tokens
from switchyard.edge.request_state import scope_state

STATE_KEY = "limits"
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is counted: a gateway key (by digest) or, without auth, a client address."""
    who: str
    label: str                  # "this API key" / "this client address", for messages
    rpm: int | None
    tpm: int | None


class Limits:
    """The configured limits over one `Limiter` (in-process, or Redis shared by the edges)."""

    def __init__(self, security: Security, limiter: Limiter) -> None:
        self.limiter = limiter
        self.rpm = security.requests_per_minute
        self.tpm = security.tokens_per_minute
        self.rules = RuleSet(security.ratelimits)
        self.counts_tokens = bool(self.tpm or self.rules
                                  or any(k.tokens_per_minute for k in security.keys))

    def caller(self, key: ApiKey | None, address: str) -> Caller:
        if key is not None:
            return Caller("key:" + key.sha256.hex()[:32], "this API key",
                          key.requests_per_minute or self.rpm, key.tokens_per_minute or self.tpm)
        return Caller("ip:" + address, "this client address", self.rpm, self.tpm)

    def request_charges(self, caller: Caller) -> list[Charge]:
        if not caller.rpm:
            return []
        return [Charge(Bucket("rq:" + caller.who, float(caller.rpm), 60.0,
                              f"{caller.rpm} requests per minute for {caller.label}",
                              REQUESTS), 1.0)]

    def token_buckets(self, caller: Caller, req: chat_pb2.ChatRequest,
                      plan: router_pb2.RoutePlan, headers: Mapping[str, str]) -> list[Bucket]:
        out = []
        if caller.tpm:
            out.append(Bucket("tk:" + caller.who, float(caller.tpm), 60.0,
                              f"{caller.tpm} tokens per minute for {caller.label}", TOKENS))
        if self.rules:
            out += self.rules.buckets(model_names(req, plan), headers)
        return out

    async def check(self, charges: Sequence[Charge]) -> GatewayError | None:
        """Take `charges` now; the error to answer with when refused."""
        return refusal(await self.limiter.admit(charges)) if charges else None

    async def close(self) -> None:
        await self.limiter.close()


def refusal(decision: Decision) -> GatewayError | None:
    """The client's answer to a refusal: 429 over a limit, 503 when the store is down and
    the policy is deny; None when admitted."""
    if decision.allowed:
        return None
    if decision.unavailable or decision.limit is None:
        return GatewayError(503, "the gateway cannot check its rate limits right now (its "
                            "Redis does not answer) and is set to refuse requests until it can "
                            "(redis.on_unavailable: deny); retry shortly", type="unavailable",
                            retry_after=decision.retry_after or 1.0)
    RATE_LIMITED.labels(decision.limit.kind).inc()
    wait = decision.retry_after
    return GatewayError(429, f"rate limit exceeded: {decision.limit.label}; retry in "
                        f"{max(1, math.ceil(wait))} s", type="rate_limit", retry_after=wait)


NEW, ADMITTED, REFUSED = 0, 1, 2


class Pending:
    """One request's part in the limits when token limits exist: counted once at admit,
    its token reservation settled by `finish` when the answer is done."""

    __slots__ = ("limits", "caller", "stage", "reserved", "used", "status")

    def __init__(self, limits: Limits, caller: Caller) -> None:
        self.limits = limits
        self.caller = caller
        self.stage = NEW
        self.reserved: list[Charge] = []   # the token charges taken at admit
        self.used: int | None = None       # tokens the finished turn used
        self.status = 0                    # the answer's HTTP status

    async def admit(self, req: chat_pb2.ChatRequest, plan: router_pb2.RoutePlan,
                    headers: Mapping[str, str], reserve: bool) -> None:
        """Count the request and (`reserve`) hold its estimated tokens; 429/503 if refused."""
        if self.stage != NEW:
            return
        limits = self.limits
        charges = limits.request_charges(self.caller)
        tokens: list[Charge] = []
        if reserve:
            buckets = limits.token_buckets(self.caller, req, plan, headers)
            if buckets:
                size = float(reservation_size(req, plan))
                # At most a bucket's capacity, so a request larger than a budget can still
                # run once the budget is full (and leaves it in debt for the difference).
                tokens = [Charge(b, min(size, b.capacity)) for b in buckets]
        self.stage = ADMITTED
        if not charges and not tokens:
            return
        decision = await limits.limiter.admit(charges + tokens)
        err = refusal(decision)
        if err is not None:
            self.stage = REFUSED
            raise err
        if not decision.unavailable:   # nothing was taken while the store was down
            self.reserved = tokens

    def watch(self, send: Send) -> Send:
        """`send`, noting the answer's status (a failed answer gives its tokens back)."""
        async def noting_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            await send(message)
        return noting_status

    def finish(self) -> None:
        """Settle: the reservation corrected to the usage; all of it back when the answer
        failed; kept when a started stream ended without usage (the upstream may have
        generated up to all of it). A request that never reached admit is counted now."""
        limiter = self.limits.limiter
        if self.stage == NEW:
            taken = self.limits.request_charges(self.caller)
            if taken:
                limiter.settle([Charge(c.bucket, -c.amount) for c in taken])
            return
        if not self.reserved:
            return
        if self.used is not None:
            back = [Charge(c.bucket, c.amount - self.used) for c in self.reserved]
        elif self.status >= 400:
            back = self.reserved
        else:
            return
        back = [c for c in back if c.amount]
        if back:
            limiter.settle(back)


# ---- the pipeline's hooks: nothing to do unless the guard left a Pending ----------------

async def admit(request: Request, req: chat_pb2.ChatRequest, plan: router_pb2.RoutePlan,
                reserve: bool = True) -> None:
    """Count the request (and, `reserve`, hold its tokens); raises the 429/503 when refused."""
    pending: Pending | None = scope_state(request).get(STATE_KEY)
    if pending is not None:
        await pending.admit(req, plan, request.headers, reserve)


def record_usage(request: Request, usage: chat_pb2.Usage) -> None:
    """The turn's final usage, for the settlement."""
    pending: Pending | None = scope_state(request).get(STATE_KEY)
    if pending is not None:
        pending.used = used_tokens(usage)
