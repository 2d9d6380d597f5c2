"""The gateway's one error type, and its conversion to and from the wire `Error` message."""
from __future__ import annotations

from switchyard.common.canonical.mappings import error_type_for_status
from switchyard.common.proto import chat_pb2


class GatewayError(Exception):
    """An error with an HTTP status and canonical type; edges render it in the client's format."""

    def __init__(self, http_status: int, message: str, *, type: str = "", provider: str = "",
                 retry_after: float = 0.0, code: str = "", param: str = "") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.type = type or error_type_for_status(http_status)
        self.message = message
        self.provider = provider
        self.retry_after = retry_after
        self.code = code
        self.param = param

    def to_proto(self) -> chat_pb2.Error:
        return chat_pb2.Error(http_status=self.http_status, type=self.type, message=self.message,
                              provider=self.provider, retry_after=self.retry_after,
                              code=self.code, param=self.param)

    @classmethod
    def from_proto(cls, err: chat_pb2.Error) -> GatewayError:
        return cls(err.http_status or 500, err.message, type=err.type, provider=err.provider,
                   retry_after=err.retry_after, code=err.code, param=err.param)


def invalid_request(message: str, param: str = "") -> GatewayError:
    """A 400 for a malformed client request."""
    return GatewayError(400, message, type="invalid_request", param=param)


# One wording for an unknown response id, whoever answers (edge or state): absent, expired,
# another tenant's and malformed ids all get it, so the answer says nothing about which.
RESPONSE_NOT_FOUND = "No response found with id '{subject}'."
ECHO_CHARS = 64


def echo(value: str, limit: int = ECHO_CHARS) -> str:
    """A client-given value fit for a message or a log line: at most `limit` characters,
    unprintable ones (NUL, controls, bidi overrides) dropped; "…" marks a cut."""
    head = value[:limit]
    if not head.isprintable():
        head = "".join(c for c in head if c.isprintable())
    return head + "…" if len(value) > limit else head


def response_not_found(id: str) -> GatewayError:
    """The 404 for a response id that cannot be served (its echo is bounded, see `echo`)."""
    return GatewayError(404, RESPONSE_NOT_FOUND.format(subject=echo(id)), type="not_found")
