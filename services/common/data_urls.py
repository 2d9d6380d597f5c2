"""Base64 `data:` URLs (RFC 2397): the one splitter and builder the codecs share."""
from __future__ import annotations

_PREFIX = "data:"
_BASE64 = ";base64"


def data_url(media_type: str, data_b64: str) -> str:
    """`data:<media_type>;base64,<data>`; octet-stream when the media type is unknown."""
    return f"{_PREFIX}{media_type or 'application/octet-stream'}{_BASE64},{data_b64}"


def is_data_url(url: str) -> bool:
    """Whether `url` uses the `data:` scheme (base64 or not)."""
    return url.startswith(_PREFIX)


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type with its parameters, base64 data) of a base64 `data:` URL, else None.

    None covers other schemes and `data:` URLs that are not base64 (no `;base64` right
    before the comma); callers decide whether that is an error.
    """
    if not url.startswith(_PREFIX):
        return None
    head, sep, data = url[len(_PREFIX):].partition(",")
    if not sep or not head.endswith(_BASE64):
        return None
    return head[: -len(_BASE64)], data
