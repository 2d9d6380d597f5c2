"""The configured secrets the providers service must never hand to a client, and the one
scrubber that blanks them in every Error leaving the executor.

Built once per process from the config: every provider entry's `access_key`, the values of
its auth-like `headers`, key-like query parameters and a password in its endpoint URL, and the
password of the state DSN. A request adds its own `client_api_key` (`extra=`). Values shorter
than MIN_LENGTH are ignored so common words are never blanked.
"""
from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from switchyard.common.config.model import Config, ProviderEntry
from switchyard.common.proto import chat_pb2
from switchyard.providers.aws_auth import resolved_secrets

MIN_LENGTH = 8
MASK = "***"
# Every string field of chat_pb2.Error.
ERROR_FIELDS = ("message", "code", "param", "type", "provider")
# Header or query parameter names whose values are credentials.
_SECRET_NAME_PARTS = ("key", "token", "secret", "auth", "password", "signature", "sig")
_AUTH_SCHEMES = ("bearer ", "basic ", "token ")


def _is_secret_name(name: str) -> bool:
    low = name.lower()
    return any(part in low for part in _SECRET_NAME_PARTS)


def _header_values(name: str, value: str) -> list[str]:
    """A credential header's value, and the credential alone if it has an auth scheme."""
    if not _is_secret_name(name):
        return []
    out = [value]
    low = value.lower()
    for scheme in _AUTH_SCHEMES:
        if low.startswith(scheme):
            out.append(value[len(scheme):].strip())
    return out


def _url_secrets(url: str) -> list[str]:
    """A password in the URL's userinfo, and the values of key-like query parameters."""
    try:
        parts = urlsplit(url)
        out = [parts.password] if parts.password else []
    except ValueError:
        return []
    out.extend(v for k, v in parse_qsl(parts.query) if _is_secret_name(k))
    return out


def entry_secrets(entry: ProviderEntry) -> list[str]:
    """Every secret one provider entry carries."""
    out = [entry.access_key] if entry.access_key else []
    for name, value in entry.headers.items():
        out.extend(_header_values(name, value))
    out.extend(_url_secrets(entry.endpoint))
    if entry.aws is not None:   # Bedrock SigV4: the configured keys, and the chain's
        out.extend(v for v in (entry.aws.secret_key, entry.aws.session_token) if v)
        out.extend(resolved_secrets(entry))
    return out


def dsn_password(dsn: str | None) -> str | None:
    """The password of a `postgresql://user:password@host/db` connection string."""
    if not dsn:
        return None
    try:
        return urlsplit(dsn).password
    except ValueError:
        return None


def _usable(values: Iterable[str | None]) -> tuple[str, ...]:
    """Unique values long enough to blank, longest first (a key containing another goes whole)."""
    return tuple(sorted({v for v in values if v and len(v) >= MIN_LENGTH},
                        key=lambda v: (-len(v), v)))


class Secrets:
    """The process's configured secrets; `scrub` blanks them (and a request's own) in an Error."""

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        self.values = _usable(values)

    @classmethod
    def from_entries(cls, entries: Iterable[ProviderEntry], dsn: str | None = None) -> Secrets:
        found: list[str | None] = [dsn_password(dsn)]
        for entry in entries:
            found.extend(entry_secrets(entry))
        return cls(found)

    @classmethod
    def from_config(cls, config: Config) -> Secrets:
        return cls.from_entries(config.providers, config.state.connection_string)

    def __len__(self) -> int:
        return len(self.values)

    def text(self, text: str, extra: Iterable[str | None] = ()) -> str:
        """`text` with every secret (configured, or in `extra`) replaced by `***`."""
        if not text:
            return text
        for secret in self._with(extra):
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def scrub(self, err: chat_pb2.Error, extra: Iterable[str | None] = ()) -> chat_pb2.Error:
        """Blank every secret in every string field of `err` (in place; returns `err`)."""
        secrets = self._with(extra)
        if not secrets:
            return err
        for name in ERROR_FIELDS:
            value = getattr(err, name)
            if not value:
                continue
            clean = value
            for secret in secrets:
                if secret in clean:
                    clean = clean.replace(secret, MASK)
            if clean != value:
                setattr(err, name, clean)
        return err

    def scrub_batch(self, batch: chat_pb2.EventBatch,
                    extra: Iterable[str | None] = ()) -> chat_pb2.EventBatch:
        """Scrub the batch's error events (only the error events are looked at)."""
        for ev in batch.events:
            if ev.HasField("error"):
                self.scrub(ev.error, extra)
        return batch

    def _with(self, extra: Iterable[str | None]) -> tuple[str, ...]:
        more = _usable(extra)
        if not more:
            return self.values
        return _usable((*self.values, *more))
