"""HTTP header reading shared by the upstream codecs and the retry loop: case-insensitive
lookup on any mapping, and the one parser of `retry-after` / `retry-after-ms`."""
from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asked us to wait: `retry-after-ms` (preferred), else `retry-after`
    (seconds or an HTTP date); None when neither is present or readable."""
    ms = header(headers, "retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass   # an unreadable ms value: fall back to retry-after
    value = header(headers, "retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
