"""The executor with the real Bedrock codec (SigV4 by botocore, event stream by botocore)
against the emulator's strict Converse API, which recomputes every signature."""
from __future__ import annotations

import pytest

from switchyard.common.canonical.aggregate import aggregate, turn_message
from switchyard.common.config.model import AwsSettings, ProviderEntry
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2
from switchyard.providers.execution import Executor
from switchyard.providers.http import ClientPool, Timeouts
from switchyard.providers.retry import RetryPolicy
from tests.emulator.runner import Emulator

AKID, SECRET, TOKEN = "AKIAEMULATED00000001", "emulated/secret+key/0001", "session-token-0001"
API_KEY = "ABSKemulatedBedrockApiKey0001"
REGION = "us-west-2"
CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "us.amazon.nova-pro-v1:0"
P = chat_pb2.ContentPart


@pytest.fixture(scope="module")
def emulator():
    with Emulator(bedrock_credentials=[(AKID, SECRET, TOKEN)], bedrock_api_keys=[API_KEY],
                  bedrock_region=REGION) as emu:
        yield emu


@pytest.fixture
def emu(emulator):
    emulator.reset()
    return emulator


def entry_for(emulator, auth: str = "sigv4", secret: str = SECRET,
              region: str = REGION) -> ProviderEntry:
    return ProviderEntry(
        name="amazon_bedrock/*", provider="amazon_bedrock", model="*", interface="bedrock",
        endpoint=f"{emulator.url}/model/{{model}}/converse", auth=auth,
        access_key=API_KEY if auth == "bearer" else AKID,
        aws=AwsSettings(region=region, secret_key=None if auth == "bearer" else secret,
                        session_token=None if auth == "bearer" else TOKEN))


@pytest.fixture
async def pool():
    p = ClientPool(Timeouts(1.0, 5.0, 5.0))
    yield p
    await p.close()


def executor(pool, entry: ProviderEntry) -> Executor:
    return Executor({entry.name: entry}.get, pool, retry=RetryPolicy(base_s=0.01, cap_s=0.02))


def generate(model: str, messages: list[chat_pb2.Message], *, stream: bool = True,
             retries: int = 2, **fields) -> providers_pb2.GenerateRequest:
    plan = router_pb2.RoutePlan(name=model, max_retries=retries, timeout_s=10.0, targets=[
        router_pb2.Target(provider="amazon_bedrock/*", model=model,
                          wire=chat_pb2.WIRE_FORMAT_BEDROCK_CONVERSE)])
    req = chat_pb2.ChatRequest(model=model, stream=stream, messages=messages,
                               source_format=chat_pb2.WIRE_FORMAT_OPENAI_CHAT, **fields)
    return providers_pb2.GenerateRequest(request=req, plan=plan, request_id="r-bedrock")


def user(t: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[P(text=chat_pb2.TextPart(text=t))])


async def events(ex: Executor, gen: providers_pb2.GenerateRequest) -> list[chat_pb2.StreamEvent]:
    return [e async for b in ex.generate(gen) for e in b.events]


@pytest.mark.parametrize("stream", [True, False])
async def test_signed_text_from_both_operations(emu, pool, stream):
    emu.script(NOVA, {"reply": {"text": "Hello from Nova"}, "chunks": 3})
    turn = aggregate(await events(executor(pool, entry_for(emu)),
                                  generate(NOVA, [user("hi")], stream=stream)))
    assert turn.error is None, turn.error
    assert turn.choices[0].parts[0].text.text == "Hello from Nova"
    assert turn.choices[0].stop_reason == chat_pb2.STOP_REASON_END_TURN
    sent = emu.requests()[-1]
    op = "converse-stream" if stream else "converse"
    assert sent["path"] == f"/model/{NOVA}/{op}" and sent["status"] == 200
    assert sent["headers"]["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={AKID}/") and f"/{REGION}/bedrock/aws4_request" in \
        sent["headers"]["authorization"]
    assert sent["headers"]["x-amz-security-token"] == TOKEN


async def test_a_bedrock_api_key_goes_as_a_bearer_token(emu, pool):
    turn = aggregate(await events(executor(pool, entry_for(emu, "bearer")),
                                  generate(NOVA, [user("hello")])))
    assert turn.error is None and "hello" in turn.choices[0].parts[0].text.text
    assert emu.requests()[-1]["headers"]["authorization"] == f"Bearer {API_KEY}"


async def test_a_wrong_secret_is_the_clients_401_and_never_shown(emu, pool):
    turn = aggregate(await events(executor(pool, entry_for(emu, secret="wrong/secret/key0")),
                                  generate(NOVA, [user("hi")])))
    assert turn.error is not None
    assert (turn.error.http_status, turn.error.type, turn.error.code) == (
        401, "authentication", "InvalidSignatureException")
    assert "signature we calculated does not match" in turn.error.message
    assert SECRET not in str(turn.error) and "wrong/secret" not in str(turn.error)


async def test_a_signature_for_another_region_is_refused(emu, pool):
    turn = aggregate(await events(executor(pool, entry_for(emu, region="eu-west-1")),
                                  generate(NOVA, [user("hi")])))
    assert turn.error.http_status == 401
    assert "Credential should be scoped to a valid region" in turn.error.message


async def test_throttling_is_retried_then_answers(emu, pool):
    emu.script(NOVA, {"status": 429}, {"reply": {"text": "finally"}})
    turn = aggregate(await events(executor(pool, entry_for(emu)), generate(NOVA, [user("x")])))
    assert turn.error is None and turn.choices[0].parts[0].text.text == "finally"
    assert [r["status"] for r in emu.requests()] == [429, 200]


@pytest.mark.parametrize(("status", "name", "expected"), [
    (400, "ValidationException", (400, "invalid_request")),
    (403, "AccessDeniedException", (403, "permission")),
    (429, "ModelNotReadyException", (503, "unavailable")),
    (503, "ServiceUnavailableException", (503, "unavailable")),
    (429, "ThrottlingException", (429, "rate_limit"))])
async def test_errors_map_by_exception_name_and_keep_the_message(emu, pool, status, name,
                                                                expected):
    emu.script(NOVA, {"status": status, "error": {"type": name, "message": f"{name} said no"}})
    turn = aggregate(await events(executor(pool, entry_for(emu)),
                                  generate(NOVA, [user("x")], retries=0)))
    assert (turn.error.http_status, turn.error.type) == expected
    assert turn.error.message == f"{name} said no" and turn.error.code == name


async def test_an_exception_mid_stream_ends_the_turn_with_an_error(emu, pool):
    emu.script(NOVA, {"reply": {"text": "one two three four five"},
                      "error_event_after_chunks": 3, "chunk_delay": 0.05,
                      "error": {"type": "ThrottlingException", "message": "slow down"}})
    evs = await events(executor(pool, entry_for(emu)), generate(NOVA, [user("x")]))
    assert any(e.HasField("delta") for e in evs)   # content came first: no retry after it
    assert evs[-1].HasField("error") and len(emu.requests()) == 1
    assert (evs[-1].error.http_status, evs[-1].error.message) == (429, "slow down")


async def test_a_stream_cut_before_message_stop_is_an_error(emu, pool):
    emu.script(NOVA, {"reply": {"text": "one two three four"}, "abort_after_chunks": 2})
    evs = await events(executor(pool, entry_for(emu)), generate(NOVA, [user("x")]))
    assert evs[-1].HasField("error") and evs[-1].error.http_status >= 500


async def test_claude_tool_loop_with_thinking_sends_signed_reasoning_back(emu, pool):
    ex = executor(pool, entry_for(emu))
    tool = chat_pb2.Tool(name="get_weather", parameters_json='{"type":"object"}')
    emu.script(CLAUDE, {"reply": {"thinking": "Look it up.", "tool_calls": [
        {"id": "tooluse_a", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"id": "tooluse_b", "name": "get_weather", "arguments": {"city": "Tokyo"}}]}})
    reasoning = chat_pb2.Reasoning(budget_tokens=2048)
    first = aggregate(await events(ex, generate(CLAUDE, [user("Paris and Tokyo?")],
                                                tools=[tool], reasoning=reasoning)))
    assert first.error is None, first.error
    choice = first.choices[0]
    assert choice.stop_reason == chat_pb2.STOP_REASON_TOOL_USE
    assert choice.parts[0].reasoning.signature and choice.parts[0].reasoning.text == "Look it up."
    assistant = turn_message(choice)
    results = chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[
        P(tool_result=chat_pb2.ToolResultPart(tool_call_id=p.tool_call.id, content=[
            P(text=chat_pb2.TextPart(text="sunny"))]))
        for p in assistant.parts if p.WhichOneof("kind") == "tool_call"])
    second = aggregate(await events(ex, generate(CLAUDE, [user("Paris and Tokyo?"), assistant,
                                                          results], tools=[tool],
                                                 reasoning=reasoning)))
    assert second.error is None, second.error
    sent = emu.requests()[-1]["json"]
    assert sent["messages"][1]["content"][0]["reasoningContent"]["reasoningText"][
        "signature"] == choice.parts[0].reasoning.signature
    assert [b["toolResult"]["toolUseId"] for b in sent["messages"][2]["content"]] == [
        "tooluse_a", "tooluse_b"]
    assert sent["additionalModelRequestFields"]["thinking"] == {"type": "enabled",
                                                                "budget_tokens": 2048}
