"""How upstream attempts fail: the canonical Errors the executor answers with, and the
`AttemptFailed` signal that carries one out of an attempt."""
from __future__ import annotations

from switchyard.common.config.model import ProviderEntry
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2


class AttemptFailed(Exception):
    """One upstream attempt failed before anything reached the client."""

    def __init__(self, error: chat_pb2.Error, retryable: bool, retry_after: float | None = None,
                 final: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after
        self.final = final   # the time budget is spent: stop trying


def error(status: int, message: str, entry: ProviderEntry | None,
          type: str = "") -> chat_pb2.Error:
    """An Error made by the gateway, naming the entry it concerns."""
    return GatewayError(status, message, type=type,
                        provider=entry.name if entry else "").to_proto()


def error_batch(err: chat_pb2.Error) -> chat_pb2.EventBatch:
    """A batch holding only `err` (the stream ends after it)."""
    return chat_pb2.EventBatch(events=[chat_pb2.StreamEvent(error=err)])


def timeout(entry: ProviderEntry, what: str) -> chat_pb2.Error:
    """The entry's upstream exceeded one of its own timeouts (`what` says which)."""
    return error(504, f"provider '{entry.name}' {what}", entry, type="timeout")


def budget_spent(budget_s: float, entry: ProviderEntry) -> chat_pb2.Error:
    """The plan's time budget ran out before any upstream committed."""
    return error(504, f"no upstream answered within the {budget_s:g} s timeout "
                      f"(last tried: provider '{entry.name}')", entry, type="timeout")


def unreachable(entry: ProviderEntry, detail: str) -> AttemptFailed:
    """A connection that could not be made or broke; always worth another try."""
    return AttemptFailed(error(502, detail, entry, type="upstream_unreachable"), True)


def broken(entry: ProviderEntry, exc: BaseException) -> AttemptFailed:
    """The connection broke while reading the reply."""
    return unreachable(entry, f"connection to provider '{entry.name}' broke: "
                              f"{type(exc).__name__}")


def undecodable(entry: ProviderEntry, exc: BaseException, what: str = "stream") -> AttemptFailed:
    """The codec could not read what the upstream sent (an upstream fault, so retryable)."""
    return AttemptFailed(error(502, f"provider '{entry.name}' sent a {what} the gateway could "
                                    f"not decode: {type(exc).__name__}", entry,
                               type="api_error"), True)


def redirected(entry: ProviderEntry, status: int) -> AttemptFailed:
    """A 3xx: the gateway never follows redirects, the base_url is wrong."""
    return AttemptFailed(error(502, f"provider '{entry.name}' answered with a redirect "
                                    f"({status}); check its base_url", entry,
                               type="api_error"), False)


def from_upstream(err: chat_pb2.Error, retryable: bool) -> AttemptFailed:
    """An error the upstream reported, with the wait it asked for (0 means none)."""
    return AttemptFailed(err, retryable, err.retry_after or None)
