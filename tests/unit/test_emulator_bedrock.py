"""The emulator's Bedrock Converse API is strict where Bedrock is: shapes from Bedrock's
own service model, the conversation rules, SigV4, event-stream framing and error shapes."""
from __future__ import annotations

import datetime as dt

import httpx
import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from switchyard.providers.aws_auth import Frozen, sign
from tests.emulator import Emulator
from tests.emulator.bedrock_check import check_converse
from tests.emulator.bedrock_sigv4 import check_sigv4
from tests.emulator.errors import ApiError

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
OK = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


def refused(body: dict, model: str = "amazon.nova-pro-v1:0") -> str:
    with pytest.raises(ApiError) as info:
        check_converse(body, model, stream=False)
    assert info.value.status == 400
    assert info.value.headers["x-amzn-ErrorType"].startswith("ValidationException:")
    return info.value.body["message"]


def user(*blocks: dict) -> dict:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: dict) -> dict:
    return {"role": "assistant", "content": list(blocks)}


@pytest.mark.parametrize(("body", "message"), [
    ({"messages": [assistant({"text": "x"})]}, "must start with a user message"),
    ({"messages": [user({"text": "a"}), user({"text": "b"})]}, "must alternate"),
    ({"messages": [user({"text": "  "})]}, "messages.0.content.0 is blank"),
    ({"messages": [user()]}, "messages.0 is empty"),
    ({"messages": [user({"text": "a", "image": {"format": "png", "source": {"bytes": "AA=="}}})]},
     "exactly one member set"),
    ({"messages": [user({"image": {"format": "bmp", "source": {"bytes": "AA=="}}})]},
     "enum value set: [png, jpeg, gif, webp]"),
    ({"messages": [user({"image": {"format": "png", "source": {"bytes": "not base64!"}}})]},
     "base64"),
    ({**OK, "stream": True}, "extraneous key [stream]"),
    ({**OK, "inferenceConfig": {"temperature": 1.5}}, "less than or equal to 1"),
    ({"messages": [user({"text": "q"}), assistant({"toolUse": {
        "toolUseId": "t1", "name": "f", "input": {}}}), user({"text": "r"})]},
     "toolResult blocks at messages.2.content for the following Ids: t1"),
    ({"messages": [user({"toolResult": {"toolUseId": "t1", "content": []}})]},
     "exceeds the number of toolUse blocks"),
    ({"messages": [user({"text": "q"}), assistant({"toolUse": {
        "toolUseId": "t1", "name": "f", "input": {}}}),
        user({"toolResult": {"toolUseId": "t1", "content": [{"text": "r"}]}})]},
     "toolConfig field must be defined"),
    ({"messages": [user({"document": {"format": "pdf", "name": "a.pdf",
                                      "source": {"bytes": "JVBE"}}})]},
     "Document names can only contain")])
def test_requests_bedrock_refuses(body, message):
    assert message in refused(body)


def test_claude_rules_thinking_budget_and_signatures():
    thinking = {"additionalModelRequestFields": {"thinking": {"type": "enabled",
                                                              "budget_tokens": 500}},
                "inferenceConfig": {"maxTokens": 2000}}
    assert "greater than or equal to 1024" in refused({**OK, **thinking}, CLAUDE)
    forged = {"messages": [user({"text": "q"}), assistant({"reasoningContent": {
        "reasoningText": {"text": "t", "signature": "forged"}}}, {"text": "a"}),
        user({"text": "again"})]}
    assert "Invalid `signature`" in refused(forged, CLAUDE)


def test_a_valid_request_passes():
    assert check_converse(OK, "us.amazon.nova-pro-v1:0", stream=True) is OK


def _signed(url: str, body: bytes, region: str = "us-east-1") -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update(sign(Frozen("AKIAEMU", "emu/secret", None), region, url, body, headers))
    return headers


def test_sigv4_checks_and_their_wording():
    from multidict import CIMultiDict
    url, body = "http://127.0.0.1:1/model/m/converse", b"{}"
    creds = {"AKIAEMU": ("emu/secret", None)}

    def check(headers, now=None, region="us-east-1"):
        h = CIMultiDict({**headers, "Host": "127.0.0.1:1"})
        return check_sigv4("POST", "/model/m/converse", h, body, region, creds, now)

    good = _signed(url, body)
    assert check(good) == "AKIAEMU"
    cases = [({}, "MissingAuthenticationTokenException", "Missing Authentication Token"),
             (_signed(url, body, "eu-west-1"), "InvalidSignatureException",
              "Credential should be scoped to a valid region, not 'eu-west-1'"),
             ({**good, "X-Amz-Date": "20200101T000000Z"}, "InvalidSignatureException",
              "Date in Credential scope does not match"),
             ({**good, "Authorization": good["Authorization"].replace("AKIAEMU", "AKIAOTHER")},
              "UnrecognizedClientException", "security token included in the request is invalid")]
    for headers, name, message in cases:
        with pytest.raises(ApiError) as info:
            check(headers)
        assert info.value.status == 403 and info.value.headers["x-amzn-ErrorType"].startswith(name)
        assert message in info.value.body["message"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    with pytest.raises(ApiError) as info:
        check(good, now=later)
    assert "Signature expired" in info.value.body["message"]
    tampered = {**good, "Content-Type": "text/plain"}
    with pytest.raises(ApiError) as info:
        check(tampered)
    assert "signature we calculated does not match" in info.value.body["message"]


def test_streams_are_event_stream_frames_botocore_reads():
    with Emulator(bedrock_api_keys=["ABSKemu"]) as emu:
        r = httpx.post(f"{emu.url}/model/us.amazon.nova-pro-v1:0/converse-stream",
                       content=orjson.dumps(OK), headers={"Authorization": "Bearer ABSKemu"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
        buf = EventStreamBuffer()
        buf.add_data(r.content)
        names = [m.headers[":event-type"] for m in buf]
        assert names[0] == "messageStart" and names[-2:] == ["messageStop", "metadata"]
        bad = httpx.post(f"{emu.url}/model/m/converse", content=b"{}",
                         headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 403
        assert bad.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException:")
        assert emu.requests()[-1]["model"] == "m"
