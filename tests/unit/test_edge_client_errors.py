"""The edge's one gRPC status -> GatewayError mapping, for each backend service."""
from __future__ import annotations

import grpc
import pytest

from switchyard.common.errors import GatewayError
from switchyard.edge.clients.errors import (
    STATE_UNAVAILABLE_MESSAGE,
    grpc_to_gateway_error,
    status_error,
)
from switchyard.edge.clients.providers import ProvidersMux, unavailable

S = grpc.StatusCode
ALL_CODES = [c for c in S if c is not S.OK]


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                details=details or None)


def fields(err: GatewayError) -> tuple:
    return (err.http_status, err.type, err.message, err.code, err.param, err.retry_after)


ROUTER_DOWN = ("The model router is unavailable ({}); cannot resolve model 'gpt-x'. "
               "Try again shortly.")
PROVIDERS_DOWN = (503, "unavailable", "the providers service is unavailable; retry shortly",
                  "", "", 1.0)

# (service, status, details sent by the server) -> (status, type, message, code, param,
# retry_after) the client sees; the subject is "gpt-x" for the router, "resp_1" for state.
CASES = [
    ("router", S.NOT_FOUND, "The model 'gpt-x' does not exist. Available models: a, b",
     (404, "not_found", "The model 'gpt-x' does not exist. Available models: a, b",
      "model_not_found", "model", 0.0)),
    ("router", S.NOT_FOUND, "",
     (404, "not_found", "The model 'gpt-x' does not exist.", "model_not_found", "model", 0.0)),
    ("router", S.UNAVAILABLE, "connection refused",
     (503, "unavailable", ROUTER_DOWN.format("UNAVAILABLE"), "", "", 0.0)),
    ("router", S.DEADLINE_EXCEEDED, "",
     (503, "unavailable", ROUTER_DOWN.format("DEADLINE_EXCEEDED"), "", "", 0.0)),
    ("router", S.INTERNAL, "boom",
     (503, "unavailable", ROUTER_DOWN.format("INTERNAL"), "", "", 0.0)),
    ("providers", S.NOT_FOUND, "no such thing",
     (404, "not_found", "no such thing", "", "", 0.0)),
    ("providers", S.NOT_FOUND, "", (404, "not_found", "not found", "", "", 0.0)),
    ("providers", S.UNAVAILABLE, "connection refused", PROVIDERS_DOWN),
    ("providers", S.CANCELLED, "", PROVIDERS_DOWN),
    ("providers", S.UNAUTHENTICATED, "missing internal token", PROVIDERS_DOWN),
    ("providers", S.DEADLINE_EXCEEDED, "",
     (504, "timeout", "the providers service did not answer in time", "", "", 0.0)),
    ("providers", S.INTERNAL, "Traceback: secret internals",
     (500, "api_error", "internal error in the providers service", "", "", 0.0)),
    ("providers", S.UNKNOWN, "", (500, "api_error", "internal error in the providers service",
                                  "", "", 0.0)),
    ("state", S.NOT_FOUND, "not in the store",
     (404, "not_found", "No response found with id 'resp_1'.", "", "", 0.0)),
    ("state", S.FAILED_PRECONDITION, "conversation longer than 3 turns",
     (400, "invalid_request", "conversation longer than 3 turns", "", "previous_response_id",
      0.0)),
    ("state", S.FAILED_PRECONDITION, "",
     (400, "invalid_request", "conversation too long", "", "previous_response_id", 0.0)),
    ("state", S.INVALID_ARGUMENT, "id is empty",
     (400, "invalid_request", "id is empty", "", "", 0.0)),
    ("state", S.INVALID_ARGUMENT, "",
     (400, "invalid_request", "invalid state request", "", "", 0.0)),
    ("state", S.UNAVAILABLE, "connection refused",
     (503, "unavailable", STATE_UNAVAILABLE_MESSAGE, "", "", 0.0)),
    ("state", S.DEADLINE_EXCEEDED, "",
     (503, "unavailable", STATE_UNAVAILABLE_MESSAGE, "", "", 0.0)),
    ("state", S.INTERNAL, "Traceback: secret internals",
     (503, "unavailable", STATE_UNAVAILABLE_MESSAGE, "", "", 0.0)),
]
SUBJECT = {"router": "gpt-x", "providers": "", "state": "resp_1"}


@pytest.mark.parametrize("service, code, details, expected", CASES,
                         ids=[f"{c[0]}-{c[1].name}-{bool(c[2])}" for c in CASES])
def test_status_maps_per_service(service, code, details, expected):
    err = grpc_to_gateway_error(rpc_error(code, details), service, SUBJECT[service])
    assert isinstance(err, GatewayError)
    assert fields(err) == expected
    assert fields(status_error(service, code, details, SUBJECT[service])) == expected


@pytest.mark.parametrize("code", ALL_CODES, ids=[c.name for c in ALL_CODES])
def test_every_status_has_an_answer_and_no_internals_leak(code):
    """Statuses a service gives no meaning to fall back to its outage or internal error."""
    router = status_error("router", code, "internal detail", "m")
    assert (router.http_status, router.type) == {
        S.NOT_FOUND: (404, "not_found"),
        # A request's own routing_preferences the router refuses (its details are the
        # client's: which model of which route is not configured).
        S.INVALID_ARGUMENT: (400, "invalid_request")}.get(code, (503, "unavailable"))
    providers = status_error("providers", code, "internal detail")
    expected = {S.NOT_FOUND: 404, S.UNAVAILABLE: 503, S.CANCELLED: 503,
                S.DEADLINE_EXCEEDED: 504, S.UNAUTHENTICATED: 503}.get(code, 500)
    assert providers.http_status == expected
    state = status_error("state", code, "internal detail", "r")
    expected = {S.NOT_FOUND: 404, S.FAILED_PRECONDITION: 400,
                S.INVALID_ARGUMENT: 400}.get(code, 503)
    assert state.http_status == expected
    for err in (router, providers, state):
        if err.http_status >= 500:
            assert "internal detail" not in err.message


def test_broken_mux_stream_is_the_providers_unavailable_error():
    assert fields(unavailable()) == PROVIDERS_DOWN


class FakeStub:
    def __init__(self, outcome):
        self.outcome = outcome
        self.timeouts: list[float] = []

    async def CountTokens(self, request, timeout):
        self.timeouts.append(timeout)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


async def test_count_tokens_maps_errors_through_the_one_mapping():
    from switchyard.common.proto import providers_pb2
    reply = providers_pb2.CountTokensReply(input_tokens=7, estimated=True)
    stub = FakeStub(reply)
    assert await ProvidersMux(stub).count_tokens(providers_pb2.GenerateRequest(), 3.0) == reply
    assert stub.timeouts == [3.0]
    for code, status in ((S.UNAVAILABLE, 503), (S.DEADLINE_EXCEEDED, 504), (S.INTERNAL, 500)):
        mux = ProvidersMux(FakeStub(rpc_error(code, "details")))
        with pytest.raises(GatewayError) as info:
            await mux.count_tokens(providers_pb2.GenerateRequest(), 1.0)
        assert fields(info.value) == fields(status_error("providers", code, "details"))
        assert info.value.http_status == status
