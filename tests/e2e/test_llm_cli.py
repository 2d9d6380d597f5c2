"""Simon Willison's `llm` CLI through the gateway, configured as its users do for an
OpenAI-compatible server (`extra-openai-models.yaml` with `api_base`), on its Chat
Completions and its Responses model classes, on an OpenAI, an Anthropic and a Gemini route:
a streamed and a whole prompt, `--schema` structured output, and a `--functions` tool loop."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.e2e.clients import ROUTE_MODELS

ROUTES = ROUTE_MODELS
APIS = ("chat", "responses")
FORECAST = "Sunny in Paris, 21 C"
ANSWER = "It is sunny in Paris today."
TOOL = f'def get_weather(city: str) -> str:\n    """Today\'s weather in a city."""\n' \
       f'    return "{FORECAST}"\n'


@pytest.fixture(scope="module")
def llm_home(gateway, tmp_path_factory):
    """An LLM_USER_PATH whose extra models are the gateway's, one per route and API."""
    home = tmp_path_factory.mktemp("llm-home")
    models = [{"model_id": f"gw-{api}-{route}", "model_name": model,
               "api_base": f"{gateway.url}/v1", "supports_schema": True,
               "supports_tools": True, "responses": api == "responses"}
              for api in APIS for route, model in ROUTES.items()]
    (home / "extra-openai-models.yaml").write_text(yaml.safe_dump(models))
    return home


def llm(home, *args: str) -> str:
    """`llm prompt` as a user runs it (`--no-log`: no database of its own), its stdout."""
    env = {**os.environ, "LLM_USER_PATH": str(home)}
    env.pop("OPENAI_API_KEY", None)
    out = subprocess.run([sys.executable, "-m", "llm", "prompt", "--no-log",
                          "--key", "test-key", *args], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip()


@pytest.fixture(params=[(api, route) for api in APIS for route in ROUTES],
                ids=lambda p: f"{p[0]}-{p[1]}")
def model(request):
    api, route = request.param
    return f"gw-{api}-{route}", ROUTES[route]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_prompt(llm_home, emu, model, stream):
    model_id, _ = model
    args = ["-m", model_id, "Hello from llm"] + ([] if stream else ["--no-stream"])
    assert llm(llm_home, *args) == "Echo: Hello from llm"
    (req,) = emu.requests()
    assert req["status"] == 200


def test_schema(llm_home, emu, model):
    model_id, upstream = model
    emu.script(upstream, {"reply": {"json": {"city": "Paris", "population": 2100000}}})
    out = llm(llm_home, "-m", model_id, "--schema", "city str, population int",
              "Where is the Louvre?")
    assert json.loads(out) == {"city": "Paris", "population": 2100000}


def test_functions_tool_loop(llm_home, emu, model):
    model_id, upstream = model
    emu.script(upstream, {"reply": {"tool_calls": [{"name": "get_weather", "offered": True,
                                                    "arguments": {"city": "Paris"}}]}},
               {"reply": {"text": ANSWER}})
    out = llm(llm_home, "-m", model_id, "--functions", TOOL, "What's the weather in Paris?")
    assert out.endswith(ANSWER)
    first, second = emu.requests()
    assert FORECAST not in json.dumps(first["json"]) and FORECAST in json.dumps(second["json"])
