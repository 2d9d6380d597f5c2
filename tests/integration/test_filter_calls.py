"""Filter calls in process, over real sockets: what the e2e chain cannot easily show — an
unreachable filter, redirects, the answer cap, a 429's retry-after, MCP tool errors, a
stream whose output filter fails (the generation behind it is closed) — and the pure parts
(the headers a call carries, how a refusal is read)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from starlette.requests import Request

from switchyard.common.config.model import Filter, FilterChains
from switchyard.common.errors import GatewayError
from switchyard.edge.filters import Filters, base
from switchyard.edge.filters.base import Answer
from switchyard.edge.filters.headers import filter_headers
from switchyard.edge.filters.mcp import mcp_endpoint
from switchyard.edge.filters.refusal import refusal
from tests.support.filter_servers import FilterServer, keyword_guard, mcp_filters
from tests.support.ports import free_port

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]})


def request(path: str = "/v1/chat/completions", headers: dict[str, str] | None = None
            ) -> Request:
    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": path, "headers": raw,
                    "query_string": b"", "state": {}})


async def run_input(f: Filter, body: bytes = BODY, headers: dict[str, str] | None = None
                    ) -> bytes:
    filters = Filters(FilterChains(input=(f,)))
    try:
        return await filters.bind(request(headers=headers), "req_1", "default").request_body(body)
    finally:
        await filters.close()


def server(handler) -> FilterServer:
    def routes(_: FilterServer) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        return app
    return FilterServer(routes)


async def test_an_unreachable_filter_is_a_502_and_fail_open_goes_on():
    f = Filter(id="gone", url=f"http://127.0.0.1:{free_port()}", type="http")
    with pytest.raises(GatewayError) as info:
        await run_input(f)
    assert info.value.http_status == 502
    assert info.value.message == "the input filter 'gone' is unreachable (the connection " \
                                 "could not be made)"
    assert "127.0.0.1" not in info.value.message
    same = Filter(id="gone", url=f.url, type="http", fail_open=True)
    assert await run_input(same) == BODY


async def test_a_redirect_is_never_followed():
    with keyword_guard() as elsewhere:
        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"{elsewhere.url}{request.path}")

        with server(redirect) as redirecting:
            with pytest.raises(GatewayError) as info:
                await run_input(Filter(id="r", url=redirecting.url, type="http"))
        assert info.value.http_status == 502 and "answered HTTP 307" in info.value.message
        assert elsewhere.calls() == []   # the body went nowhere else


async def test_an_answer_over_the_cap_is_a_failure(monkeypatch):
    monkeypatch.setattr(base, "MAX_ANSWER_BYTES", 1000)

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()   # chunked: no content-length to refuse it by
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b"x" * 500)
        await resp.write_eof()
        return resp

    with server(big) as s:
        with pytest.raises(GatewayError) as info:
            await run_input(Filter(id="big", url=s.url, type="http"))
    assert "answered with more than 1000 bytes" in info.value.message


async def test_a_429_refusal_keeps_its_retry_after_and_the_filter_s_words():
    async def busy(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "slow down", "type": "rate_limit"}},
                                 status=429, headers={"retry-after": "7"})

    with server(busy) as s:
        with pytest.raises(GatewayError) as info:
            await run_input(Filter(id="busy", url=s.url, type="http"))
    err = info.value
    assert (err.http_status, err.message, err.code, err.retry_after) == \
        (429, "slow down", "rate_limit", 7.0)


async def test_the_client_path_goes_after_the_url_s_path_and_before_its_query():
    with keyword_guard() as guard:
        f = Filter(id="g", url=f"{guard.url}/guard/?tenant=blue", type="http")
        assert await run_input(f) == orjson.dumps(orjson.loads(BODY))
        call = guard.calls()[0]
    assert call.path == "/guard/v1/chat/completions"


async def test_mcp_unknown_tool_is_a_refusal_and_the_endpoint_defaults_to_mcp():
    with mcp_filters() as mcp:
        with pytest.raises(GatewayError) as info:
            await run_input(Filter(id="no_such_tool", url=mcp.url, type="mcp"))
        assert info.value.http_status == 400 and info.value.message == \
            "Unknown tool: no_such_tool"
        assert {c.path for c in mcp.calls()} == {"/mcp"}
        # initialize, notifications/initialized, tools/call; then the session was ended.
        methods = [c.json().get("method") for c in mcp.calls()]
        assert methods == ["initialize", "notifications/initialized", "tools/call"]
        assert mcp.state.sessions == {}
    assert mcp_endpoint("http://h:1") == mcp_endpoint("http://h:1/") == "http://h:1/mcp"
    assert mcp_endpoint("http://h:1/tools/mcp") == "http://h:1/tools/mcp"


async def test_mcp_server_that_is_not_mcp_is_a_failure():
    with keyword_guard() as guard:   # answers every POST with the body back: no JSON-RPC
        with pytest.raises(GatewayError) as info:
            await run_input(Filter(id="plain", url=guard.url, type="mcp"))
    assert info.value.http_status == 502
    assert "sent no JSON-RPC reply" in info.value.message


class Encoder:
    def error(self, err) -> bytes:
        return b"event: error\ndata: " + err.message.encode() + b"\n\n"


async def test_a_stream_s_output_filter_failure_ends_it_and_closes_the_generation():
    closed = []

    async def generation() -> AsyncIterator[bytes]:
        try:
            for i in range(100):
                yield f"data: {i}\n\n".encode()
        finally:
            closed.append(True)   # pipeline._sse_body cancels the upstream call here

    calls = []

    async def second_fails(request: web.Request) -> web.Response:
        calls.append(await request.read())
        return web.Response(status=200 if len(calls) == 1 else 503)

    with server(second_fails) as s:
        filters = Filters(FilterChains(output=(Filter(id="out", url=s.url, type="http"),)))
        run = filters.bind(request(), "req_2", "default")
        got = [c async for c in run.stream(generation(), Encoder(), "text/event-stream")]
        await filters.close()
    assert got == [b"data: 0\n\n",
                   b"event: error\ndata: the output filter 'out' answered HTTP 503\n\n"]
    assert closed == [True] and len(calls) == 2
    assert run.stream_calls == 2 and run.stream_ms > 0


def test_headers_carry_the_request_id_and_never_a_credential():
    sent = filter_headers({"authorization": "Bearer sk-1", "x-api-key": "sk-2",
                           "x-goog-api-key": "g", "api-key": "az", "cookie": "c=1",
                           "x-portkey-secret": "s", "x-session-token": "t",
                           "content-length": "10", "host": "gw", "x-request-id": "theirs",
                           "x-team": "blue", "user-agent": "sdk/1", "anthropic-beta": "b"},
                          "req_ours", "team-a")
    assert sent == {"x-team": "blue", "user-agent": "sdk/1", "anthropic-beta": "b",
                    "x-request-id": "req_ours", "x-switchyard-tenant": "team-a"}


@pytest.mark.parametrize("body,message,code", [
    (b'{"detail": {"error": "content_blocked", "message": "Blocked."}}', "Blocked.",
     "content_blocked"),
    (b'{"detail": "not allowed"}', "not allowed", ""),
    (b'{"error": {"message": "no", "code": "policy"}}', "no", "policy"),
    (b'{"error": "content_blocked", "message": "Blocked."}', "Blocked.", "content_blocked"),
    (b"plain words\n", "plain words", ""),
    (b"", "the request was refused by the input filter 'f'", ""),
    (b'{"x": 1}', "the request was refused by the input filter 'f'", ""),
])
def test_a_refusal_is_read_in_the_filter_s_own_words(body, message, code):
    err = refusal(Answer(403, body), "input", "f")
    assert (err.http_status, err.message, err.code) == (403, message, code)


def test_a_refusal_message_is_bounded_and_printable():
    err = refusal(Answer(400, ("x\u202e" * 5000).encode()), "input", "f")
    assert len(err.message) <= 1001 and "\u202e" not in err.message


def test_without_filters_the_edge_makes_no_filter_object():
    from switchyard.common.config import parse_config
    from switchyard.edge.app import create_app

    data = {"model_providers": [{"model": "openai/gpt-4o-mini", "access_key": "k",
                                 "default": True}]}
    assert create_app(parse_config(data)).app.app.state.filters is None
    data["filters"] = [{"id": "g", "url": "http://127.0.0.1:1", "type": "http"}]
    assert create_app(parse_config(data)).app.app.state.filters is None   # defined, unused
    data["listeners"] = [{"type": "model", "port": 12000, "output_filters": ["g"]}]
    chains = create_app(parse_config(data)).app.app.state.filters
    assert isinstance(chains, Filters) and [f.id for f in chains.output] == ["g"]
