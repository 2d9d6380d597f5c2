"""Hostile input against one real gateway (`switchyard up`, PostgreSQL state): wrong types for
every top-level field, huge strings, NUL, lone surrogates and invalid UTF-8, 20 KB ids, odd
content types, empty and truncated bodies, nesting 200 levels deep — on every endpoint.

Every answer is below 500, errors are in the client's own format with no traceback, the
gateway logs no traceback and no false outage, refused inputs never reach the upstream, and
afterwards the gateway still serves and a response stored before the run is unchanged.
The run is bounded: a fixed list of a few hundred requests, a time budget asserted."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.harness import Gateway, free_port, gateway_config
from tests.support.postgres import postgres_server

pg = postgres_server()

BUDGET_S = 30.0   # the whole hostile run; the suite must stay well under a minute
CLAUDE = "claude-3-5-haiku-20241022"
USER = [{"role": "user", "content": "hi"}]
BASES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "gpt-4o-mini", "messages": USER, "max_tokens": 5},
    "/v1/messages": {"model": CLAUDE, "max_tokens": 5, "messages": USER},
    "/v1/messages/count_tokens": {"model": CLAUDE, "messages": USER},
    "/v1/responses": {"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": 16},
}
# Every top-level field each endpoint names (and the gateway's own), to get each wrong type.
FIELDS = {
    "/v1/chat/completions": (
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
        "stop", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
        "reasoning_effort", "user", "n", "seed", "top_logprobs", "frequency_penalty",
        "presence_penalty", "response_format", "metadata", "store"),
    "/v1/messages": (
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
        "temperature", "top_k", "top_p", "tools", "tool_choice", "thinking"),
    "/v1/messages/count_tokens": (
        "model", "messages", "system", "tools", "tool_choice", "thinking"),
    "/v1/responses": (
        "model", "input", "instructions", "previous_response_id", "store", "metadata",
        "tools", "tool_choice", "temperature", "top_p", "max_output_tokens",
        "parallel_tool_calls", "reasoning", "user", "stream", "text", "include", "truncation",
        "background", "conversation", "prompt"),
}
WRONG_TYPES: list[Any] = [True, -7, 1.5e300, "x", [], {}, [[{"a": [None]}]]]
NUL_MODELS = ["gpt-4o-mini\x00", "claude-3-5-haiku\x00-20241022", "anthropic/claude\x00x",
              "\x00", "gpt-4o-mini\n"]
BIG = "A" * 100_000
ID_20K = "resp_" + "0" * 20_000


def deep(levels: int, leaf: Any = "x") -> Any:
    """`levels` nested arrays and objects, alternating, around `leaf`."""
    node = leaf
    for i in range(levels):
        node = [node] if i % 2 else {"k": node}
    return node


def is_messages(path: str) -> bool:
    return path.startswith("/v1/messages")


def problems(path: str, r: httpx.Response, want_4xx: bool) -> list[str]:
    """What is wrong with one answer: a 5xx, a 2xx where a refusal was due, an error body
    not in the client's format, a traceback."""
    out = []
    if r.status_code >= 500 or (want_4xx and not 400 <= r.status_code < 500):
        out.append(f"status {r.status_code}")
    if "traceback" in r.text.lower() or 'file "' in r.text.lower():
        out.append("traceback in the body")
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            return [*out, f"error body is not JSON: {r.text[:100]!r}"]
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict) or not isinstance(err.get("message"), str):
            out.append(f"no error object: {r.text[:100]!r}")
        elif is_messages(path) and (body.get("type") != "error" or "type" not in err):
            out.append(f"not Anthropic's error format: {r.text[:100]!r}")
        elif not is_messages(path) and ("type" in body or "param" not in err):
            out.append(f"not OpenAI's error format: {r.text[:100]!r}")
        elif len(r.content) > 4096:
            out.append(f"error body of {len(r.content)} bytes (unbounded echo?)")
    return out


@pytest.fixture(scope="module")
def gw(emulator, pg, tmp_path_factory) -> Iterator[Gateway]:
    port = free_port()
    state = (f"state_storage:\n  type: postgres\n  connection_string: {pg.create_database()}\n")
    gateway = Gateway(gateway_config(emulator.url, port, state=state),
                      tmp_path_factory.mktemp("hostile"), port).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def http(gw) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, timeout=20, headers={"authorization": "Bearer k"}) as c:
        yield c


def run(http: httpx.Client, cases: list[tuple[str, str, Any, dict[str, str], bool]]
        ) -> list[str]:
    """Send each (method, path, body bytes or JSON, headers, want_4xx); collect problems."""
    failures = []
    for method, path, body, headers, want_4xx in cases:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        r = http.request(method, path, content=content if method == "POST" else None,
                         headers={"content-type": "application/json", **headers})
        failures += [f"{method} {path} {repr(body)[:80]}: {p}"
                     for p in problems(path, r, want_4xx)]
    return failures


def body_cases(stored_id: str) -> list[tuple[str, str, Any, dict[str, str], bool]]:
    cases: list[tuple[str, str, Any, dict[str, str], bool]] = []
    for path, base in BASES.items():
        post = ("POST", path)
        for field in FIELDS[path]:           # wrong types and huge strings: may be valid
            cases += [(*post, {**base, field: v}, {}, False) for v in (*WRONG_TYPES, BIG)]
        cases += [(*post, {**base, "model": m}, {}, True) for m in NUL_MODELS]
        cases += [
            (*post, {**base, "model": BIG}, {}, True),
            (*post, {**base, "model": "m" * 20_000}, {}, True),
            (*post, b"", {}, True),
            (*post, b"{", {}, True),
            (*post, orjson.dumps(base)[:-7], {}, True),                       # truncated
            (*post, b'{"model": "\\ud800", "messages": []}', {}, True),      # lone surrogate
            (*post, b'{"model": "\\udfff\\ud800"}', {}, True),
            (*post, b'{"model": "gpt-4o-mini\xff\xfe", "max_tokens": 5}', {}, True),  # bad UTF-8
            (*post, b"\xef\xbb\xbf" + orjson.dumps(base), {}, False),         # BOM
            (*post, b"[1, 2]", {}, True),
            (*post, b"null", {}, True),
            (*post, b"model=gpt-4o-mini",
             {"content-type": "application/x-www-form-urlencoded"}, True),
            (*post, b"--b\r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n--b--",
             {"content-type": "multipart/form-data; boundary=b"}, True),
            (*post, orjson.dumps(base), {"content-type": "text/plain"}, False),
            (*post, {**base, "model": deep(200)}, {}, True),
            (*post, {**base, "metadata": deep(200)}, {}, False),
            (*post, {**base, "x_unknown": deep(200)}, {}, False),
            (*post, deep(200), {}, True),
        ]
    chat, responses = "/v1/chat/completions", "/v1/responses"
    for bad in (ID_20K, "resp_\x00", "chatcmpl-\x00" + "0" * 23, "resp_nope", "\x00" * 300,
                "resp_" + "\u202e" * 24, deep(200), 7, [], ""):
        cases.append(("POST", chat, {**BASES[chat], "metadata": {"response_id": bad}}, {},
                      True))
        cases.append(("POST", responses, {**BASES[responses], "previous_response_id": bad},
                      {}, True))
    cases.append(("POST", chat, {**BASES[chat], "messages": [
        {"role": "user", "content": [deep(200)]}]}, {}, True))
    # Huge values where a message quotes the client's value back (the echo is bounded).
    cases += [
        ("POST", chat, {**BASES[chat], "messages": [{"role": BIG, "content": "x"}]}, {}, True),
        ("POST", chat, {**BASES[chat], "messages": [
            {"role": "user", "content": [{"type": BIG}]}]}, {}, True),
        ("POST", "/v1/messages", {**BASES["/v1/messages"], "messages": [
            {"role": "user", "content": [{"type": BIG}]}]}, {}, True),
        ("POST", responses, {**BASES[responses], "input": [{"type": BIG}]}, {}, True),
        ("POST", responses, {**BASES[responses], "tools": [{"type": BIG}]}, {}, True),
        ("POST", responses, {**BASES[responses], "reasoning": {"effort": BIG}}, {}, True),
    ]
    cases.append(("POST", responses, {**BASES[responses], "input": [deep(200)]}, {}, True))
    return cases


def path_cases(stored_id: str) -> list[tuple[str, str, Any, dict[str, str], bool]]:
    ids = ["resp_nope", "resp_%00", "resp_%00" + "0" * 20, "%00", "%ff%fe", "%ED%A0%80",
           "resp_" + "0" * 20_000, "r" * 20_000, "resp_%0A" + "0" * 23, "%E2%80%AE" * 40,
           "resp_" + "0" * 24]           # well-formed and unknown: state's own 404
    cases: list[tuple[str, str, Any, dict[str, str], bool]] = []
    for rid in ids:
        for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/input_items")):
            cases.append((method, f"/v1/responses/{rid}{suffix}", None, {}, True))
    for query in ("limit=abc", "limit=0", "limit=100000000000000000000", "order=%00",
                  "after=%00", "after=" + "a" * 20_000, "limit=1e3"):
        cases.append(("GET", f"/v1/responses/{stored_id}/input_items?{query}", None, {}, True))
    return cases


def test_hostile_inputs_are_4xx_in_the_clients_format(gw, http, emu):
    created = http.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "keep me",
                                               "instructions": "Be brief."})
    assert created.status_code == 200
    stored_id = created.json()["id"]
    before = (http.get(f"/v1/responses/{stored_id}").content,
              http.get(f"/v1/responses/{stored_id}/input_items").content)
    cases = body_cases(stored_id) + path_cases(stored_id)
    assert 300 < len(cases) < 1000     # bounded in count
    started = time.monotonic()
    failures = run(http, cases)
    elapsed = time.monotonic() - started
    assert not failures, "\n".join(failures[:40])
    assert elapsed < BUDGET_S, f"{len(cases)} hostile requests took {elapsed:.1f}s"

    # Still serving, and what was stored before is intact.
    ok = http.post("/v1/chat/completions", json=BASES["/v1/chat/completions"])
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"]
    assert http.post("/v1/messages", json=BASES["/v1/messages"]).status_code == 200
    after = (http.get(f"/v1/responses/{stored_id}").content,
             http.get(f"/v1/responses/{stored_id}/input_items").content)
    assert after == before
    log = gw.log()
    assert "Traceback" not in log and "backend unavailable" not in log
    assert "unhandled error" not in log


def test_refused_inputs_never_reach_the_upstream(http, emu):
    cases = []
    for path, base in BASES.items():
        cases += [("POST", path, {**base, "model": m}, {}, True) for m in NUL_MODELS]
        cases.append(("POST", path, {**base, "model": "m" * 20_000}, {}, True))
    for bad in (ID_20K, "resp_\x00", "resp_nope"):
        cases.append(("POST", "/v1/chat/completions", {
            **BASES["/v1/chat/completions"], "metadata": {"response_id": bad}}, {}, True))
        cases.append(("POST", "/v1/responses",
                      {**BASES["/v1/responses"], "previous_response_id": bad}, {}, True))
    assert not run(http, cases)
    assert emu.requests() == []
