"""`switchyard up` starts four service processes and leaves none behind when stopped."""
import os
import signal

import pytest

from tests.e2e.harness import Gateway, free_port, gateway_config, wait_for


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_launcher_leaves_no_service_behind(emulator, tmp_path, sig):
    port = free_port()
    gw = Gateway(gateway_config(emulator.url, port), tmp_path, port).start()
    children = gw.children()
    names = sorted(cmdline(pid).split(" serve ")[1].split()[0] for pid in children)
    assert names == ["edge", "providers", "router", "state"]
    assert f"listening on http://127.0.0.1:{port}" in gw.log()
    gw.stop(sig)
    wait_for(lambda: not any(alive(p) for p in children), 20, "service processes to exit")


def test_a_dead_service_is_restarted(emulator, tmp_path):
    port = free_port()
    gw = Gateway(gateway_config(emulator.url, port), tmp_path, port).start()
    try:
        providers = [p for p in gw.children() if " serve providers" in cmdline(p)][0]
        os.kill(providers, signal.SIGKILL)
        wait_for(lambda: "providers restarted" in gw.log(), 20, "the launcher to restart it")
        wait_for(gw.healthy, 30, "the gateway to be healthy again")
    finally:
        gw.stop()


def test_sigterm_drains_an_in_flight_stream(emulator, tmp_path):
    import httpx
    port = free_port()
    gw = Gateway(gateway_config(emulator.url, port), tmp_path, port).start()
    emulator.reset()
    emulator.script("gpt-4o-mini", {"reply": {"text": " ".join(["w"] * 20)}, "chunks": 20,
                                    "chunk_delay": 0.1})
    try:
        with httpx.stream("POST", f"{gw.url}/v1/chat/completions", timeout=30, json={
                "model": "gpt-4o-mini", "stream": True,
                "messages": [{"role": "user", "content": "long"}]}) as r:
            lines = r.iter_lines()
            first = next(lines)
            assert first.startswith("data: ")
            gw.proc.send_signal(signal.SIGTERM)
            rest = list(lines)
        assert rest[-2:] == ["data: [DONE]", ""] or rest[-1] == "data: [DONE]"
        text = "".join(l for l in rest if l.startswith("data: {"))
        assert text.count('"content":"w') + text.count('"content":" w') >= 19
        assert gw.proc.wait(timeout=30) == 0
    finally:
        gw.stop()


def test_grpc_service_metrics_port(emulator, tmp_path):
    import subprocess
    import sys

    import httpx

    from tests.e2e.harness import ROOT
    port, metrics_port = free_port(), free_port()
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text(gateway_config(emulator.url, port))
    proc = subprocess.Popen([sys.executable, "-m", "switchyard", "serve", "providers", "--config",
                             str(cfg)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "SWITCHYARD_PROVIDERS_METRICS":
                                 f"127.0.0.1:{metrics_port}"})
    try:
        def scraped():
            try:
                return "switchyard_upstream_attempts_total" in httpx.get(
                    f"http://127.0.0.1:{metrics_port}/metrics").text
            except httpx.HTTPError:
                return False
        wait_for(scraped, 20, "the providers metrics endpoint")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
