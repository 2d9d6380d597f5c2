"""Non-streaming load with `wrk` (C, one thread): a generated Lua script sends the scenario's
request and prints the summary as JSON."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import orjson

from bench.scenarios import HttpRequest
from bench.stats import result

MARK = "BENCHJSON "
# done() runs once in wrk's main thread; latency percentiles are in microseconds.
_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d}\n', "__MARK__", summary.requests,
    summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian's packages when absent."""
    path = shutil.which("wrk")
    if path:
        return path
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], env=env,
                             capture_output=True, text=True)
    if install.returncode != 0:   # a fresh machine may need the package lists first
        subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True,
                       capture_output=True)
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return path


def lua_script(req: HttpRequest) -> str:
    """The wrk script replaying `req` (the body goes in a Lua long string)."""
    body = req.body.decode()
    fence = "=" * 4
    assert f"]{fence}]" not in body
    lines = ['wrk.method = "POST"', f"wrk.body = [{fence}[{body}]{fence}]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in req.headers.items()]
    return "\n".join(lines) + _DONE.replace("__MARK__", MARK)


def run_wrk(base: str, req: HttpRequest, concurrency: int, seconds: float,
            prefix: list[str]) -> dict:
    """Run wrk (under `prefix`, e.g. taskset) and return the measurement."""
    if not base.startswith("http://127.0.0.1:"):
        raise ValueError("the bench only sends traffic to 127.0.0.1")
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua_script(req))
        script = f.name
    try:
        cmd = [*prefix, wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", script, base.rstrip("/") + req.path]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(script)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.stdout[-500:]} {out.stderr[-500:]}")
    s = orjson.loads(line[len(MARK):])
    errors = s["connect"] + s["read"] + s["write"] + s["status"] + s["timeout"]
    # wrk counts a non-2xx reply both as a request and as a status error.
    ok = max(0, s["requests"] - s["status"])
    return result(ok, errors, s["duration_us"] / 1e6, s["p50_us"] / 1000.0,
                  s["p99_us"] / 1000.0, first_error="" if not errors else str(s))
