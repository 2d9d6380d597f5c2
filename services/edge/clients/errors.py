"""The one mapping from a failed gRPC call of the edge (router, providers, state) to the
`GatewayError` the client sees; the wording differs per service where the meaning does."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import grpc

from switchyard.common.errors import RESPONSE_NOT_FOUND, GatewayError, echo

Service = Literal["router", "providers", "state"]

# What a call that needs state gets while the state service is down (the edge stays ready).
STATE_UNAVAILABLE_MESSAGE = ("conversation state is degraded: the state service is "
                             "unavailable, so stored responses and previous turns cannot be "
                             "read or saved right now; requests that need no stored state "
                             "still work. Retry shortly.")


@dataclass(frozen=True)
class Rule:
    """What one gRPC status becomes. `message` may name {service}, {subject} (what the call
    was about: a model name, a response id) and {code}; with `details_first` the server's
    own details win, because they are already written for the client (e.g. the router's
    list of available models)."""
    status: int
    message: str
    type: str = ""          # "" = the canonical type for `status`
    details_first: bool = False
    code: str = ""
    param: str = ""
    retry_after: float = 0.0


# Per service: the statuses it gives a meaning to, and under None what any other one becomes.
# Backend outages are 503s (a client may retry); nothing internal reaches the client.
RULES: dict[Service, dict[grpc.StatusCode | None, Rule]] = {
    "router": {
        grpc.StatusCode.NOT_FOUND: Rule(404, "The model '{subject}' does not exist.",
                                        "not_found", details_first=True,
                                        code="model_not_found", param="model"),
        # A request's own routing_preferences the router refuses (unknown models, ...).
        grpc.StatusCode.INVALID_ARGUMENT: Rule(400, "invalid routing_preferences",
                                               "invalid_request", details_first=True,
                                               param="routing_preferences"),
        None: Rule(503, "The model router is unavailable ({code}); cannot resolve model "
                        "'{subject}'. Try again shortly.", "unavailable"),
    },
    "providers": {
        grpc.StatusCode.NOT_FOUND: Rule(404, "not found", details_first=True),
        grpc.StatusCode.UNAVAILABLE: Rule(503, "the {service} service is unavailable; retry "
                                               "shortly", "unavailable", retry_after=1.0),
        grpc.StatusCode.CANCELLED: Rule(503, "the {service} service is unavailable; retry "
                                             "shortly", "unavailable", retry_after=1.0),
        grpc.StatusCode.DEADLINE_EXCEEDED: Rule(504, "the {service} service did not answer in "
                                                     "time", "timeout"),
        # A wrong internal token is the deployment's fault, not the client's: unavailable.
        grpc.StatusCode.UNAUTHENTICATED: Rule(503, "the {service} service is unavailable; "
                                                   "retry shortly", "unavailable",
                                              retry_after=1.0),
        None: Rule(500, "internal error in the {service} service", "api_error"),
    },
    "state": {
        # Absent, expired, or another tenant's: the same answer, so ids do not leak.
        grpc.StatusCode.NOT_FOUND: Rule(404, RESPONSE_NOT_FOUND, "not_found"),
        # The chain is longer than state_storage.max_depth.
        grpc.StatusCode.FAILED_PRECONDITION: Rule(400, "conversation too long",
                                                  "invalid_request", details_first=True,
                                                  param="previous_response_id"),
        grpc.StatusCode.INVALID_ARGUMENT: Rule(400, "invalid state request", "invalid_request",
                                               details_first=True),
        # Timeouts included: a state service that does not answer is down for the client.
        None: Rule(503, STATE_UNAVAILABLE_MESSAGE, "unavailable"),
    },
}


def status_error(service: Service, code: grpc.StatusCode, details: str = "",
                 subject: str = "") -> GatewayError:
    """The client-facing error for gRPC status `code` from `service`; `subject` (a client's
    model name or id) is echoed only as a short, printable prefix."""
    rules = RULES[service]
    rule = rules.get(code) or rules[None]
    message = (details if rule.details_first and details else
               rule.message.format(service=service, subject=echo(subject), code=code.name))
    return GatewayError(rule.status, message, type=rule.type, code=rule.code, param=rule.param,
                        retry_after=rule.retry_after)


def grpc_to_gateway_error(exc: grpc.aio.AioRpcError, service: Service,
                          subject: str = "") -> GatewayError:
    """The client-facing error for a failed call to `service` (see `status_error`)."""
    return status_error(service, exc.code(), exc.details() or "", subject)
