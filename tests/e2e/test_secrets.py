"""Provider keys never reach clients: an upstream that echoes the key it was sent — in an error
status's message, code and param, or in an error event after the stream has committed — is
answered to every client format without the key, in the body, the SSE text, the headers,
the SDK's exception, and the gateway's log."""
from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.e2e.harness import ANTHROPIC_KEY, OPENAI_KEY, Gateway, free_port, gateway_config

UPSTREAMS = {   # model -> (the key the gateway presents upstream, the header it goes in)
    "gpt-4o-mini": (OPENAI_KEY, "authorization"),
    "claude-3-5-sonnet-20241022": (ANTHROPIC_KEY, "x-api-key"),
}
SCENARIOS = {
    "401": {"status": 401, "error": {"message": "Incorrect API key provided: {key}",
                                     "code": "invalid_api_key:{key}", "param": "key={key}"}},
    "429": {"status": 429, "error": {"message": "rate limited for {key}",
                                     "code": "rate_limit:{key}", "param": "{key}"}},
    "mid-stream": {"error_event_after_chunks": 4, "chunks": 8, "chunk_delay": 0.02,
                   "reply": {"text": "one two three four five six seven eight"},
                   "error": {"message": "boom for key {key}", "code": "{key}",
                             "param": "p:{key}"}},
}
FORMATS = ("chat", "messages", "responses")
USER = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def sgw(emulator, tmp_path_factory):
    """One gateway for the module; no retries, so each scripted step is one request."""
    port = free_port()
    text = gateway_config(emulator.url, port).replace("timeout: 10s}", "timeout: 10s, max_retries: 0}")
    assert "max_retries: 0" in text
    gw = Gateway(text, tmp_path_factory.mktemp("secrets"), port).start()
    yield gw
    gw.stop()


def sdk_call(gw: Gateway, fmt: str, model: str, stream: bool) -> str:
    """Everything an SDK user can see of the call: events, the exception, its body and headers."""
    seen: list[str] = []
    try:
        if fmt == "chat":
            sdk = openai.OpenAI(api_key="test-key", base_url=f"{gw.url}/v1", max_retries=0,
                                timeout=15)
            if stream:
                for chunk in sdk.chat.completions.create(model=model, messages=USER, stream=True):
                    seen.append(chunk.model_dump_json())
            else:
                seen.append(sdk.chat.completions.create(model=model, messages=USER)
                            .model_dump_json())
        elif fmt == "responses":
            sdk = openai.OpenAI(api_key="test-key", base_url=f"{gw.url}/v1", max_retries=0,
                                timeout=15)
            if stream:
                for event in sdk.responses.create(model=model, input="hello", stream=True):
                    seen.append(event.model_dump_json())
            else:
                seen.append(sdk.responses.create(model=model, input="hello").model_dump_json())
        else:
            ant = anthropic.Anthropic(api_key="test-key", base_url=gw.url, max_retries=0,
                                      timeout=15)
            if stream:
                for event in ant.messages.create(model=model, max_tokens=50, messages=USER,
                                                 stream=True):
                    seen.append(event.model_dump_json())
            else:
                seen.append(ant.messages.create(model=model, max_tokens=50, messages=USER)
                            .model_dump_json())
    except (openai.APIError, anthropic.APIError) as exc:
        seen += [f"raised {type(exc).__name__}", str(exc), repr(exc), repr(exc.body)]
        response = getattr(exc, "response", None)
        if response is not None:
            seen.append(repr(dict(response.headers)))
            if not stream:
                seen.append(response.text)
    return "\n".join(seen)


def raw_call(gw: Gateway, fmt: str, model: str, stream: bool) -> str:
    """The raw response: status, headers and the whole body (JSON or SSE text)."""
    if fmt == "chat":
        path, body = "/v1/chat/completions", {"model": model, "messages": USER}
    elif fmt == "responses":
        path, body = "/v1/responses", {"model": model, "input": "hello"}
    else:
        path, body = "/v1/messages", {"model": model, "max_tokens": 50, "messages": USER}
    body["stream"] = stream
    with httpx.stream("POST", f"{gw.url}{path}", json=body, timeout=15,
                      headers={"authorization": "Bearer test-key",
                               "anthropic-version": "2023-06-01"}) as r:
        text = r.read().decode()
        return f"{r.status_code}\n{r.headers.multi_items()!r}\n{text}"


def recorded_key(emu, model: str) -> str:
    """The key the gateway presented on its last upstream request for `model`."""
    [*_, req] = [r for r in emu.requests() if r["model"] == model]
    header = req["headers"][UPSTREAMS[model][1]]
    return header.removeprefix("Bearer ")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", list(UPSTREAMS))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_echoed_key_reaches_no_client(sgw, emu, scenario, model, fmt, stream):
    key = UPSTREAMS[model][0]
    outputs = {}
    for name, call in (("sdk", sdk_call), ("raw", raw_call)):
        emu.script(model, SCENARIOS[scenario])
        outputs[name] = call(sgw, fmt, model, stream)
        # The upstream really got (and so echoed) the key: the assertions below can fail.
        assert recorded_key(emu, model) == key
    for name, text in outputs.items():
        assert key not in text, (name, text)
        assert "***" in text, (name, text)   # the echoed error did reach the client, scrubbed
    if scenario == "mid-stream" and stream:
        # Content reached the client first: the error came after the commit point.
        assert "one" in outputs["raw"] and "boom for key ***" in outputs["raw"], outputs["raw"]
    elif scenario != "mid-stream":
        assert outputs["raw"].startswith(scenario), outputs["raw"]
    assert key not in sgw.log()


def test_gateway_log_has_no_key(sgw):
    log = sgw.log()
    assert "attempt 1 failed: 401" in log and "attempt 1 failed: 429" in log   # errors were logged
    for key, _ in UPSTREAMS.values():
        assert key not in log
