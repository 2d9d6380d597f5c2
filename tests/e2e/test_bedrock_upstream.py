"""Amazon Bedrock through the gateway with Plano's own config: the model-alias demo
(tests/e2e/data/plano_model_alias_demo.yaml, Bedrock entries authenticated with a Bedrock
API key) checks clean as written, and — its base URLs pointed at the emulator — serves its
Bedrock alias and entries to OpenAI, Anthropic and Gemini clients. An entry signing with a
named profile of the standard AWS credential chain rides along."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import anthropic
import openai
import pytest
import yaml

from tests.e2e.clients import TOOL_SCHEMA, GeminiClient, gemini_sdk
from tests.e2e.harness import ROOT, Gateway, free_port
from tests.emulator import Emulator

DEMO = pathlib.Path(__file__).parent / "data" / "plano_model_alias_demo.yaml"
BEARER = "ABSKZW11bGF0ZWQtYmVkcm9jay1hcGkta2V5LTAwMDE="
PROFILE_AKID, PROFILE_SECRET = "AKIAPROFILEEMULATED1", "profile/secret+key/emulated01"
NOVA_PREMIER, NOVA_PRO = "us.amazon.nova-premier-v1:0", "us.amazon.nova-pro-v1:0"
HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
KEYS = {"OPENAI_API_KEY": "sk-openai-demo-0001", "ANTHROPIC_API_KEY": "sk-ant-demo-0001",
        "AZURE_API_KEY": "azure-demo-key-0001", "GROK_API_KEY": "xai-demo-key-0001",
        "AWS_BEARER_TOKEN_BEDROCK": BEARER}


@pytest.fixture(scope="module")
def emulator():
    with Emulator(bedrock_api_keys=[BEARER], bedrock_region="us-west-2",
                  bedrock_credentials=[(PROFILE_AKID, PROFILE_SECRET, None)]) as emu:
        yield emu


def served_config(emulator_url: str, port: int) -> str:
    """The demo with every upstream at the emulator (Bedrock's region then comes from
    AWS_REGION), plus an extension entry signing with a profile."""
    data = yaml.safe_load(DEMO.read_text())
    data["listeners"][0].update(address="127.0.0.1", port=port, timeout="10s")
    for entry in data["model_providers"]:
        prefix = entry["model"].split("/", 1)[0]
        entry["base_url"] = f"{emulator_url}/ollama/v1" if prefix == "ollama" else emulator_url
    data["model_providers"].append({"model": f"amazon_bedrock/{HAIKU}",
                                    "base_url": emulator_url, "aws_profile": "emulated"})
    data.pop("tracing")
    return yaml.safe_dump(data)


@pytest.fixture(scope="module")
def gateway(emulator, tmp_path_factory):
    work = tmp_path_factory.mktemp("bedrock-gateway")
    (work / "credentials").write_text(f"[emulated]\naws_access_key_id = {PROFILE_AKID}\n"
                                      f"aws_secret_access_key = {PROFILE_SECRET}\n")
    env = {**KEYS, "AWS_REGION": "us-west-2", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_SHARED_CREDENTIALS_FILE": str(work / "credentials"),
           "AWS_CONFIG_FILE": str(work / "no-config")}
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:   # the launcher passes its environment on
        for key, value in env.items():
            mp.setenv(key, value)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                    "AWS_PROFILE"):
            mp.delenv(key, raising=False)
        gw = Gateway(served_config(emulator.url, port), work, port).start()
    yield gw
    gw.stop()


@pytest.fixture
def emu(emulator):
    emulator.reset()
    return emulator


@pytest.fixture
def oai(gateway):
    return openai.OpenAI(api_key="k", base_url=f"{gateway.url}/v1", max_retries=0, timeout=30)


@pytest.fixture
def ant(gateway):
    return anthropic.Anthropic(api_key="k", base_url=gateway.url, max_retries=0, timeout=30)


def bedrock_requests(emu) -> list[dict]:
    return [r for r in emu.requests() if r["api"] == "bedrock"]


def test_the_demo_config_checks_clean_as_written():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run([sys.executable, "-m", "switchyard", "check", "--config", str(DEMO)],
                         cwd=ROOT, env={**env, **KEYS}, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    for model in (NOVA_PREMIER, NOVA_PRO):
        line = next(x for x in out.stdout.splitlines() if x.startswith(f"amazon_bedrock/{model}"))
        assert "https://bedrock-runtime.us-west-2.amazonaws.com/model/{model}/converse" in line
        assert line.split()[-1] == "bedrock"
    assert BEARER not in out.stdout + out.stderr


def test_the_demo_refuses_a_missing_bedrock_key():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    keys = {k: v for k, v in KEYS.items() if k != "AWS_BEARER_TOKEN_BEDROCK"}
    out = subprocess.run([sys.executable, "-m", "switchyard", "check", "--config", str(DEMO)],
                         cwd=ROOT, env={**env, **keys}, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0
    assert "access_key uses $AWS_BEARER_TOKEN_BEDROCK, which is not set" in \
        out.stdout + out.stderr


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_the_coding_alias_serves_from_bedrock_with_the_api_key(oai, emu, stream):
    emu.script(NOVA_PREMIER, {"reply": {"text": "def f(): pass"}, "chunks": 2})
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in oai.chat.completions.create(
            model="coding-model", stream=True,
            messages=[{"role": "user", "content": "write code"}]) if c.choices)
    else:
        text = oai.chat.completions.create(
            model="coding-model", messages=[{"role": "user", "content": "write code"}]
        ).choices[0].message.content
    assert text == "def f(): pass"
    sent = bedrock_requests(emu)[-1]
    op = "converse-stream" if stream else "converse"
    assert sent["path"] == f"/model/{NOVA_PREMIER}/{op}" and sent["status"] == 200
    assert sent["headers"]["authorization"] == f"Bearer {BEARER}"


def test_a_bedrock_entry_by_its_model_id_serves_anthropic_clients_with_tools(ant, emu):
    emu.script(NOVA_PRO, {"reply": {"tool_calls": [
        {"id": "tooluse_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]}})
    with ant.messages.stream(model=NOVA_PRO, max_tokens=200, tools=[
            {"name": "get_weather", "input_schema": TOOL_SCHEMA}],
            messages=[{"role": "user", "content": "Weather in Oslo?"}]) as s:
        msg = s.get_final_message()
    assert msg.stop_reason == "tool_use"
    assert [(b.id, b.name, b.input) for b in msg.content if b.type == "tool_use"] == [
        ("tooluse_1", "get_weather", {"city": "Oslo"})]
    body = bedrock_requests(emu)[-1]["json"]
    assert body["inferenceConfig"]["maxTokens"] == 200
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"


def test_gemini_clients_reach_the_bedrock_alias(gateway, emu):
    r = GeminiClient(gemini_sdk(gateway.url)).ask("coding-model", [
        {"role": "user", "content": "hello from gemini"}], stream=True)
    assert r.text == "Echo: hello from gemini" and r.stop == "end"


def test_a_profile_of_the_credential_chain_signs_with_sigv4(oai, emu):
    r = oai.chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Echo: hi"
    sent = bedrock_requests(emu)[-1]
    assert sent["headers"]["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={PROFILE_AKID}/")   # the emulator checked the signature


def test_the_other_demo_entries_still_serve(oai, ant, emu):
    assert oai.chat.completions.create(model="arch.v1", messages=[
        {"role": "user", "content": "o3?"}]).choices[0].message.content == "Echo: o3?"
    assert ant.messages.create(model="creative-model", max_tokens=50, messages=[
        {"role": "user", "content": "poem"}]).content[0].text == "Echo: poem"


def test_the_api_key_is_never_shown_even_when_bedrock_echoes_it(oai, emu):
    emu.script(NOVA_PRO, {"status": 403, "error": {
        "type": "AccessDeniedException", "message": "key {key} may not call this model"}})
    with pytest.raises(openai.PermissionDeniedError) as info:
        oai.chat.completions.create(model=NOVA_PRO, messages=[{"role": "user", "content": "x"}])
    assert BEARER not in str(info.value.body) and "***" in str(info.value.body)
    assert "may not call this model" in str(info.value.body)
