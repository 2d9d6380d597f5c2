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
