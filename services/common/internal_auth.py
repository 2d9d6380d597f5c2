"""The shared token between the edge and the backends: where it comes from, where it goes,
and when a backend may run without one."""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

TOKEN_ENV = "SWITCHYARD_INTERNAL_TOKEN"
TOKEN_FILE_ENV = "SWITCHYARD_INTERNAL_TOKEN_FILE"
# The gRPC metadata key every edge call carries (lower case, as gRPC requires).
METADATA_KEY = "x-switchyard-internal-token"


class TokenError(Exception):
    """The token's source is set but unusable (unreadable or empty file, both set)."""


def internal_token(env: Mapping[str, str] = os.environ) -> str | None:
    """`SWITCHYARD_INTERNAL_TOKEN`, else the stripped content of the file named by
    `SWITCHYARD_INTERNAL_TOKEN_FILE`; None when neither is set (an empty value is unset)."""
    value, path = env.get(TOKEN_ENV) or None, env.get(TOKEN_FILE_ENV) or None
    if value and path:
        raise TokenError(f"set {TOKEN_ENV} or {TOKEN_FILE_ENV}, not both")
    if path is None:
        return value
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise TokenError(f"{TOKEN_FILE_ENV}: cannot read {path}: {reason}") from None
    if not token:
        raise TokenError(f"{TOKEN_FILE_ENV}: {path} is empty")
    return token


def is_local_address(address: str) -> bool:
    """True for a unix socket or a loopback host:port: only this machine can connect."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(service: str, address: str, token: str | None, insecure: bool) -> str | None:
    """Why a backend must not start (None: it may): reachable from other machines, no token."""
    if token or insecure or is_local_address(address):
        return None
    return (f"switchyard {service}: refusing to listen on {address} without an internal "
            f"token; set {TOKEN_ENV} (or {TOKEN_FILE_ENV}) for every service, or pass "
            f"--insecure on a network only the edge can reach")
