"""The real Codex and Claude Code CLIs driving the gateway, against the strict emulator.

Each CLI runs in a loopback jail (tests/e2e/loopback_jail.py): its own network namespace in
which the gateway is the only thing it can reach, with an HTTP(S) proxy trap and a DNS trap
that record any other destination it tries; every run asserts they recorded nothing. Each
CLI is driven on an OpenAI route and on an Anthropic route, through a prompt and through a
real tool call: the emulator calls a tool the CLI offered, the CLI runs it on a file in its
sandboxed working directory, and the next upstream request must carry the tool's output.
The CLIs come from scripts/install_clients.sh (pinned versions in .clients/).
"""
from __future__ import annotations

import json
import os
import pathlib
import re

import httpx
import pytest

from tests.e2e.harness import OPENAI_KEY, ROOT, Gateway, free_port, gateway_config
from tests.e2e.loopback_jail import JailResult, LoopbackJail

BIN = ROOT / ".clients" / "node_modules" / ".bin"
GATEWAY_KEY = "sk-switchyard-cli-test"
RUN_TIMEOUT = 60.0
SECRET = "the secret word is pumpernickel"
# Codex picks its tool set by the model's slug (prefix): gpt-5.5 gets the classic one
# (exec_command, a free-form `apply_patch` custom tool, tool_search, web_search). The gateway
# serves gpt-5.5 from an OpenAI entry and `gpt-5.5-claude`, an alias, from Claude.
CODEX_MODEL = {"openai": "gpt-5.5", "anthropic": "gpt-5.5-claude"}
CLAUDE_MODEL = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-5-5"}
UPSTREAM = {"gpt-5.5": "gpt-5.5", "gpt-5.5-claude": "claude-sonnet-5-5",
            "gpt-4o-mini": "gpt-4o-mini", "claude-sonnet-5-5": "claude-sonnet-5-5"}
ROUTES = ["openai", "anthropic"]
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from the gateway\n*** End Patch\n"


@pytest.fixture(scope="module")
def cli_gateway(emulator, tmp_path_factory):
    missing = [n for n in ("codex", "claude") if not (BIN / n).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/install_clients.sh")
    port = free_port()
    providers = f"  - model: openai/gpt-5.5\n    access_key: {OPENAI_KEY}\n    base_url: {emulator.url}\n"
    aliases = ("  gpt-5.5-claude: {target: claude-sonnet-5-5}\n"
               "  gpt-5.5-responses: {target: gpt-5-codex}\n")   # a Responses-only upstream
    gw = Gateway(gateway_config(emulator.url, port, state="state_storage: {type: memory}",
                                providers=providers, aliases=aliases, timeout="30s"),
                 tmp_path_factory.mktemp("cli-gateway"), port)
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def jail(cli_gateway, tmp_path_factory):
    with LoopbackJail(cli_gateway.port, tmp_path_factory.mktemp("jail")) as j:
        yield j


@pytest.fixture
def workdir(tmp_path) -> pathlib.Path:
    """The CLI's sandboxed working directory, with the file its tool call reads."""
    wd = tmp_path / "work"
    wd.mkdir()
    (wd / "notes.txt").write_text(SECRET + "\n")
    return wd


def base_env(tmp_path: pathlib.Path) -> dict[str, str]:
    """A minimal environment: nothing of the test process's (keys, proxies) leaks in."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb"}


def gateway_statuses(gw: Gateway) -> dict[tuple[str, str], float]:
    """switchyard_http_requests_total by (route, status), from the gateway's /metrics."""
    text = httpx.get(f"{gw.url}/metrics", timeout=5).text
    out = {}
    for m in re.finditer(r'^switchyard_http_requests_total\{route="([^"]+)",status="(\d+)"\} '
                         r'([0-9.e+]+)$', text, re.M):
        out[(m[1], m[2])] = float(m[3])
    return out


class Run:
    """One CLI run, checked: exit 0, no other destination tried, every request answered."""

    def __init__(self, gw: Gateway, emu, result: JailResult, before: dict) -> None:
        self.result, self.stdout = result, result.stdout
        assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}" \
                                       f"\nstderr: {result.stderr[-4000:]}"
        assert result.proxy_requests == [], f"tried to go elsewhere: {result.proxy_requests}"
        assert result.dns_queries == [], f"looked up other hosts: {result.dns_queries}"
        assert result.gateway_connections >= 1
        after = gateway_statuses(gw)
        self.gateway = {k: after[k] - before.get(k, 0) for k in after
                        if after[k] > before.get(k, 0)}
        refused = {k: n for k, n in self.gateway.items() if not k[1].startswith("2")}
        assert not refused, f"the gateway refused requests: {refused}\n{result.stderr[-3000:]}"
        self.upstream = emu.requests()
        bad = [(r["path"], r["status"]) for r in self.upstream if r["status"] != 200]
        assert not bad, f"upstream refused requests: {bad}"


def run_cli(gw, emu, jail, cmd: list[str], env: dict[str, str], cwd: pathlib.Path) -> Run:
    before = gateway_statuses(gw)
    return Run(gw, emu, jail.run(cmd, env=env, cwd=cwd, timeout=RUN_TIMEOUT), before)


# ---- what the upstream saw ------------------------------------------------------------------

def tool_names(req: dict) -> list[str]:
    tools = req["json"].get("tools") or []
    return [t["function"]["name"] if "function" in t else t.get("name") for t in tools]


def tool_outputs(req: dict) -> list[str]:
    """The tool results a request carries back, as text (Chat Completions or Messages)."""
    out = []
    for item in req["json"].get("input") or []:   # a Responses upstream
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            out.append(str(item["output"]))
    for m in req["json"].get("messages") or []:
        if m.get("role") == "tool":
            c = m["content"]
            out.append(c if isinstance(c, str) else " ".join(p.get("text", "") for p in c))
        elif isinstance(m.get("content"), list):
            for b in m["content"]:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    c = b.get("content")
                    out.append(c if isinstance(c, str) else
                               " ".join(p.get("text", "") for p in c or []))
    return out


def echoed(stdout: str, prompt: str) -> bool:
    """The emulator's default reply: "Echo: " and the last user turn's text, which ends with
    the prompt (Anthropic routes merge the CLI's context turn and the prompt into one)."""
    return stdout.lstrip().startswith("Echo: ") and stdout.rstrip().endswith(prompt)


def call_step(name: str | list[str], arguments: dict) -> dict:
    return {"reply": {"tool_calls": [{"name": name, "arguments": arguments, "offered": True}]}}


# ---- Codex ----------------------------------------------------------------------------------

def codex_home(tmp_path: pathlib.Path, gw: Gateway, websockets: bool = False) -> pathlib.Path:
    """A CODEX_HOME whose config points a custom provider at the gateway (wire_api
    "responses") and turns off everything that would leave the machine: the curated-plugin
    sync (github.com, chatgpt.com), analytics and OTel metrics (ab.chatgpt.com), update
    checks."""
    home = tmp_path / "codex-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(f"""
model_provider = "switchyard"
check_for_update_on_startup = false

[model_providers.switchyard]
name = "Switchyard"
base_url = "{gw.url}/v1"
env_key = "SWITCHYARD_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
supports_websockets = {str(websockets).lower()}

[features]
plugins = false

[analytics]
enabled = false

[otel]
exporter = "none"
metrics_exporter = "none"
trace_exporter = "none"
""")
    return home


def run_codex(gw, emu, jail, tmp_path, workdir, model: str, prompt: str,
              websockets: bool = False, resume: bool = False) -> Run:
    env = {**base_env(tmp_path), "CODEX_HOME": str(codex_home(tmp_path, gw, websockets)),
           "SWITCHYARD_API_KEY": GATEWAY_KEY}
    cmd = [str(BIN / "codex"), "exec", "--skip-git-repo-check", "--sandbox", "workspace-write",
           "--color", "never", "-m", model, *(["resume", "--last"] if resume else []), prompt]
    return run_cli(gw, emu, jail, cmd, env, workdir)


@pytest.mark.parametrize("route", ROUTES)
def test_codex_answers_a_prompt(cli_gateway, emu, jail, tmp_path, workdir, route):
    run = run_codex(cli_gateway, emu, jail, tmp_path, workdir, CODEX_MODEL[route],
                    "say hello to the gateway")
    assert echoed(run.stdout, "say hello to the gateway")
    assert run.gateway == {("create_response", "200"): 1}
    (req,) = run.upstream
    assert req["model"] == UPSTREAM[CODEX_MODEL[route]] and req["stream"] is True
    # Codex's whole tool set reached the upstream as function tools (the free-form
    # apply_patch and client-executed tool_search included; hosted web_search dropped).
    names = tool_names(req)
    assert {"exec_command", "apply_patch", "tool_search"} <= set(names)
    assert "web_search" not in names
    body = req["json"]
    if route == "openai":
        # Codex's reasoning effort and prompt cache key carried over; its system prompt
        # (developer message items) stays a developer message.
        assert body["reasoning_effort"] == "medium" and body["prompt_cache_key"]
        assert body["messages"][0]["role"] == "developer"
    else:
        assert body["thinking"]["type"] in ("enabled", "adaptive") and body["system"]


@pytest.mark.parametrize("route", ROUTES)
def test_codex_runs_a_shell_command(cli_gateway, emu, jail, tmp_path, workdir, route):
    upstream = UPSTREAM[CODEX_MODEL[route]]
    emu.script(upstream, call_step(["exec_command", "shell_command", "shell"],
                                   {"cmd": "cat notes.txt"}),
               {"reply": {"text": "The notes say pumpernickel."}})
    run = run_codex(cli_gateway, emu, jail, tmp_path, workdir, CODEX_MODEL[route],
                    "what do my notes say?")
    assert "The notes say pumpernickel." in run.stdout
    first, second = run.upstream
    assert "exec_command" in tool_names(first)
    (output,) = tool_outputs(second)
    assert SECRET in output and "exited with code 0" in output


@pytest.mark.parametrize("route", ROUTES)
def test_codex_applies_a_patch(cli_gateway, emu, jail, tmp_path, workdir, route):
    upstream = UPSTREAM[CODEX_MODEL[route]]
    emu.script(upstream, call_step("apply_patch", {"input": PATCH}),
               {"reply": {"text": "Created hello.txt."}})
    run = run_codex(cli_gateway, emu, jail, tmp_path, workdir, CODEX_MODEL[route],
                    "create hello.txt")
    assert "Created hello.txt." in run.stdout
    assert (workdir / "hello.txt").read_text() == "hello from the gateway\n"
    (output,) = tool_outputs(run.upstream[1])
    assert "Success" in output and "hello.txt" in output


def test_codex_applies_a_patch_through_a_responses_only_upstream(cli_gateway, emu, jail,
                                                                  tmp_path, workdir):
    """Same format both ends: Codex's free-form apply_patch reaches OpenAI's Responses API as
    a function tool whose schema strict mode accepts (the API makes tools strict by default)."""
    emu.script("gpt-5-codex", call_step("apply_patch", {"input": PATCH}),
               {"reply": {"text": "Created hello.txt."}})
    run = run_codex(cli_gateway, emu, jail, tmp_path, workdir, "gpt-5.5-responses",
                    "create hello.txt")
    assert "Created hello.txt." in run.stdout
    assert (workdir / "hello.txt").read_text() == "hello from the gateway\n"
    first, second = run.upstream
    assert first["path"].endswith("/responses") and first["json"]["store"] is False
    (output,) = tool_outputs(second)
    assert "Success" in output and "hello.txt" in output


@pytest.mark.parametrize("route", ROUTES)
def test_codex_resumes_a_session(cli_gateway, emu, jail, tmp_path, workdir, route):
    """`codex exec resume --last` sends the earlier turn back, its answer as assistant
    output_text; the upstream gets it as the assistant's turn."""
    model = CODEX_MODEL[route]
    run_codex(cli_gateway, emu, jail, tmp_path, workdir, model, "first question")
    emu.reset()
    run = run_codex(cli_gateway, emu, jail, tmp_path, workdir, model, "second question",
                    resume=True)
    assert echoed(run.stdout, "second question")
    (req,) = run.upstream
    said = [m for m in req["json"]["messages"] if m["role"] == "assistant"]
    assert len(said) == 1 and "Echo: " in json.dumps(said[0]["content"])
    assert "first question" in json.dumps(said[0]["content"])


def test_codex_falls_back_to_http_when_websockets_are_refused(cli_gateway, emu, jail, tmp_path,
                                                              workdir):
    """gpt-5.5 prefers the Responses WebSocket mode; the gateway answers the upgrade with 426
    and Codex goes on over HTTP at once."""
    run = run_codex(cli_gateway, emu, jail, tmp_path, workdir, CODEX_MODEL["openai"],
                    "over http please", websockets=True)
    assert echoed(run.stdout, "over http please")
    upgrades = [e for e in run.result.exchanges if e.upgrade == "websocket"]
    assert upgrades, f"Codex did not try the WebSocket mode: {run.result.exchanges}"
    assert {(e.request_line, e.status) for e in upgrades} == {("GET /v1/responses HTTP/1.1", 426)}
    assert run.gateway == {("create_response", "200"): 1} and len(run.upstream) == 1


# ---- Claude Code ----------------------------------------------------------------------------

def run_claude(gw, emu, jail, tmp_path, workdir, model: str, prompt: str,
               *allowed: str) -> Run:
    """`claude -p` with the gateway as ANTHROPIC_BASE_URL and every kind of non-essential
    traffic (telemetry, error reports, auto-update, release notes) off."""
    config = tmp_path / "claude-config"
    config.mkdir(exist_ok=True)
    env = {**base_env(tmp_path), "CLAUDE_CONFIG_DIR": str(config),
           "ANTHROPIC_BASE_URL": gw.url, "ANTHROPIC_API_KEY": GATEWAY_KEY,
           "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
           "DISABLE_AUTOUPDATER": "1", "DISABLE_UPDATES": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    cmd = [str(BIN / "claude"), "-p", prompt, "--model", model, "--output-format", "text"]
    if allowed:
        cmd += ["--allowedTools", *allowed]
    return run_cli(gw, emu, jail, cmd, env, workdir)


@pytest.mark.parametrize("route", ROUTES)
def test_claude_code_answers_a_prompt(cli_gateway, emu, jail, tmp_path, workdir, route):
    run = run_claude(cli_gateway, emu, jail, tmp_path, workdir, CLAUDE_MODEL[route],
                     "say hello to the gateway")
    assert echoed(run.stdout, "say hello to the gateway")
    assert run.gateway == {("create_message", "200"): 1}
    (req,) = run.upstream
    assert req["model"] == CLAUDE_MODEL[route] and req["stream"] is True
    assert {"Bash", "Read"} <= set(tool_names(req))
    body = req["json"]
    if route == "anthropic":
        # Same format: Claude Code's own fields reach Anthropic as they were sent.
        betas = req["headers"]["anthropic-beta"].split(",")
        assert "claude-code-20250219" in betas
        assert json.loads(body["metadata"]["user_id"])["session_id"]
        assert body["thinking"]["display"] == "omitted" and "context_management" in body
        assert any(m["role"] == "system" for m in body["messages"][1:])
    else:
        # The mid-conversation system turn stays in place as a system message.
        roles = [m["role"] for m in body["messages"]]
        assert "system" in roles[roles.index("user"):]


@pytest.mark.parametrize("route", ROUTES)
def test_claude_code_runs_bash(cli_gateway, emu, jail, tmp_path, workdir, route):
    model = CLAUDE_MODEL[route]
    emu.script(model, call_step("Bash", {"command": "cat notes.txt",
                                         "description": "Show the notes"}),
               {"reply": {"text": "The notes say pumpernickel."}})
    run = run_claude(cli_gateway, emu, jail, tmp_path, workdir, model,
                     "what do my notes say?", "Bash(cat *)")
    assert "The notes say pumpernickel." in run.stdout
    (output,) = tool_outputs(run.upstream[1])
    assert SECRET in output


@pytest.mark.parametrize("route", ROUTES)
def test_claude_code_reads_a_file(cli_gateway, emu, jail, tmp_path, workdir, route):
    model = CLAUDE_MODEL[route]
    emu.script(model, call_step("Read", {"file_path": str(workdir / "notes.txt")}),
               {"reply": {"text": "Read it: pumpernickel."}})
    run = run_claude(cli_gateway, emu, jail, tmp_path, workdir, model, "read notes.txt")
    assert "Read it: pumpernickel." in run.stdout
    (output,) = tool_outputs(run.upstream[1])
    assert SECRET in output
