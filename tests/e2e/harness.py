"""Start the real gateway (`switchyard up` in a subprocess) against the emulator."""
from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping

import httpx

from tests.support.ports import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
OPENAI_KEY = "sk-openai-test"
ANTHROPIC_KEY = "sk-ant-test"
GEMINI_KEY = "gemini-test-key"
# Bedrock entries sign with these SigV4 keys; the emulator recomputes every signature.
BEDROCK_AKID = "AKIAEMULATEDTEST0001"
BEDROCK_SECRET = "emulated/bedrock+secret/key0001"
BEDROCK_REGION = "us-west-2"
BEDROCK_CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"



def wait_for(predicate, timeout: float, what: str) -> None:
    """Poll `predicate` until true or fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def gateway_config(emulator_url: str, port: int, extra: str = "", state: str = "",
                   providers: str = "", aliases: str = "", timeout: str = "10s",
                   services_section: bool = True) -> str:
    """A plano_config.yaml whose every provider is the emulator; without `services_section`
    `switchyard up` gives the backends private unix sockets."""
    ports = [free_port() for _ in range(3)]
    services = (f"services:\n  router: 127.0.0.1:{ports[0]}\n  providers: 127.0.0.1:{ports[1]}"
                f"\n  state: 127.0.0.1:{ports[2]}\n") if services_section else ""
    return f"""
version: v0.3.0
listeners:
  - {{type: model, name: model_listener, address: 127.0.0.1, port: {port}, timeout: {timeout}}}
model_providers:
  - model: openai/gpt-4o-mini
    access_key: {OPENAI_KEY}
    base_url: {emulator_url}
    default: true
  - model: openai/gpt-4o
    access_key: {OPENAI_KEY}
    base_url: {emulator_url}
  - model: anthropic/*
    access_key: {ANTHROPIC_KEY}
    base_url: {emulator_url}
  - model: ollama/llama3.1
    base_url: {emulator_url}/ollama/v1
  - model: openai/gpt-4.1-nano
    name: byok
    base_url: {emulator_url}
    passthrough_auth: true
  - model: azure_openai/gpt-4o-deploy
    access_key: {OPENAI_KEY}
    base_url: {emulator_url}
    api_version: "2024-10-21"
  - model: groq/llama-3.1-8b-instant
    access_key: {OPENAI_KEY}
    base_url: {emulator_url}/openai/v1
  - model: vllm/qwen2.5
    base_url: {emulator_url}
    provider_interface: openai
    access_key: {OPENAI_KEY}
  - model: gemini/*
    access_key: {GEMINI_KEY}
    base_url: {emulator_url}/v1beta
  - model: amazon_bedrock/{BEDROCK_CLAUDE}
    access_key: {BEDROCK_AKID}
    secret_key: {BEDROCK_SECRET}
    region: {BEDROCK_REGION}
    base_url: {emulator_url}
  - model: openai/gpt-5-codex
    access_key: {OPENAI_KEY}
    base_url: {emulator_url}
{providers}
model_aliases:
  fast-model: {{target: gpt-4o-mini}}
  smart-model: {{target: claude-3-5-sonnet-20241022}}
  bedrock-claude: {{target: amazon_bedrock/{BEDROCK_CLAUDE}}}
{aliases}
{extra}
{state}
{services}"""


def all_up(url: str) -> bool:
    """Ready, and every backend up: /healthz is liveness only, and /readyz stays 200 with
    state down, so tests that need all services wait on the body too."""
    r = httpx.get(f"{url}/readyz", timeout=1.0)
    return r.status_code == 200 and all(r.json()["services"].values())


class Gateway:
    """`switchyard up` as a child process; `stop()` sends SIGINT like Ctrl-C."""

    def __init__(self, config_text: str, workdir: pathlib.Path, port: int,
                 env: dict[str, str] | None = None) -> None:
        self.port = port
        self.env = env or {}
        self.url = f"http://127.0.0.1:{port}"
        self.config_path = workdir / "plano_config.yaml"
        self.config_path.write_text(config_text)
        self.log_path = workdir / "gateway.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> Gateway:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "switchyard", "up", "--config", str(self.config_path)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_for(lambda: self.healthy() and "gateway listening on" in self.log(), timeout,
                 f"gateway health (log: {self.log_path})")
        return self

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"gateway exited early:\n{self.log()}")
        try:
            return all_up(self.url)
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        """PIDs of the launcher's service processes (from /proc)."""
        if self.proc is None:
            return []
        out = []
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                out.append(int(entry.name))
        return out

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@contextlib.contextmanager
def gateways(configs: Mapping[str, Callable[[int], str]], tmp_path_factory,
             env: dict[str, str] | None = None) -> Iterator[tuple[Gateway, ...]]:
    """A gateway per name, each from its config for a free port, started in turn; all
    stopped at the end, or as soon as one fails to start."""
    started: list[Gateway] = []
    try:
        for name, config in configs.items():
            port = free_port()
            started.append(Gateway(config(port), tmp_path_factory.mktemp(name), port,
                                   env=env).start())
        yield tuple(started)
    finally:
        for gw in started:
            gw.stop()


class ServiceSet:
    """The four services started one by one (no launcher), so a test can kill and restart
    any of them deterministically."""

    ORDER = ("state", "router", "providers", "edge")

    def __init__(self, config_text: str, workdir: pathlib.Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.config_path = workdir / "plano_config.yaml"
        self.config_path.write_text(config_text)
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, service: str) -> None:
        log = open(self.workdir / f"{service}.log", "ab")
        self.procs[service] = subprocess.Popen(
            [sys.executable, "-m", "switchyard", "serve", service, "--config",
             str(self.config_path)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        log.close()

    def start_all(self, timeout: float = 60.0) -> ServiceSet:
        for s in self.ORDER:
            self.start(s)
        try:
            wait_for(self.healthy, timeout, "all services healthy")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.logs()}") from None
        return self

    def healthy(self) -> bool:
        for service, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{service} exited early:\n{self.logs()}")
        try:
            return all_up(self.url)
        except httpx.HTTPError:
            return False

    def logs(self) -> str:
        """Every started service's log, for a failure message."""
        return "\n".join(f"--- {s}.log\n{self.log(s)[-4000:]}" for s in self.procs)

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(service)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def log(self, service: str) -> str:
        return (self.workdir / f"{service}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for s in reversed(self.ORDER):
            proc = self.procs.pop(s, None)
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
