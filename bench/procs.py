"""The processes under test: start, pin to a core, wait until ready, measure RSS, stop."""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from bench.scenarios import GATEWAY_KEY
from bench.streams import BEDROCK_MODEL_ID, MODELS

ROOT = pathlib.Path(__file__).resolve().parents[1]
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
# Bedrock entries sign with these (the emulator, given no credentials, checks the shape).
BEDROCK_AKID = "AKIABENCHEMULATED001"
BEDROCK_SECRET = "bench/emulated+secret/key000000001"


def baseline_path(tree: pathlib.Path) -> pathlib.Path:
    """A directory where `import switchyard` finds `tree`'s services/ (another checkout, e.g.
    a `git worktree` of the commit before a change): bench/out/baseline-<hash>/switchyard."""
    tree = tree.resolve()
    if (tree / "switchyard" / "__init__.py").exists():
        return tree
    home = ROOT / "bench" / "out" / f"baseline-{hashlib.sha1(str(tree).encode()).hexdigest()[:8]}"
    home.mkdir(parents=True, exist_ok=True)
    link = home / "switchyard"
    if not link.exists():
        link.symlink_to(tree / "services")
    return home


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


def pss_mb(pids: list[int]) -> float:
    """Summed proportional set size in MB: shared pages (the same libraries mapped by every
    service) counted once across the processes instead of once per process."""
    total_kb = 0
    for pid in pids:
        try:
            for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024.0


def process_rss(pids: list[int]) -> dict[str, float]:
    """RSS in MB by process name (`switchyard serve edge` -> "edge")."""
    out: dict[str, float] = {}
    for pid in pids:
        try:
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        # setproctitle may have joined the arguments with spaces
        words = cmdline.replace(b"\0", b" ").decode(errors="replace").split()
        key = words[words.index("serve") + 1] if "serve" in words else \
            pathlib.Path(words[0]).name if words else str(pid)
        out[key] = out.get(key, 0.0) + rss_mb([pid])
    return out


class Proc:
    """One started process (its own session, so stopping it never touches the bench)."""

    def __init__(self, name: str, cmd: list[str], log: pathlib.Path,
                 env: dict[str, str] | None = None, cwd: pathlib.Path | None = None) -> None:
        self.name = name
        self.log_path = log
        self._log = open(log, "ab")
        full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full.pop("DATABASE_URL", None)   # LiteLLM runs without a database
        self.proc = subprocess.Popen(cmd, cwd=cwd or ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=full, start_new_session=True)

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
                   chunks: int, chunk_delay_ms: float = 0.0,
                   name: str = "emulator") -> tuple[Proc, str]:
    """The emulator in fast mode; `chunk_delay_ms` paces its streams (a pause after every
    frame, so each reaches the gateway in its own read, as tokens arrive)."""
    port = free_port()
    cmd = [*pin(core), sys.executable, "-m", "tests.emulator", "--host", "127.0.0.1",
           "--port", str(port), "--fast", "--latency-ms", str(latency_ms), "--chunks", str(chunks),
           "--chunk-delay-ms", str(chunk_delay_ms)]
    p = Proc(name, cmd, workdir / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    p.wait_until(lambda: http_ok(f"{url}/v1/models"), 30)
    return p, url


def start_otlp_sink(workdir: pathlib.Path, core: int | None) -> tuple[Proc, str]:
    """The traced rows' collector (`bench/otlp_sink.py`), on the load core at idle priority:
    it stands for a collector on another machine, so it must not slow the emulator or wrk
    (an export waiting a little costs no request anything)."""
    port = free_port()
    idle = ["chrt", "--idle", "0"] if shutil.which("chrt") else []
    p = Proc("otlp-sink", [*pin(core), *idle, sys.executable, "-m", "bench.otlp_sink",
                           "--port", str(port)], workdir / "otlp-sink.log")
    p.wait_until(lambda: "listening" in p.log(), 30)
    return p, f"http://127.0.0.1:{port}"


def sink_received(p: Proc) -> str:
    """The sink's closing line (after `stop`): how many spans it was sent."""
    lines = [ln for ln in p.log().splitlines() if ln.startswith("received ")]
    return lines[-1] if lines else "no count (the sink did not stop cleanly)"


def switchyard_config(emulator_url: str, port: int, extra: str = "", *, slow_url: str = "",
                      auth: bool = False) -> str:
    """The emulator as every upstream family (OpenAI the default; bench/streams.py names
    the models), `slow-gpt` on the slow emulator at `slow_url`; memory state; no chat
    storage (Responses store); the backends on `switchyard up`'s private Unix sockets (the
    default: no `services:`); with `auth`, client keys on (only GATEWAY_KEY); `extra`
    appended (e.g. routing_preferences, which need version v0.4.0). Tracing is switched on
    by `TracingSwitch`."""
    keys = f"auth:\n  keys:\n    - {{key: {GATEWAY_KEY}, tenant: bench}}\n" if auth else ""
    slow = (f"  - model: openai/{MODELS['slow']}\n    access_key: sk-bench-upstream\n"
            f"    base_url: {slow_url}\n") if slow_url else ""
    version = "v0.4.0" if extra else "v0.3.0"
    return keys + extra + f"""version: {version}
listeners:
  - {{type: model, name: model_listener, address: 127.0.0.1, port: {port}, timeout: 30s}}
model_providers:
  - model: openai/gpt-4o-mini
    access_key: sk-bench-upstream
    base_url: {emulator_url}
    default: true
  - model: anthropic/{MODELS['anthropic']}
    access_key: sk-bench-upstream
    base_url: {emulator_url}
  - model: gemini/{MODELS['gemini']}
    access_key: sk-bench-upstream
    base_url: {emulator_url}/v1beta
  - model: amazon_bedrock/{BEDROCK_MODEL_ID}
    access_key: {BEDROCK_AKID}
    secret_key: {BEDROCK_SECRET}
    region: us-east-1
    base_url: {emulator_url}
  - model: openai/{MODELS['responses']}
    access_key: sk-bench-upstream
    base_url: {emulator_url}
{slow}model_aliases:
  {MODELS['bedrock']}: {{target: amazon_bedrock/{BEDROCK_MODEL_ID}}}
"""


def start_switchyard(workdir: pathlib.Path, core: int | None, emulator_url: str,
                     name: str = "switchyard",
                     extra: str = "", *, slow_url: str = "", auth: bool = False,
                     tree: pathlib.Path | None = None) -> tuple[Proc, str]:
    """`switchyard up` with `switchyard_config`; `tree`: another checkout's package instead
    of this one (the `baseline` target of a before/after comparison)."""
    port = free_port()
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(switchyard_config(emulator_url, port, extra, slow_url=slow_url, auth=auth))
    cmd = [*pin(core), sys.executable, "-m", "switchyard", "up", "--config", str(cfg)]
    env = None
    if tree is not None:   # that tree's `switchyard` first on the path (a link to services/)
        env = {"PYTHONPATH": str(baseline_path(tree))}
    p = Proc(name, cmd, workdir / f"{name}.log", env, cwd=tree)
    url = f"http://127.0.0.1:{port}"
    p.wait_until(lambda: "gateway listening on" in p.log() and http_ok(f"{url}/healthz"), 90)
    return p, url


class TracingSwitch:
    """Tracing on and off in one running gateway, by live reload (`switchyard reload` waits
    until every service has applied the file): the traced and untraced rows then come from
    the same processes, so no instance-to-instance difference is read as tracing's cost."""

    def __init__(self, gateway: Proc, config: pathlib.Path, endpoint: str,
                 percent: float = 100.0) -> None:
        self.gateway = gateway
        self.config = config
        self.plain = config.read_text()
        self.traced = tracing_line(endpoint, percent) + self.plain
        # Below 100 % an exporter starts with its process's first sampled span, which may
        # come late; nothing waits for it (it starts off the serving core).
        self.sampled_all = percent >= 100
        self.on = False

    def set(self, on: bool) -> bool:
        """Switch; True when it changed (the caller warms the gateway up again)."""
        if on == self.on:
            return False
        aside = self.config.with_suffix(".tmp")
        aside.write_text(self.traced if on else self.plain)
        aside.replace(self.config)
        done = subprocess.run([sys.executable, "-m", "switchyard", "reload", "--config",
                               str(self.config), "--timeout", "30"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"switching tracing {'on' if on else 'off'} failed:\n"
                               f"{done.stdout}{done.stderr}")
        self.on = on
        return True

    def wait_for_exporters(self, count: int = 2, timeout: float = 60.0) -> None:
        """Until `count` span exporters have finished starting (they retitle themselves once
        their imports are done), so no slice pays for their start-up."""
        if not self.sampled_all:
            return
        def ready() -> bool:
            titled = 0
            for pid in switchyard_pids(self.gateway):
                try:
                    titled += b"span-exporter" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    pass
            return titled >= count
        self.gateway.wait_until(ready, timeout)


def tracing_line(endpoint: str, percent: float = 100.0) -> str:
    """`percent` of requests traced to the OTLP/gRPC receiver at `endpoint`."""
    return (f"tracing: {{random_sampling: {percent:g}, "
            f"opentracing_grpc_endpoint: {endpoint}}}\n")


def switchyard_pids(p: Proc) -> list[int]:
    """The four services (the launcher's children, each with its own descendants)."""
    return [pid for c in children(p.proc.pid) for pid in tree(c)]


def litellm_config(emulator_url: str, slow_url: str = "", auth: bool = False) -> str:
    """The same models as `switchyard_config`, each through LiteLLM's own provider; with
    `auth`, GATEWAY_KEY as the master key (LiteLLM's client auth without a database)."""
    def entry(name: str, params: str) -> str:
        return f"  - model_name: {name}\n    litellm_params:\n{params}"
    models = [
        entry("gpt-4o-mini", f"      model: openai/gpt-4o-mini\n      api_base: {emulator_url}/v1\n"
                             f"      api_key: sk-bench-upstream\n"),
        entry(MODELS["anthropic"], f"      model: anthropic/{MODELS['anthropic']}\n"
                                   f"      api_base: {emulator_url}\n"
                                   f"      api_key: sk-bench-upstream\n"),
        entry(MODELS["gemini"], f"      model: gemini/{MODELS['gemini']}\n"
                                f"      api_base: {emulator_url}/v1beta\n"
                                f"      api_key: sk-bench-upstream\n"),
        entry(MODELS["bedrock"], f"      model: bedrock/converse/{BEDROCK_MODEL_ID}\n"
                                 f"      aws_access_key_id: {BEDROCK_AKID}\n"
                                 f"      aws_secret_access_key: {BEDROCK_SECRET}\n"
                                 f"      aws_region_name: us-east-1\n"
                                 f"      aws_bedrock_runtime_endpoint: {emulator_url}\n"),
        entry(MODELS["responses"], f"      model: openai/{MODELS['responses']}\n"
                                   f"      api_base: {emulator_url}/v1\n"
                                   f"      api_key: sk-bench-upstream\n"),
    ]
    if slow_url:
        models.append(entry(MODELS["slow"], f"      model: openai/{MODELS['slow']}\n"
                                            f"      api_base: {slow_url}/v1\n"
                                            f"      api_key: sk-bench-upstream\n"))
    general = f"general_settings:\n  master_key: {GATEWAY_KEY}\n" if auth else ""
    return "model_list:\n" + "".join(models) + general + """litellm_settings:
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


def start_litellm(workdir: pathlib.Path, core: int | None, emulator_url: str, *,
                  slow_url: str = "", auth: bool = False,
                  name: str = "litellm") -> tuple[Proc, str]:
    exe = ensure_litellm()
    port = free_port()
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(litellm_config(emulator_url, slow_url, auth))
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
    p = Proc(name, cmd, workdir / f"{name}.log", env)
    url = f"http://127.0.0.1:{port}"
    p.wait_until(lambda: http_ok(f"{url}/health/liveliness"), 180)
    return p, url
