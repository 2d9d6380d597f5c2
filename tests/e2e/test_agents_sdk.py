"""The OpenAI Agents SDK's tool loop through the gateway: its Responses model and its Chat
Completions model, each with a function tool, on an OpenAI and an Anthropic route, streamed
and not. The emulator calls the tool the agent offered; the SDK runs it and sends the result
back; the agent's final output is the emulator's answer."""
from __future__ import annotations

import pytest

ROUTES = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-20250514"}
FORECAST = "Sunny in Paris, 21 C"
ANSWER = "It is sunny in Paris today."


def tool_outputs(req: dict) -> list[str]:
    """Tool results in an upstream request (Chat Completions or Messages), as text."""
    out = []
    for m in req["json"]["messages"]:
        if m.get("role") == "tool":
            out.append(m["content"] if isinstance(m["content"], str) else
                       " ".join(p.get("text", "") for p in m["content"]))
        elif isinstance(m.get("content"), list):
            out += [b["content"] if isinstance(b["content"], str) else
                    " ".join(p.get("text", "") for p in b["content"])
                    for b in m["content"] if b.get("type") == "tool_result"]
    return out


def offered(req: dict) -> list[str]:
    return [t["function"]["name"] if "function" in t else t["name"]
            for t in req["json"].get("tools") or []]


@pytest.fixture
def agent_parts(gateway):
    from agents import function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)   # the SDK would otherwise send traces to api.openai.com
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Today's weather in a city."""
        calls.append(city)
        return FORECAST

    client = AsyncOpenAI(api_key="test-key", base_url=f"{gateway.url}/v1", max_retries=0,
                         timeout=30)
    return client, get_weather, calls


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_agent_runs_its_function_tool(agent_parts, emu, api, route, stream):
    from agents import Agent, Runner
    from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
    from agents.models.openai_responses import OpenAIResponsesModel

    client, tool, calls = agent_parts
    model = ROUTES[route]
    emu.script(model, {"reply": {"tool_calls": [{"name": "get_weather", "offered": True,
                                                 "arguments": {"city": "Paris"}}]}},
               {"reply": {"text": ANSWER}})
    cls = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
    agent = Agent(name="forecaster", instructions="Answer with the weather tool.",
                  tools=[tool], model=cls(model=model, openai_client=client))
    if stream:
        result = Runner.run_streamed(agent, "What's the weather in Paris?")
        kinds = [event.type async for event in result.stream_events()]
        assert "raw_response_event" in kinds
    else:
        result = await Runner.run(agent, "What's the weather in Paris?")
    assert result.final_output == ANSWER
    assert calls == ["Paris"]
    first, second = emu.requests()
    assert first["status"] == second["status"] == 200
    assert offered(first) == ["get_weather"]
    assert tool_outputs(second) == [FORECAST]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_agent_structured_output(agent_parts, emu, api, route):
    """`output_type`: the SDK asks for JSON-schema output and parses the reply into it."""
    from agents import Agent, Runner
    from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
    from agents.models.openai_responses import OpenAIResponsesModel
    from pydantic import BaseModel

    class Forecast(BaseModel):
        city: str
        celsius: int

    client, _, _ = agent_parts
    model = ROUTES[route]
    emu.script(model, {"reply": {"json": {"city": "Paris", "celsius": 21}}})
    cls = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
    agent = Agent(name="forecaster", instructions="Give the forecast.", output_type=Forecast,
                  model=cls(model=model, openai_client=client))
    result = await Runner.run(agent, "Forecast for Paris?")
    assert result.final_output == Forecast(city="Paris", celsius=21)
    (req,) = emu.requests()
    assert req["status"] == 200
