"""Credentials for Amazon Bedrock: SigV4 signatures made by botocore's signer, or a Bedrock
API key sent as a bearer token.

SigV4 credentials are an entry's static keys, a named profile, or the standard chain (AWS_*
variables, ~/.aws files, container and instance roles), resolved once per entry on first
use (env and files are local reads; an instance role is one metadata call). Refreshable
credentials (roles, SSO) are refreshed on a worker thread once botocore says they are in
their advisory window, so the event loop never waits on STS; the current ones are used
meanwhile. botocore is imported on first use, so deployments without Bedrock never load it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switchyard.common.config.model import ProviderEntry

log = logging.getLogger(__name__)

SERVICE = "bedrock"             # bedrock-runtime's signing name (its service model says so)
_RETRY_UNRESOLVED_S = 60.0      # a chain that found nothing is asked again after this
_EXPIRING_S = 60                # credentials this close to expiry are refreshed inline


@dataclass(frozen=True)
class Frozen:
    """One consistent set of credentials (botocore's ReadOnlyCredentials shape)."""
    access_key: str
    secret_key: str
    token: str | None


class _Source:
    """One entry's SigV4 credentials: static, or resolved from the chain and kept fresh."""

    def __init__(self, entry: ProviderEntry) -> None:
        self.entry = entry
        self._lock = threading.Lock()
        self._creds: Any = None          # botocore Credentials (maybe refreshable), or None
        self._frozen: Frozen | None = None
        self._resolved_at = -_RETRY_UNRESOLVED_S
        self._refreshing = False
        aws = entry.aws
        if aws is not None and aws.secret_key and entry.access_key:
            self._frozen = Frozen(entry.access_key, aws.secret_key, aws.session_token)
            self._static = True
        else:
            self._static = False

    def current(self) -> Frozen | None:
        """The credentials to sign with now (None: the chain found none)."""
        if self._static:
            return self._frozen
        if self._creds is None:
            if time.monotonic() - self._resolved_at < _RETRY_UNRESOLVED_S:
                return None
            self._resolve()
            if self._creds is None:
                return None
        creds = self._creds
        refresh_needed = getattr(creds, "refresh_needed", None)
        if refresh_needed is not None and self._frozen is not None and refresh_needed():
            if not refresh_needed(_EXPIRING_S):
                self._refresh_in_background()
                return self._frozen   # still valid: sign with it while the new ones come
        self._frozen = _freeze(creds.get_frozen_credentials())
        return self._frozen

    def _resolve(self) -> None:
        from botocore.session import Session  # only Bedrock entries load botocore
        profile = self.entry.aws.profile if self.entry.aws is not None else None
        self._resolved_at = time.monotonic()
        try:
            creds = Session(profile=profile).get_credentials()
        except Exception as exc:  # noqa: BLE001 - a broken profile is reported, not raised
            log.warning("provider %s: AWS credentials could not be loaded (%s)",
                        self.entry.name, type(exc).__name__)
            return
        if creds is None:
            log.warning("provider %s: no AWS credentials found (set access_key and "
                        "secret_key, aws_profile, or the AWS_* variables); requests go "
                        "unsigned", self.entry.name)
            return
        self._creds = creds

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True

        def refresh() -> None:
            try:
                self._frozen = _freeze(self._creds.get_frozen_credentials())
            except Exception as exc:  # noqa: BLE001 - the next sign retries inline if needed
                log.warning("provider %s: refreshing AWS credentials failed (%s)",
                            self.entry.name, type(exc).__name__)
            finally:
                self._refreshing = False

        threading.Thread(target=refresh, name="aws-credentials-refresh", daemon=True).start()

    def secrets(self) -> list[str]:
        frozen = self._frozen
        if frozen is None or self._static:
            return []
        return [v for v in (frozen.secret_key, frozen.token) if v]


def _freeze(creds: Any) -> Frozen:
    return Frozen(creds.access_key, creds.secret_key, creds.token or None)


_SOURCES: dict[tuple[str, str | None, object], _Source] = {}
_SOURCES_LOCK = threading.Lock()


def _source(entry: ProviderEntry) -> _Source:
    key = (entry.name, entry.access_key, entry.aws)
    found = _SOURCES.get(key)
    if found is None:
        with _SOURCES_LOCK:
            found = _SOURCES.setdefault(key, _Source(entry))
    return found


def resolved_secrets(entry: ProviderEntry) -> list[str]:
    """Secrets the chain gave this entry, so errors can be scrubbed of them too."""
    found = _SOURCES.get((entry.name, entry.access_key, entry.aws))
    return found.secrets() if found is not None else []


def auth_headers(entry: ProviderEntry, url: str, body: bytes, headers: Mapping[str, str],
                 client_api_key: str = "") -> dict[str, str]:
    """The credential headers for one request: `Authorization: Bearer` for a Bedrock API
    key, else SigV4's Authorization, X-Amz-Date (and X-Amz-Security-Token), signed over
    `url`, `body` and every header in `headers` (which must be sent exactly so)."""
    if entry.auth == "bearer":
        key = client_api_key if entry.passthrough_auth else entry.access_key
        return {"Authorization": f"Bearer {key}"} if key else {}
    if entry.auth != "sigv4" or entry.aws is None:
        return {}
    creds = _source(entry).current()
    if creds is None:
        return {}
    return sign(creds, entry.aws.region, url, body, headers)


def sign(creds: Frozen, region: str, url: str, body: bytes,
         headers: Mapping[str, str]) -> dict[str, str]:
    """SigV4 headers for a POST, by botocore's signer (service `bedrock`)."""
    from botocore.auth import SigV4Auth  # imported on first use (module docstring)
    from botocore.awsrequest import AWSRequest
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(creds, SERVICE, region).add_auth(request)
    out = {"Authorization": request.headers["Authorization"],
           "X-Amz-Date": request.headers["X-Amz-Date"]}
    token = request.headers.get("X-Amz-Security-Token")
    if token:
        out["X-Amz-Security-Token"] = token
    return out
