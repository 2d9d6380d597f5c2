"""The Vercel AI SDK (`ai` with its openai, anthropic and google providers; Node) through the
gateway, as its users write it: the OpenAI provider's chat and responses models, the
Anthropic and the Google providers, each on an OpenAI, an Anthropic and a Gemini route:
generateText, streamText, structured output (`Output.object`) and a tool loop with
`execute`. The SDK and the Node it needs are installed by scripts/install_clients.sh."""
from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from tests.e2e.harness import ROOT

CLIENTS_DIR = ROOT / ".clients"
NODE = CLIENTS_DIR / "node_modules" / ".bin" / "node"
SCRIPT = pathlib.Path(__file__).with_name("ai_sdk") / "run.mjs"
CLIENTS = ("openai_chat", "openai_responses", "anthropic", "google")
FORECAST = "Sunny in Paris, 21 C"
ANSWER = "It is sunny in Paris today."


@pytest.fixture(scope="module")
def script():
    """The script, copied beside .clients/node_modules: ES modules resolve packages from
    the importing file's folder (NODE_PATH is not read for them)."""
    if not NODE.exists():
        pytest.fail(f"{NODE} is missing: run scripts/install_clients.sh", pytrace=False)
    placed = CLIENTS_DIR / "ai_sdk_run.mjs"
    placed.write_text(SCRIPT.read_text())
    return placed


def ai_sdk(script, gateway, client: str, model: str, mode: str, prompt: str) -> dict:
    args = {"client": client, "gateway": gateway.url, "model": model, "mode": mode,
            "prompt": prompt, "forecast": FORECAST}
    out = subprocess.run([str(NODE), str(script), json.dumps(args)], capture_output=True,
                         text=True, timeout=60, cwd=CLIENTS_DIR,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(params=CLIENTS)
def client(request):
    return request.param


def test_generate_text(script, gateway, emu, client, route_model):
    r = ai_sdk(script, gateway, client, route_model, "text", "Hello from the AI SDK")
    assert r["text"] == "Echo: Hello from the AI SDK" and r["finishReason"] == "stop"
    assert r["usage"]["inputTokens"] > 0 and r["usage"]["outputTokens"] > 0


def test_stream_text(script, gateway, emu, client, route_model):
    emu.script(route_model, {"chunks": 4, "chunk_delay": 0.05, "reply": {"text": ANSWER}})
    r = ai_sdk(script, gateway, client, route_model, "stream", "What's the weather?")
    assert "".join(r["parts"]) == ANSWER and len(r["parts"]) >= 2
    assert r["finishReason"] == "stop" and r["usage"]["outputTokens"] > 0


def test_structured_output(script, gateway, emu, client, route_model):
    emu.script(route_model, {"reply": {"json": {"city": "Paris", "population": 2100000}}})
    r = ai_sdk(script, gateway, client, route_model, "object", "Where is the Louvre?")
    assert r["output"] == {"city": "Paris", "population": 2100000}


def test_tool_loop(script, gateway, emu, client, route_model):
    emu.script(route_model, {"reply": {"tool_calls": [{"name": "get_weather", "offered": True,
                                                 "arguments": {"city": "Paris"}}]}},
               {"reply": {"text": ANSWER}})
    r = ai_sdk(script, gateway, client, route_model, "tools", "What's the weather in Paris?")
    assert r["calls"] == ["Paris"] and r["text"] == ANSWER and r["steps"] == 2
    first, second = emu.requests()
    assert FORECAST in json.dumps(second["json"]) and FORECAST not in json.dumps(first["json"])
