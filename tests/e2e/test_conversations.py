"""Conversation state through the gateway: the Responses API and chat-completions
continuity, memory store (the session gateway)."""
import asyncio
import json

import httpx
import openai
import pytest

CLAUDE = "claude-3-5-sonnet-20241022"
UPSTREAM_PATH = {CLAUDE: "/messages", "gpt-4o-mini": "/chat/completions"}


def upstream_texts(emu, model):
    """(role, text) of every message the upstream received on its last call."""
    body = [r for r in emu.requests() if r["path"].endswith(UPSTREAM_PATH[model])][-1]["json"]
    out = []
    for m in body["messages"]:
        c = m.get("content")
        if isinstance(c, list):
            c = "".join(b.get("text", "") for b in c if isinstance(b, dict))
        out.append((m["role"], c or ""))
    return out


@pytest.mark.parametrize("model", [CLAUDE, "gpt-4o-mini"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_responses_three_turns_upstream_sees_history_in_order(openai_client, emu, model,
                                                              stream):
    def ask(text, prev=None):
        if stream:
            with openai_client.responses.stream(model=model, input=text,
                                                previous_response_id=prev) as s:
                for _ in s:
                    pass
                return s.get_final_response()
        return openai_client.responses.create(model=model, input=text,
                                              previous_response_id=prev)
    r1 = ask("My name is Alice")
    assert r1.id.startswith("resp_") and r1.status == "completed"
    assert "My name is Alice" in r1.output_text
    r2 = ask("What's my name?", r1.id)
    r3 = ask("And again?", r2.id)
    texts = upstream_texts(emu, model)
    assert [t[0] for t in texts] == ["user", "assistant", "user", "assistant", "user"]
    assert texts[0][1] == "My name is Alice"
    assert texts[1][1] == r1.output_text
    assert texts[2][1] == "What's my name?"
    assert texts[3][1] == r2.output_text
    assert texts[4][1] == "And again?"
    assert r3.previous_response_id == r2.id


@pytest.mark.parametrize("model", [CLAUDE, "gpt-4o-mini"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_chat_completions_continuity(openai_client, emu, model, stream):
    def ask(text, prev=None):
        kw = {"metadata": {"response_id": prev}} if prev else {}
        msgs = [{"role": "user", "content": text}]
        if stream:
            chunks = list(openai_client.chat.completions.create(
                model=model, messages=msgs, stream=True, **kw))
            return chunks[0].id, "".join(c.choices[0].delta.content or ""
                                          for c in chunks if c.choices)
        c = openai_client.chat.completions.create(model=model, messages=msgs, **kw)
        return c.id, c.choices[0].message.content
    id1, text1 = ask("My name is Alice")
    id2, _ = ask("What's my name?", id1)
    ask("Third turn", id2)
    texts = upstream_texts(emu, model)
    assert texts[:2] == [("user", "My name is Alice"), ("assistant", text1)]
    assert texts[2] == ("user", "What's my name?")
    assert texts[-1] == ("user", "Third turn")
    body = [r for r in emu.requests() if r["path"].endswith(UPSTREAM_PATH[model])][-1]["json"]
    assert "response_id" not in json.dumps(body.get("metadata") or {})


def test_unknown_previous_response_is_404(openai_client):
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.create(model="gpt-4o-mini", input="x",
                                       previous_response_id="resp_doesnotexist")
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
            metadata={"response_id": "chatcmpl-doesnotexist"})


def test_store_false_is_not_kept(openai_client):
    r = openai_client.responses.create(model="gpt-4o-mini", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.create(model="gpt-4o-mini", input="x",
                                       previous_response_id=r.id)


def test_get_delete_and_input_items(openai_client):
    r = openai_client.responses.create(model="gpt-4o-mini", input="keep me",
                                       instructions="Be brief.")
    got = openai_client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text
    items = openai_client.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].content[0].text == "keep me"
    openai_client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(r.id)


def test_function_call_output_across_turns(openai_client, emu):
    emu.script("gpt-4o-mini", {"reply": {"tool_calls": [
        {"id": "call_w", "name": "get_weather", "arguments": {"city": "Paris"}}]}})
    tools = [{"type": "function", "name": "get_weather", "description": "Weather",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    r1 = openai_client.responses.create(model="gpt-4o-mini", input="Weather in Paris?",
                                        tools=tools)
    call = [o for o in r1.output if o.type == "function_call"][0]
    assert call.call_id == "call_w" and json.loads(call.arguments) == {"city": "Paris"}
    r2 = openai_client.responses.create(
        model="gpt-4o-mini", previous_response_id=r1.id, tools=tools,
        input=[{"type": "function_call_output", "call_id": "call_w", "output": "18C"}])
    assert r2.status == "completed"
    msgs = [r for r in emu.requests() if r["path"].endswith("/chat/completions")][-1]["json"][
        "messages"]
    assert msgs[0] == {"role": "user", "content": "Weather in Paris?"}
    assert msgs[1]["tool_calls"][0]["id"] == "call_w"
    assert msgs[2] == {"role": "tool", "tool_call_id": "call_w", "content": "18C"}


def test_hundred_concurrent_conversations_do_not_cross(gateway, emu):
    async def conversation(client, n):
        r1 = await client.responses.create(model="gpt-4o-mini", input=f"I am user {n}")
        r2 = await client.responses.create(model="gpt-4o-mini", input=f"Who am I, {n}?",
                                           previous_response_id=r1.id)
        return n, r1, r2

    async def main():
        client = openai.AsyncOpenAI(api_key="k", base_url=f"{gateway.url}/v1", max_retries=0,
                                    http_client=httpx.AsyncClient(
                                        limits=httpx.Limits(max_connections=100)))
        return await asyncio.gather(*(conversation(client, n) for n in range(100)))

    results = asyncio.run(main())
    assert len({r2.id for _, _, r2 in results}) == 100
    for n, r1, _ in results:
        assert f"I am user {n}" in r1.output_text
    # Every upstream second turn carried its own first turn and nobody else's.
    second_turns = [r["json"]["messages"] for r in emu.requests()
                    if r["path"].endswith("/chat/completions") and len(r["json"]["messages"]) == 3]
    assert len(second_turns) == 100
    for msgs in second_turns:
        n = msgs[2]["content"].split(", ")[1].rstrip("?")
        assert msgs[0]["content"] == f"I am user {n}"


def test_structured_output_reaches_an_openai_upstream(openai_client, emu):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    openai_client.responses.create(model="gpt-4o-mini", input="json please", text={
        "format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}})
    sent = [r for r in emu.requests() if r["path"].endswith("/chat/completions")][-1]["json"]
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "place", "schema": schema, "strict": True}}
    raw = openai_client.responses.with_raw_response.create(
        model=CLAUDE, input="json please", text={"format": {"type": "json_object"}})
    assert "response_format" not in raw.headers.get("x-switchyard-dropped-params", "")


@pytest.mark.parametrize("model", [CLAUDE, "gpt-4o-mini"])
def test_streamed_parallel_function_calls_on_responses(openai_client, emu, model):
    emu.script(model, {"interleave": True, "reply": {"text": "Both.", "tool_calls": [
        {"id": "call_p", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"id": "call_t", "name": "get_weather", "arguments": {"city": "Tokyo"}}]}})
    tools = [{"type": "function", "name": "get_weather",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    with openai_client.responses.stream(model=model, input="Paris and Tokyo?",
                                        tools=tools) as s:
        kinds = [e.type for e in s]
        final = s.get_final_response()
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.call_id, json.loads(c.arguments)) for c in calls] == [
        ("call_p", {"city": "Paris"}), ("call_t", {"city": "Tokyo"})]
    assert final.output_text == "Both."
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.function_call_arguments.done") == 2
    stored = openai_client.responses.retrieve(final.id)
    assert [o.type for o in stored.output] == [o.type for o in final.output]
