"""`endpoints.unary`: which failures are tried again, where, and how often."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
import pytest

from switchyard.edge.clients.endpoints import UNAVAILABLE_ATTEMPTS, unary


class FakeEndpoint:
    def __init__(self, name: str) -> None:
        self.name = name

    @contextlib.contextmanager
    def held(self) -> Iterator[FakeEndpoint]:
        yield self


class FakeEndpoints:
    """Two replicas taken in turn; `pick(exclude=...)` gives the other one."""

    def __init__(self) -> None:
        self.all = [FakeEndpoint("a"), FakeEndpoint("b")]

    def pick(self, exclude=()) -> FakeEndpoint | None:
        return next((ep for ep in self.all if ep not in exclude), None)

    async def choose(self, timeout: float) -> FakeEndpoint | None:
        return self.pick()

    def alone(self, endpoint: FakeEndpoint) -> bool:
        return False


def failure(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "injected")


def invoker(codes: list[grpc.StatusCode]):
    """Fails with `codes` in turn, then answers with the endpoint's name; records the tries."""
    tried: list[str] = []

    async def invoke(endpoint: FakeEndpoint, left: float, alone: bool) -> str:
        tried.append(endpoint.name)
        if len(tried) <= len(codes):
            raise failure(codes[len(tried) - 1])
        return endpoint.name
    return invoke, tried


async def test_a_dead_replica_then_a_goaway_is_still_answered():
    invoke, tried = invoker([grpc.StatusCode.UNAVAILABLE] * (UNAVAILABLE_ATTEMPTS - 1))
    assert await unary(FakeEndpoints(), invoke, 2.0) in ("a", "b")   # type: ignore[arg-type]
    assert len(tried) == UNAVAILABLE_ATTEMPTS == 3
    assert tried[0] != tried[1]   # the retry went to the other replica


async def test_unavailable_on_every_try_is_raised_after_the_last():
    invoke, tried = invoker([grpc.StatusCode.UNAVAILABLE] * 10)
    with pytest.raises(grpc.aio.AioRpcError):
        await unary(FakeEndpoints(), invoke, 2.0)   # type: ignore[arg-type]
    assert len(tried) == UNAVAILABLE_ATTEMPTS


@pytest.mark.parametrize("retry, code", [(False, grpc.StatusCode.UNAVAILABLE),
                                         (True, grpc.StatusCode.NOT_FOUND),
                                         (True, grpc.StatusCode.DEADLINE_EXCEEDED)])
async def test_other_failures_and_unrepeatable_calls_are_not_tried_again(retry, code):
    invoke, tried = invoker([code])
    with pytest.raises(grpc.aio.AioRpcError):
        await unary(FakeEndpoints(), invoke, 2.0, retry=retry)   # type: ignore[arg-type]
    assert len(tried) == 1
