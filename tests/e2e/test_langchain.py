"""LangChain's chat models through the gateway, as its users write them: ChatOpenAI (Chat
Completions and the Responses API), ChatAnthropic and ChatGoogleGenerativeAI, each with
base_url at the gateway, on an OpenAI, an Anthropic and a Gemini route: invoke, stream,
the bind_tools loop and with_structured_output, against the strict emulator."""
from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from tests.e2e.clients import ROUTE_MODELS

GEMINI = ROUTE_MODELS["gemini"]
CLIENTS = ["chat_openai", "chat_openai_responses", "chat_anthropic", "chat_google"]
FORECAST = "Sunny in Paris, 21 C"
ANSWER = "It is sunny in Paris today."


class Place(BaseModel):
    city: str
    population: int


def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return FORECAST


def chat_model(client: str, gateway_url: str, model: str):
    """The LangChain chat model a user would build for `client`, pointed at the gateway
    (no retries: a test counts the upstream's requests)."""
    if client.startswith("chat_openai"):
        from langchain_openai import ChatOpenAI
        return ChatOpenAI(model=model, base_url=f"{gateway_url}/v1", api_key="test-key",
                          max_retries=0, timeout=30, stream_usage=True,
                          use_responses_api=client == "chat_openai_responses")
    if client == "chat_anthropic":
        from langchain_anthropic import ChatAnthropic
        return ChatAnthropic(model=model, base_url=gateway_url, api_key="test-key",
                             max_retries=0, default_request_timeout=30, max_tokens=256)
    from langchain_google_genai import ChatGoogleGenerativeAI
    return ChatGoogleGenerativeAI(model=model, base_url=gateway_url, google_api_key="test-key",
                                  max_retries=0, timeout=30)


@pytest.fixture(params=CLIENTS)
def client(request):
    return request.param


def upstream_bodies(emu) -> list[str]:
    """Every upstream request body the emulator got, as JSON text, in order."""
    reqs = emu.requests()
    assert all(r["status"] == 200 for r in reqs), [(r["path"], r["status"]) for r in reqs]
    return [json.dumps(r["json"]) for r in reqs]


def test_invoke(gateway, emu, client, route_model):
    from langchain_core.messages import HumanMessage, SystemMessage

    llm = chat_model(client, gateway.url, route_model)
    ai = llm.invoke([SystemMessage("Be brief, LangChain."), HumanMessage("Hello from LangChain")])
    assert ai.text == "Echo: Hello from LangChain"
    usage = ai.usage_metadata
    assert usage and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    (body,) = upstream_bodies(emu)
    assert "Be brief, LangChain." in body   # the system prompt reached the upstream


def test_stream(gateway, emu, client, route_model):
    llm = chat_model(client, gateway.url, route_model)
    emu.script(route_model, {"chunks": 4, "chunk_delay": 0.05,   # frames apart: chunks apart
                             "reply": {"text": ANSWER}})
    chunks = list(llm.stream("What's the weather?"))
    assert sum(1 for c in chunks if c.text) >= 2   # streamed in pieces, not in one
    whole = chunks[0]
    for c in chunks[1:]:
        whole += c
    assert whole.text == ANSWER
    assert whole.usage_metadata and whole.usage_metadata["output_tokens"] > 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_loop(gateway, emu, client, route_model, stream):
    from langchain_core.messages import HumanMessage, ToolMessage

    llm = chat_model(client, gateway.url, route_model).bind_tools([get_weather])
    emu.script(route_model, {"reply": {"tool_calls": [{"name": "get_weather", "offered": True,
                                                 "arguments": {"city": "Paris"}}]}},
               {"reply": {"text": ANSWER}})
    messages: list = [HumanMessage("What's the weather in Paris?")]
    if stream:
        chunks = list(llm.stream(messages))
        ai = chunks[0]
        for c in chunks[1:]:
            ai += c
    else:
        ai = llm.invoke(messages)
    (call,) = ai.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"} and call["id"]
    messages += [ai, ToolMessage(get_weather(**call["args"]), tool_call_id=call["id"])]
    final = llm.invoke(messages)
    assert final.text == ANSWER and not final.tool_calls
    first, second = upstream_bodies(emu)
    assert "get_weather" in first and FORECAST not in first
    assert FORECAST in second   # the tool's result went back upstream


def test_structured_output(gateway, emu, client, route_model):
    llm = chat_model(client, gateway.url, route_model).with_structured_output(Place)
    emu.script(route_model, {"reply": {"json": {"city": "Paris", "population": 2100000}}})
    assert llm.invoke("Where is the Louvre?") == Place(city="Paris", population=2100000)
    (body,) = upstream_bodies(emu)
    assert '"population"' in body   # the schema reached the upstream


def test_responses_state_carries_the_tool_loop(gateway, emu, route_model):
    """ChatOpenAI's `use_previous_response_id`: LangChain sends only the new messages and the
    gateway's stored conversation supplies the rest, so the upstream still sees it whole."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model=route_model, base_url=f"{gateway.url}/v1", api_key="test-key",
                     max_retries=0, timeout=30, use_responses_api=True,
                     use_previous_response_id=True).bind_tools([get_weather])
    emu.script(route_model, {"reply": {"tool_calls": [{"name": "get_weather", "offered": True,
                                                 "arguments": {"city": "Paris"}}]}},
               {"reply": {"text": ANSWER}})
    messages: list = [HumanMessage("What's the weather in Paris?")]
    ai = llm.invoke(messages)
    assert ai.response_metadata["id"].startswith("resp_")   # else LangChain resends it all
    (call,) = ai.tool_calls
    messages += [ai, ToolMessage(get_weather(**call["args"]), tool_call_id=call["id"])]
    assert llm.invoke(messages).text == ANSWER
    first, second = upstream_bodies(emu)
    # The second turn's upstream request holds the question and the call from the stored
    # turn (Gemini's calls carry no id upstream), and the tool's result LangChain sent.
    stored_call = '"functionCall"' if route_model == GEMINI else call["id"]
    assert "What's the weather in Paris?" in second and stored_call in second
    assert FORECAST in second
