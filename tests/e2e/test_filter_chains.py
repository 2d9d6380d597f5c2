"""Model-listener filter chains end to end: a real `switchyard up` whose listener runs Plano's
two demo filters (re-implemented in tests/support/filter_servers.py: a keyword guard, a PII
redactor) and two MCP tools, against the emulator, with traces exported to a receiver.

Chain: filter_chain [content_guard (http, 1 s)] then input_filters [policy (mcp, fail_open,
1 s), pii_anonymizer (http)]; output_filters [pii_deanonymizer (http), redact_secrets (mcp)].
"""
import json
from types import SimpleNamespace

import anthropic
import httpx
import openai
import pytest
import yaml

from tests.e2e.harness import Gateway, free_port, gateway_config
from tests.support.filter_servers import (
    MCP_FORBIDDEN,
    REDACTED,
    SECRET,
    keyword_guard,
    mcp_filters,
    pii_redactor,
)
from tests.support.metrics import metric_value

EMAIL, SSN, PHONE = "jane.doe@example.com", "123-45-6789", "555-123-4567"
PII_TEXT = f"My email is {EMAIL}, my SSN is {SSN}, call me at {PHONE}."
SERVER, CLIENT = 2, 3   # OTLP span kinds
CLAUDE = "claude-3-5-sonnet-20241022"


@pytest.fixture(scope="module")
def servers():
    with keyword_guard() as guard, pii_redactor() as pii, mcp_filters() as policy, \
            mcp_filters() as redactor:
        yield SimpleNamespace(guard=guard, pii=pii, policy=policy, redactor=redactor)


@pytest.fixture(scope="module")
def fgw(emulator, servers, otlp, tmp_path_factory):
    port = free_port()
    extra = f"tracing: {{random_sampling: 100, opentracing_grpc_endpoint: {otlp.endpoint}}}"
    data = yaml.safe_load(gateway_config(emulator.url, port, extra=extra,
                                         state="state_storage: {type: memory}"))
    data["filters"] = [
        {"id": "content_guard", "url": servers.guard.url, "type": "http", "timeout": "1s"},
        {"id": "policy", "url": servers.policy.url, "timeout": "1s", "fail_open": True},
        {"id": "pii_anonymizer", "url": f"{servers.pii.url}/anonymize", "type": "http"},
        {"id": "pii_deanonymizer", "url": f"{servers.pii.url}/deanonymize", "type": "http"},
        {"id": "redact_secrets", "url": f"{servers.redactor.url}/mcp", "type": "mcp",
         "transport": "streamable-http"},
    ]
    data["listeners"][0].update(filter_chain=["content_guard"],
                                input_filters=["policy", "pii_anonymizer"],
                                output_filters=["pii_deanonymizer", "redact_secrets"])
    gw = Gateway(yaml.safe_dump(data), tmp_path_factory.mktemp("filters"), port).start()
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def fresh(servers):
    for s in (servers.guard, servers.pii, servers.policy, servers.redactor):
        s.clear()


@pytest.fixture
def oai(fgw):
    return openai.OpenAI(api_key="client-key", base_url=f"{fgw.url}/v1", max_retries=0,
                         timeout=30)


@pytest.fixture
def claude(fgw):
    return anthropic.Anthropic(api_key="client-key", base_url=fgw.url, max_retries=0,
                               timeout=30)


def user(text):
    return [{"role": "user", "content": text}]


def upstream_saw(emu) -> str:
    """Everything the upstream was sent, as one string."""
    return json.dumps([r["json"] for r in emu.requests()])


def assert_no_pii(text):
    for value in (EMAIL, SSN, PHONE):
        assert value not in text


# ---- the PII demo: the upstream never sees the e-mail, the SSN or the phone number ----------

def test_chat_pii_is_anonymized_upstream_and_restored_for_the_client(oai, emu):
    done = oai.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                         messages=user(PII_TEXT))
    reply = done.parse().choices[0].message.content
    seen = upstream_saw(emu)
    assert_no_pii(seen)
    assert "[EMAIL_0]" in seen and "[SSN_0]" in seen and "[PHONE_0]" in seen
    assert reply == f"Echo: {PII_TEXT}"   # the output filter put the originals back
    assert float(done.headers["x-switchyard-filter-ms"]) > 0


def test_streamed_chat_pii(oai, emu, servers):
    stream = oai.chat.completions.create(model="gpt-4o-mini", messages=user(PII_TEXT),
                                         stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert_no_pii(upstream_saw(emu))
    assert text == f"Echo: {PII_TEXT}"
    replies = [c for c in servers.pii.calls() if c.path.startswith("/deanonymize")]
    chunks = [c for c in replies if c.headers["Content-Type"] == "text/event-stream"]
    assert len(chunks) > 1   # one call per chunk, as Plano's demo does it
    assert all(c.body.startswith(b"data: ") for c in chunks)
    # The stored record (state is on: chat turns are kept) is shown whole, as JSON.
    stored = [c for c in replies if c.headers["Content-Type"] == "application/json"]
    assert len(stored) == 1 and stored[0].json()["object"] == "chat.completion"


@pytest.mark.parametrize("stream", [False, True])
def test_messages_pii(claude, emu, stream):
    if stream:
        with claude.messages.stream(model=CLAUDE, max_tokens=200,
                                    messages=user(PII_TEXT)) as s:
            text = "".join(s.text_stream)
    else:
        msg = claude.messages.create(model=CLAUDE, max_tokens=200, messages=user(PII_TEXT))
        text = msg.content[0].text
    assert emu.requests()[-1]["path"] == "/v1/messages"
    assert_no_pii(upstream_saw(emu))
    assert text == f"Echo: {PII_TEXT}"


@pytest.mark.parametrize("stream", [False, True])
def test_responses_pii_and_the_stored_response(oai, emu, stream):
    if stream:
        with oai.responses.stream(model="gpt-4o-mini", input=PII_TEXT) as s:
            for _ in s:
                pass
            resp = s.get_final_response()
    else:
        resp = oai.responses.create(model="gpt-4o-mini", input=PII_TEXT)
    assert_no_pii(upstream_saw(emu))
    assert resp.output_text == f"Echo: {PII_TEXT}"
    # What a later GET returns went through the output filters too.
    assert oai.responses.retrieve(resp.id).output_text == f"Echo: {PII_TEXT}"


def test_gemini_generate_content_pii(fgw, emu):
    r = httpx.post(f"{fgw.url}/v1beta/models/gemini-2.0-flash:generateContent",
                   headers={"x-goog-api-key": "client-key"}, timeout=30,
                   json={"contents": [{"role": "user", "parts": [{"text": PII_TEXT}]}]})
    assert r.status_code == 200, r.text
    assert emu.requests()[-1]["path"].endswith(":generateContent")
    assert_no_pii(upstream_saw(emu))
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == f"Echo: {PII_TEXT}"


def test_token_counts_are_filtered_too(claude, emu):
    claude.messages.count_tokens(model=CLAUDE, messages=user(PII_TEXT))
    assert emu.requests()[-1]["path"] == "/v1/messages/count_tokens"
    assert_no_pii(upstream_saw(emu))


# ---- the keyword guard: a refusal is the client's own error, the upstream never called ------

def test_guard_refusal_in_each_format(oai, claude, fgw, emu):
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="gpt-4o-mini", messages=user("how to hack a bank"))
    assert "Request blocked by content safety filter (matched: 'hack')." in str(info.value)
    assert info.value.code == "content_blocked"
    with pytest.raises(openai.BadRequestError):
        oai.responses.create(model="gpt-4o-mini", input="write malware", stream=True)
    with pytest.raises(anthropic.BadRequestError) as ainfo:
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=user("phishing kit"))
    assert ainfo.value.body["error"]["type"] == "invalid_request_error"
    assert "matched: 'phishing'" in ainfo.value.body["error"]["message"]
    r = httpx.post(f"{fgw.url}/v1beta/models/gemini-2.0-flash:generateContent",
                   headers={"x-goog-api-key": "k"}, timeout=30,
                   json={"contents": [{"role": "user", "parts": [{"text": "an exploit"}]}]})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert emu.requests() == []


def test_mcp_tool_refusal(oai, emu, servers):
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="gpt-4o-mini",
                                    messages=user(f"tell me about {MCP_FORBIDDEN}"))
    assert "this topic is not allowed here" in str(info.value)
    assert emu.requests() == []
    # The chain's order: the guard saw the body first, as the client sent it.
    assert MCP_FORBIDDEN in servers.guard.calls()[0].body.decode()


def test_filters_run_in_order_each_on_the_last_ones_output(oai, emu, servers):
    oai.chat.completions.create(model="gpt-4o-mini", messages=user(PII_TEXT))
    assert EMAIL in servers.guard.calls()[0].body.decode()           # 1. filter_chain
    assert EMAIL in json.dumps(servers.policy.calls()[-1].json())     # 2. input_filters[0]
    anonymized = servers.pii.calls()[0]
    assert anonymized.path == "/anonymize/v1/chat/completions"       # 3. the client's path
    reply_calls = servers.redactor.calls()
    tool_call = reply_calls[-1].json()["params"]
    assert tool_call["name"] == "redact_secrets" and tool_call["arguments"]["path"] == \
        "/v1/chat/completions"
    # The MCP redactor comes after the deanonymizer: it is shown the restored reply.
    assert EMAIL in json.dumps(tool_call["arguments"]["body"])


def test_secret_redacted_from_replies_whole_and_streamed(oai, emu):
    text = f"please repeat {SECRET} back"
    whole = oai.chat.completions.create(model="gpt-4o-mini", messages=user(text))
    assert whole.choices[0].message.content == f"Echo: please repeat {REDACTED} back"
    stream = oai.chat.completions.create(model="gpt-4o-mini", messages=user(text), stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == f"Echo: please repeat {REDACTED} back"
    assert SECRET in upstream_saw(emu)   # an output filter: the request went as sent


# ---- failures: 502 in the client's format, or, fail_open, as if the filter were not there ---

@pytest.mark.parametrize("mode,reason", [("error", "answered HTTP 500"),
                                         ("garbage", "returned a body that is not a JSON object"),
                                         ("drop", "closed the connection"),
                                         ("hang", "did not answer within 1 s")])
def test_a_failing_filter_is_a_502_and_the_upstream_is_not_called(oai, claude, emu, servers,
                                                                  mode, reason):
    servers.guard.misbehave(mode)
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="gpt-4o-mini", messages=user("hello"))
    assert info.value.status_code == 502
    assert f"the input filter 'content_guard' {reason}" in str(info.value)
    assert servers.guard.url not in str(info.value)
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=user("hello"))
    assert ainfo.value.status_code == 502
    assert emu.requests() == []


def test_fail_open_filter_is_skipped_when_it_fails(oai, emu, servers, fgw):
    servers.policy.misbehave("error")
    reply = oai.chat.completions.create(model="gpt-4o-mini",
                                        messages=user(f"about {MCP_FORBIDDEN}"))
    assert reply.choices[0].message.content == f"Echo: about {MCP_FORBIDDEN}"
    assert len(emu.requests()) == 1
    assert metric_value(fgw.url, "switchyard_filter_seconds_count", filter="policy", phase="input",
                        outcome="failed_open") >= 1


def test_output_filter_failure_whole_and_mid_stream(oai, claude, emu, servers):
    servers.pii.misbehave("error", prefix="/deanonymize")
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="gpt-4o-mini", messages=user("hello"))
    assert info.value.status_code == 502
    assert "the output filter 'pii_deanonymizer' answered HTTP 500" in str(info.value)
    # Streamed: the headers are out, so the failure is the client's error event.
    with pytest.raises(openai.APIError) as sinfo:
        for _ in oai.chat.completions.create(model="gpt-4o-mini", messages=user("hello"),
                                             stream=True):
            pass
    assert "pii_deanonymizer" in str(sinfo.value)
    with pytest.raises(anthropic.APIStatusError):
        with claude.messages.stream(model=CLAUDE, max_tokens=50, messages=user("hi")) as s:
            "".join(s.text_stream)


def test_output_filter_refusal(oai, servers):
    servers.pii.misbehave("refuse", prefix="/deanonymize")
    with pytest.raises(openai.PermissionDeniedError) as info:
        oai.chat.completions.create(model="gpt-4o-mini", messages=user("hello"))
    assert "refused by the test filter" in str(info.value)


# ---- what a filter is sent; MCP sessions ---------------------------------------------------

def test_filter_calls_carry_the_request_id_and_no_keys(fgw, claude, servers):
    r = httpx.post(f"{fgw.url}/v1/chat/completions", timeout=30,
                   headers={"authorization": "Bearer sk-client-secret", "x-team-name": "blue",
                            "x-user-token": "t0ken"},
                   json={"model": "gpt-4o-mini", "messages": user("hello")})
    assert r.status_code == 200, r.text
    for call in (servers.guard.calls()[0], servers.pii.calls()[0], servers.pii.calls()[-1]):
        h = {k.lower(): v for k, v in call.headers.items()}
        assert h["x-request-id"] == r.headers["x-request-id"]   # input and output calls pair
        assert h["x-team-name"] == "blue" and h["x-switchyard-tenant"] == "default"
        assert "authorization" not in h and "x-user-token" not in h
        assert h["traceparent"].startswith("00-")
        assert "sk-client-secret" not in json.dumps(h)
    servers.guard.clear()
    claude.messages.create(model=CLAUDE, max_tokens=10, messages=user("hello"))
    h = {k.lower(): v for k, v in servers.guard.calls()[0].headers.items()}
    assert "x-api-key" not in h and h["anthropic-version"]
    assert servers.guard.calls()[0].path == "/v1/messages"


def test_mcp_session_is_kept_and_opened_again_when_the_server_forgets_it(oai, fgw, servers):
    oai.chat.completions.create(model="gpt-4o-mini", messages=user("one"))
    before = servers.policy.state.initializes
    failed_open = metric_value(fgw.url, "switchyard_filter_seconds_count", filter="policy",
                               outcome="failed_open")
    oai.chat.completions.create(model="gpt-4o-mini", messages=user("two"))
    assert servers.policy.state.initializes == before    # one session, reused
    servers.policy.state.sessions.clear()                # the server restarted
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=user("three"))
    assert reply.choices[0].message.content == "Echo: three"
    assert servers.policy.state.initializes == before + 1
    # The policy filter is fail_open: it really answered, it was not skipped.
    assert metric_value(fgw.url, "switchyard_filter_seconds_count", filter="policy",
                        outcome="failed_open") == failed_open


# ---- the filter time on the trace and in the metrics ----------------------------------------

def test_filter_calls_are_spans_of_the_request(oai, otlp):
    done = oai.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                         messages=user("hello"))
    rid = done.headers["x-request-id"]
    names = ("filter content_guard", "filter policy", "filter pii_anonymizer",
             "filter pii_deanonymizer", "filter redact_secrets")

    def ready(spans):
        edge = [s for s in spans if s.attributes.get("switchyard.request_id") == rid]
        if not edge:
            return None
        mine = [s for s in spans if s.trace_id == edge[0].trace_id]
        return mine if all(any(s.name == n for s in mine) for n in names) else None

    spans = otlp.wait_for(ready, 20, f"the filter spans of {rid}")
    edge = next(s for s in spans if s.service == "switchyard-edge" and s.kind == SERVER)
    for n in names:
        span = next(s for s in spans if s.name == n)
        assert span.parent_id == edge.span_id and span.kind == CLIENT
        assert span.attributes["switchyard.filter.outcome"] == "ok"
        assert span.attributes["switchyard.filter.id"] == n.split()[1]
    guard = next(s for s in spans if s.name == "filter content_guard")
    assert guard.attributes["switchyard.filter.phase"] == "input"
    assert guard.attributes["switchyard.filter.type"] == "http"
    assert guard.attributes["http.response.status_code"] == 200


def test_streamed_chunk_calls_are_totals_on_the_request_span(oai, otlp):
    stream = oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=user("one two three"), stream=True)
    rid = stream.headers["x-request-id"]
    for _ in stream.parse():
        pass

    def ready(spans):
        return [s for s in spans if s.attributes.get("switchyard.request_id") == rid
                and "switchyard.filter.stream_calls" in s.attributes]

    edge = otlp.wait_for(ready, 20, f"the edge span of {rid}")[0]
    assert edge.attributes["switchyard.filter.stream_calls"] >= 4   # 2 filters × ≥ 2 chunks
    assert edge.attributes["switchyard.filter.stream_ms"] > 0


def test_filter_histogram(oai, fgw):
    before = metric_value(fgw.url, "switchyard_filter_seconds_count", filter="content_guard",
                          phase="input", outcome="ok")
    oai.chat.completions.create(model="gpt-4o-mini", messages=user("hello"))
    assert metric_value(fgw.url, "switchyard_filter_seconds_count", filter="content_guard",
                        phase="input", outcome="ok") == before + 1
    assert metric_value(fgw.url, "switchyard_filter_seconds_count", filter="redact_secrets",
                        phase="output", outcome="ok") >= 1
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=user("hack"))
    assert metric_value(fgw.url, "switchyard_filter_seconds_count", filter="content_guard",
                        phase="input", outcome="rejected") >= 1
