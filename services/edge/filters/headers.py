"""The headers of a filter call: the client's own (Plano forwards them: a filter may decide
by a header), less every credential and what belongs to the client's connection or body;
plus the request id — the same on a request's input and output calls, which is how a filter
such as a PII redactor pairs them — and the tenant."""
from __future__ import annotations

from collections.abc import Mapping

# Never forwarded: the gateway key and a passthrough provider key come in these; the rest
# describe the client's connection or body, or are set by the gateway itself.
NEVER = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
    "cookie", "host", "content-length", "content-type", "content-encoding",
    "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te", "trailer",
    "upgrade", "expect", "accept", "accept-encoding", "x-request-id", "request-id",
    "traceparent", "tracestate", "x-switchyard-tenant"})
# A header whose name holds one of these is taken for a credential, whatever it is called.
SECRET_WORDS = ("auth", "key", "token", "secret", "cookie", "password", "credential",
                "session", "signature")
TENANT_HEADER = "x-switchyard-tenant"


def filter_headers(headers: Mapping[str, str], request_id: str, tenant: str) -> dict[str, str]:
    """The headers every filter call of one request carries (names lower-case, as ASGI
    gives them)."""
    out = {name: value for name, value in headers.items()
           if name not in NEVER and not any(w in name for w in SECRET_WORDS)}
    out["x-request-id"] = request_id
    out[TENANT_HEADER] = tenant
    return out
