"""A throwaway Prometheus server for tests: `prometheus` on a free port in a temp dir, scraping
an in-test exporter every second, so a test sets a gauge and the real server's query API
answers with it.

    with PrometheusServer() as prom:
        prom.latency.labels(model_name="openai/gpt-4o").set(0.8)
        prom.wait_for_value('llm_latency_seconds{model_name="openai/gpt-4o"}', 0.8)
        prom.url                      # http://127.0.0.1:PORT
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import httpx
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from tests.support.ports import free_port
from tests.support.servers import Throwaway, stop_process

INSTALL_HINT = ("prometheus not found; install it with `apt-get install -y prometheus` "
                "(scripts/test.sh does)")
METRIC = "llm_latency_seconds"


def find_binary() -> str:
    found = shutil.which("prometheus") or next(
        (p for p in ("/usr/bin/prometheus", "/usr/local/bin/prometheus") if Path(p).exists()),
        None)
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return found


class PrometheusServer(Throwaway):
    """One Prometheus on 127.0.0.1, its TSDB in a temp dir, scraping `latency`, a gauge
    labelled by model_name (seconds, lower is faster) that the test sets."""

    def __init__(self, startup_timeout: float = 30.0) -> None:
        self.binary = find_binary()
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="switchyard-prometheus-"))
        self.registry = CollectorRegistry()
        self.latency = Gauge(METRIC, "time to first token per model, as a test sets it",
                             ["model_name"], registry=self.registry)
        self.proc: subprocess.Popen[bytes] | None = None
        self._exporter: WSGIServer | None = None

    def start(self) -> None:
        exporter_port = free_port()
        self._exporter, _ = start_http_server(exporter_port, addr="127.0.0.1",
                                              registry=self.registry)
        (self.root / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: test
    static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
""")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.root / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "prometheus.log", "wb"))
        self._wait(lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200,
                   "Prometheus to be ready")

    def value(self, selector: str) -> float | None:
        """What the real query API answers for `selector` now (None: no sample yet)."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": selector}, timeout=5)
        result = r.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_for_value(self, selector: str, value: float, timeout: float = 30.0) -> None:
        """Until a scrape has brought `value` in for `selector`."""
        self._wait(lambda: self.value(selector) == value, f"{selector} == {value}", timeout)

    def _wait(self, ready, what: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n"
                                   f"{self.log()}")
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}:\n{self.log()}")
            time.sleep(0.1)  # polling interval, not synchronisation

    def log(self) -> str:
        path = self.root / "prometheus.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def remove(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            stop_process(proc)
        if self._exporter is not None:
            self._exporter.shutdown()
            self._exporter = None
        shutil.rmtree(self.root, ignore_errors=True)
