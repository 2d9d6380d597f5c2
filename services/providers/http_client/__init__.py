"""A lean HTTP/1.1 client for the upstream calls: kept-alive connections per origin, each an
asyncio protocol with httptools' response parser, and a body read as the network delivers it.

aiohttp did this before, and its request alone was 28 % of the providers' CPU at chat c=64
(this client's: 5 %; docs/benchmarks.md, "The upstream client"). The providers' only verb is
a POST of a ready body, so the client is small. What it does not do, on purpose: redirects
(an upstream's redirect is an error, see failures.redirected), cookies, proxies, and
compression (it asks for `identity`; a gzip or deflate body sent anyway is still decoded).
"""
from __future__ import annotations

from switchyard.providers.http_client.client import UpstreamClient
from switchyard.providers.http_client.errors import (
    ConnectFailed,
    Disconnected,
    HttpError,
    InvalidRequest,
    MalformedReply,
)
from switchyard.providers.http_client.request import Origin, origin_of, request_head
from switchyard.providers.http_client.response import PAUSE_AT, Response

__all__ = ["PAUSE_AT", "ConnectFailed", "Disconnected", "HttpError", "InvalidRequest",
           "MalformedReply", "Origin", "Response", "UpstreamClient", "origin_of", "request_head"]
