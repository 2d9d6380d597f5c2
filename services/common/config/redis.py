"""Our `redis:` extension: the Redis server whose counters every edge shares for the limits.

```yaml
redis: {url: redis://:${REDIS_PASSWORD}@redis:6379/0, on_unavailable: allow, timeout: 250ms}
```
The URL may carry a password, so it is never shown: messages use `redacted(url)`.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from switchyard.common.config.fields import Report, check_keys, duration, expand
from switchyard.common.config.model import RedisSettings

REDIS_KEYS = {"url", "on_unavailable", "timeout"}
SCHEMES = ("redis", "rediss", "unix")
POLICIES = ("allow", "deny")
DEFAULT_TIMEOUT_S = 0.25   # a Redis beside the edges answers in well under a millisecond
WHERE = "redis"


def parse_redis(rep: Report, raw: Any) -> RedisSettings | None:
    """`redis:` as RedisSettings; None when the section is absent (limits stay in-process)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        rep.add(WHERE, "must be a mapping like {url: redis://host:6379/0, on_unavailable: allow}")
        return None
    check_keys(rep, WHERE, raw, REDIS_KEYS, set(), "key")
    url = expand(rep, WHERE, "url", raw.get("url"))
    policy = raw.get("on_unavailable", "allow")
    if policy not in POLICIES:
        rep.add(WHERE, f"on_unavailable must be allow or deny, got {policy!r}")
        policy = "allow"
    timeout_s = duration(rep, WHERE, "timeout", raw.get("timeout"), DEFAULT_TIMEOUT_S)
    if not checked_url(rep, WHERE, url, "url is required"):
        return None
    return RedisSettings(url=url, display=redacted(url), on_unavailable=policy,
                         timeout_s=timeout_s)


def checked_url(rep: Report, where: str, url: Any, missing: str) -> bool:
    """Whether `url` (expanded) is a usable Redis URL; else what is wrong goes to `rep`,
    the password never quoted (`missing` starts the line when there is no URL)."""
    if not isinstance(url, str) or not url:
        rep.add(where, f"{missing}, e.g. url: redis://redis:6379/0")
        return False
    problem = url_problem(url)
    if problem:
        rep.add(where, f"url {redacted(url)}: {problem}")
        return False
    return True


def redacted(url: str) -> str:
    """`url` without its secrets: the password becomes *** and the query is dropped (redis-py
    reads options, a password among them, from it)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL, in words that never quote its password; None if fine."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a valid URL; write redis://[:password@]host[:port][/db]"
    if parts.scheme not in SCHEMES:
        return ("the scheme must be redis://, rediss:// (TLS) or unix:// (a socket path), "
                f"got {parts.scheme + '://' if parts.scheme else 'none'}")
    if parts.scheme == "unix":
        return None if parts.path else "unix:// needs a socket path, e.g. unix:///run/redis.sock"
    if not parts.hostname:
        return "no host; write redis://host:6379/0"
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        return f"the path must be a database number like /0, got /{db}"
    try:
        port = parts.port
    except ValueError:   # not a number, or out of range
        port = 0
    if port is not None and not 0 < port < 65536:
        return "the port must be a number between 1 and 65535"
    return None
