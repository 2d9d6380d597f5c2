"""The processes under test: start, pin to a core, wait until ready, measure RSS, stop."""
from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin(core: int | None) -> list[str]:
    """A `taskset` prefix for `core` (nothing when pinning is off)."""
    return [] if core is None else ["taskset", "-c", str(core)]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError):
        return False


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc)."""
    out = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    found, todo = [], [pid]
    while todo and len(found) < 1000:
        p = todo.pop()
        found.append(p)
        todo.extend(children(p))
    return found


def rss_mb(pids: list[int]) -> float:
    """Summed resident memory of `pids` in MB (processes that vanished count 0)."""
    total_kb = 0
    for pid in pids:
        try:
            for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024.0


class Proc:
    """One started process (its own session, so stopping it never touches the bench)."""

    def __init__(self, name: str, cmd: list[str], log: pathlib.Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log
        self._log = open(log, "ab")
        full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full.pop("DATABASE_URL", None)   # LiteLLM runs without a database
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=full, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, ready, timeout: float) -> None:
        """Poll `ready()` until true; fail with the log if the process died or time ran out."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            if ready():
                return
            time.sleep(0.1)   # polling a child's readiness
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                for pid in reversed(tree(self.proc.pid)):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait()
        self._log.close()


def start_emulator(workdir: pathlib.Path, core: int | None, latency_ms: float,
                   chunks: int) -> tuple[Proc, str]:
    port = free_port()
    cmd = [*pin(core), sys.executable, "-m", "tests.emulator", "--host", "127.0.0.1",
           "--port", str(port), "--fast", "--latency-ms", str(latency_ms), "--chunks", str(chunks)]
    p = Proc("emulator", cmd, workdir / "emulator.log")
    url = f"http://127.0.0.1:{port}"
    p.wait_until(lambda: http_ok(f"{url}/v1/models"), 30)
    return p, url


def switchyard_config(emulator_url: str, port: int, tracing_endpoint: str = "") -> str:
    """One OpenAI provider (the emulator); memory state; no chat storage (Responses store);
    with `tracing_endpoint`, every request traced (100 %) to that OTLP/gRPC receiver."""
    r, pr, st = free_port(), free_port(), free_port()
    tracing = (f"tracing: {{random_sampling: 100, opentracing_grpc_endpoint: "
               f"{tracing_endpoint}}}\n") if tracing_endpoint else ""
    return tracing + f"""version: v0.3.0
listeners:
  - {{type: model, name: model_listener, address: 127.0.0.1, port: {port}, timeout: 30s}}
model_providers:
  - model: openai/gpt-4o-mini
    access_key: sk-bench-upstream
    base_url: {emulator_url}
    default: true
services:
  router: 127.0.0.1:{r}
  providers: 127.0.0.1:{pr}
  state: 127.0.0.1:{st}
"""


def start_switchyard(workdir: pathlib.Path, core: int | None, emulator_url: str,
                     tracing_endpoint: str = "", name: str = "switchyard") -> tuple[Proc, str]:
    port = free_port()
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(switchyard_config(emulator_url, port, tracing_endpoint))
    cmd = [*pin(core), sys.executable, "-m", "switchyard", "up", "--config", str(cfg)]
    p = Proc(name, cmd, workdir / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    p.wait_until(lambda: "gateway listening on" in p.log() and http_ok(f"{url}/healthz"), 90)
    return p, url


def switchyard_pids(p: Proc) -> list[int]:
    """The four services (the launcher's children, each with its own descendants)."""
    return [pid for c in children(p.proc.pid) for pid in tree(c)]


def litellm_config(emulator_url: str) -> str:
    return f"""model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {emulator_url}/v1
      api_key: sk-bench-upstream
litellm_settings:
  telemetry: false
  drop_params: true
"""


def ensure_litellm() -> pathlib.Path:
    """The LiteLLM proxy's entry point, installed into bench/.venv-litellm when absent."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "--quiet",
                    "litellm[proxy]"], check=True)
    return exe


def start_litellm(workdir: pathlib.Path, core: int | None,
                  emulator_url: str) -> tuple[Proc, str]:
    exe = ensure_litellm()
    port = free_port()
    cfg = workdir / "litellm.yaml"
    cfg.write_text(litellm_config(emulator_url))
    cmd = [*pin(core), str(exe), "--config", str(cfg), "--host", "127.0.0.1",
           "--port", str(port), "--num_workers", "1"]
    # Local cost map and no telemetry: the proxy must not reach beyond 127.0.0.1. No client
    # auth, like the Switchyard under test.
    env = {"LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
           "LITELLM_LOG": "ERROR", "NO_PROXY": "127.0.0.1,localhost",
           # Anthropic clients -> the OpenAI upstream's chat completions, as Switchyard does
           # (LiteLLM's default for OpenAI models is the upstream's /v1/responses).
           "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "true"}
    p = Proc("litellm", cmd, workdir / "litellm.log", env)
    url = f"http://127.0.0.1:{port}"
    p.wait_until(lambda: http_ok(f"{url}/health/liveliness"), 180)
    return p, url
