"""OpenAI's Conversations API through the real gateway (the four services, memory and
PostgreSQL state) with the real openai SDK and the OpenAI Agents SDK's
`OpenAIConversationsSession`; the strict emulator is the upstream and shows what each turn
carried. Keys map to tenants: another tenant's conversation is a 404."""
from __future__ import annotations

import httpx
import openai
import pytest

from tests.e2e.harness import Gateway, free_port, gateway_config
from tests.support.postgres import PostgresServer

CLAUDE = "claude-3-5-sonnet-20241022"
UPSTREAM_PATH = {CLAUDE: "/messages", "gpt-4o-mini": "/chat/completions"}
ALICE, BOB = "key-alice", "key-bob"
AUTH = f"""
auth:
  keys:
    - {{key: {ALICE}, tenant: team-alice}}
    - {{key: {BOB}, tenant: team-bob}}
"""


@pytest.fixture(scope="module")
def cgw(emulator, tmp_path_factory):
    port = free_port()
    gw = Gateway(gateway_config(emulator.url, port, extra=AUTH,
                                state="state_storage: {type: memory}"),
                 tmp_path_factory.mktemp("conversations"), port).start()
    yield gw
    gw.stop()


def only_loopback(request: httpx.Request) -> None:
    assert request.url.host == "127.0.0.1", f"a call left the machine: {request.url}"


def oa(gw: Gateway, key: str = ALICE) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gw.url}/v1", max_retries=0, timeout=30,
                         http_client=httpx.Client(event_hooks={"request": [only_loopback]}))


def upstream_turns(emu, model: str) -> list[list[tuple[str, str]]]:
    """(role, text) of the messages of every upstream call for `model`'s route, in order."""
    out = []
    for r in emu.requests():
        if not r["path"].endswith(UPSTREAM_PATH[model]):
            continue
        turn = []
        for m in r["json"]["messages"]:
            c = m.get("content")
            if isinstance(c, list):
                c = "".join(b.get("text", "") for b in c if isinstance(b, dict))
            turn.append((m["role"], c or ""))
        out.append(turn)
    return out


def test_conversations_and_items_with_the_sdk(cgw, emu):
    client = oa(cgw)
    conv = client.conversations.create(
        metadata={"topic": "tea"},
        items=[{"type": "message", "role": "user", "content": "I like green tea"}])
    assert conv.id.startswith("conv_") and conv.object == "conversation"
    assert conv.metadata == {"topic": "tea"} and conv.created_at > 0
    got = client.conversations.retrieve(conv.id)
    assert (got.id, got.metadata, got.created_at) == (conv.id, {"topic": "tea"},
                                                      conv.created_at)
    assert client.conversations.update(conv.id, metadata={"topic": "coffee"}).metadata == {
        "topic": "coffee"}
    added = client.conversations.items.create(conv.id, items=[
        {"type": "message", "role": "assistant", "content": f"noted {n}"} for n in range(25)
        ][:20])
    assert added.object == "list" and len(added.data) == 20
    assert added.first_id == added.data[0].id and added.data[0].type == "message"
    more = client.conversations.items.create(conv.id, items=[
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "found"}])
    # The SDK pages through all 23 items (limit 5: five pages) in ascending order.
    listed = list(client.conversations.items.list(conv.id, order="asc", limit=5))
    assert len(listed) == 23
    assert listed[0].content[0].text == "I like green tea"
    assert [i.type for i in listed[-2:]] == ["function_call", "function_call_output"]
    newest = client.conversations.items.list(conv.id, limit=1)
    assert newest.data[0].id == more.data[-1].id and newest.has_more
    one = client.conversations.items.retrieve(listed[0].id, conversation_id=conv.id,
                                              include=["message.input_image.image_url"])
    assert one.id == listed[0].id and one.role == "user"
    after = client.conversations.items.delete(listed[0].id, conversation_id=conv.id)
    assert after.id == conv.id and after.object == "conversation"
    with pytest.raises(openai.NotFoundError) as info:
        client.conversations.items.retrieve(listed[0].id, conversation_id=conv.id)
    assert info.value.body["message"] == f"Item with id '{listed[0].id}' not found."
    deleted = client.conversations.delete(conv.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (conv.id, True,
                                                             "conversation.deleted")
    with pytest.raises(openai.NotFoundError) as info:
        client.conversations.retrieve(conv.id)
    assert info.value.body["message"] == f"Conversation with id '{conv.id}' not found."
    with pytest.raises(openai.BadRequestError) as bad:
        client.conversations.retrieve("resp_123")
    assert bad.value.body["param"] == "conversation_id"
    with pytest.raises(openai.BadRequestError) as bad:
        client.conversations.items.create(conv.id, items=[
            {"type": "message", "role": "user", "content": "x"}] * 21)
    assert bad.value.body["param"] == "items"
    assert not emu.requests()   # none of this reached an upstream


@pytest.mark.parametrize("model", ["gpt-4o-mini", CLAUDE])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_two_turns_with_conversation_carry_the_history_upstream(cgw, emu, model, stream):
    client = oa(cgw)
    conv = client.conversations.create()

    def ask(text: str) -> openai.types.responses.Response:
        if stream:
            with client.responses.stream(model=model, input=text, conversation=conv.id,
                                         instructions="be brief") as s:
                for _ in s:
                    pass
                return s.get_final_response()
        return client.responses.create(model=model, input=text, instructions="be brief",
                                       conversation={"id": conv.id})
    first = ask("My name is Alice")
    assert first.status == "completed" and first.conversation.id == conv.id
    second = ask("What's my name?")
    turns = upstream_turns(emu, model)
    assert len(turns) == 2
    history = [t for t in turns[1] if t[0] != "system"]
    assert history == [("user", "My name is Alice"), ("assistant", first.output_text),
                       ("user", "What's my name?")]
    items = list(client.conversations.items.list(conv.id, order="asc"))
    assert [(i.role, i.content[0].text) for i in items] == [
        ("user", "My name is Alice"), ("assistant", first.output_text),
        ("user", "What's my name?"), ("assistant", second.output_text)]
    assert items[1].id == first.output[0].id   # the output item as the client got it


WEATHER = {"type": "function", "name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


@pytest.mark.parametrize("model", ["gpt-4o-mini", CLAUDE])
def test_a_tool_loop_inside_a_conversation(cgw, emu, model):
    """The call item is kept, so the next turn's output item pairs with it upstream (the
    emulator refuses a tool result that answers no call)."""
    client = oa(cgw)
    conv = client.conversations.create()
    emu.script(model, {"reply": {"tool_calls": [
        {"id": "call_7", "name": "get_weather", "arguments": {"city": "Oslo"}}]}},
               {"reply": {"text": "It is sunny in Oslo."}})
    first = client.responses.create(model=model, input="Weather in Oslo?", tools=[WEATHER],
                                    conversation=conv.id)
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert call.name == "get_weather" and call.call_id == "call_7"
    second = client.responses.create(model=model, tools=[WEATHER], conversation=conv.id,
                                     input=[{"type": "function_call_output",
                                             "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "It is sunny in Oslo."
    last = [r["json"] for r in emu.requests() if r["path"].endswith(UPSTREAM_PATH[model])][-1]
    flat = str(last["messages"])
    assert "Weather in Oslo?" in flat and "call_7" in flat and "sunny" in flat
    items = list(client.conversations.items.list(conv.id, order="asc"))
    assert [i.type for i in items] == ["message", "function_call", "function_call_output",
                                       "message"]
    assert items[1].id == call.id and items[2].call_id == "call_7"


def test_conversation_and_previous_response_id_together_is_400(cgw, emu):
    client = oa(cgw)
    conv = client.conversations.create()
    prev = client.responses.create(model="gpt-4o-mini", input="hi")
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-4o-mini", input="x", conversation=conv.id,
                                previous_response_id=prev.id)
    assert info.value.code == "mutually_exclusive_parameters"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o-mini", input="x",
                                conversation="conv_" + "0" * 48)
    assert len(emu.requests()) == 1   # only the first, valid request went upstream


def test_another_tenants_conversation_is_404(cgw, emu):
    mine = oa(cgw, ALICE).conversations.create(
        items=[{"type": "message", "role": "user", "content": "secret plans"}])
    theirs = oa(cgw, BOB)
    for call in (lambda: theirs.conversations.retrieve(mine.id),
                 lambda: theirs.conversations.update(mine.id, metadata={"x": "y"}),
                 lambda: theirs.conversations.items.list(mine.id),
                 lambda: theirs.conversations.items.create(mine.id, items=[
                     {"type": "message", "role": "user", "content": "sneak"}]),
                 lambda: theirs.responses.create(model="gpt-4o-mini", input="x",
                                                 conversation=mine.id),
                 lambda: theirs.conversations.delete(mine.id)):
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert info.value.body["message"] == f"Conversation with id '{mine.id}' not found."
    items = list(oa(cgw, ALICE).conversations.items.list(mine.id))
    assert [i.content[0].text for i in items] == ["secret plans"]   # untouched
    assert not emu.requests()


@pytest.mark.parametrize("model", ["gpt-4o-mini", CLAUDE])
async def test_agents_sdk_conversations_session_two_turns(cgw, emu, model):
    from agents import Agent, OpenAIConversationsSession, Runner, set_tracing_disabled
    from agents.models.openai_responses import OpenAIResponsesModel

    set_tracing_disabled(True)   # the SDK would otherwise send traces to api.openai.com
    client = openai.AsyncOpenAI(
        api_key=ALICE, base_url=f"{cgw.url}/v1", max_retries=0, timeout=30,
        http_client=httpx.AsyncClient(event_hooks={"request": [_async_only_loopback]}))
    agent = Agent(name="assistant", instructions="Answer briefly.",
                  model=OpenAIResponsesModel(model=model, openai_client=client))
    session = OpenAIConversationsSession(openai_client=client)
    first = await Runner.run(agent, "My name is Alice", session=session)
    assert "My name is Alice" in first.final_output
    second = await Runner.run(agent, "What's my name?", session=session)
    assert second.final_output
    turns = upstream_turns(emu, model)
    assert len(turns) == 2
    assert [t for t in turns[1] if t[0] != "system"] == [
        ("user", "My name is Alice"), ("assistant", first.final_output),
        ("user", "What's my name?")]
    # The session's conversation lives in the gateway: both turns, input and output.
    stored = await session.get_items()
    assert [(i["role"], i["content"][0]["text"]) for i in stored] == [
        ("user", "My name is Alice"), ("assistant", first.final_output),
        ("user", "What's my name?"), ("assistant", second.final_output)]
    conv = await client.conversations.retrieve(session.session_id)
    assert conv.id == session.session_id
    await session.clear_session()
    with pytest.raises(openai.NotFoundError):
        await client.conversations.retrieve(conv.id)


async def _async_only_loopback(request: httpx.Request) -> None:
    only_loopback(request)


def test_conversation_on_postgres_survives_a_gateway_restart(emulator, tmp_path):
    with PostgresServer() as pg:
        port = free_port()
        state = (f"state_storage:\n  type: postgres\n  connection_string: "
                 f"{pg.create_database()}\n")
        config = gateway_config(emulator.url, port, extra=AUTH, state=state)
        gw = Gateway(config, tmp_path, port).start()
        try:
            conv = oa(gw).conversations.create(metadata={"who": "alice"})
            first = oa(gw).responses.create(model=CLAUDE, input="My name is Alice",
                                            conversation=conv.id)
        finally:
            gw.stop()
        emulator.reset()
        gw = Gateway(config, tmp_path, port).start()
        try:
            assert oa(gw).conversations.retrieve(conv.id).metadata == {"who": "alice"}
            oa(gw).responses.create(model=CLAUDE, input="What's my name?",
                                    conversation=conv.id)
            with pytest.raises(openai.NotFoundError):
                oa(gw, BOB).conversations.retrieve(conv.id)
        finally:
            gw.stop()
    assert upstream_turns(emulator, CLAUDE) == [[
        ("user", "My name is Alice"), ("assistant", first.output_text),
        ("user", "What's my name?")]]
