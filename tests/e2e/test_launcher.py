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


def maps_file(pid: int, part: str) -> bool:
    """Whether process `pid` has a file whose path contains `part` mapped (a C extension
    is mapped from its first import on)."""
    with open(f"/proc/{pid}/maps") as maps:
        return any(part in line for line in maps)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_launcher_leaves_no_service_behind(emulator, tmp_path, sig):
    port = free_port()
    gw = Gateway(gateway_config(emulator.url, port), tmp_path, port).start()
    children = gw.children()
    names = sorted(cmdline(pid).split(" serve ")[1].split()[0] for pid in children)
    assert names == ["edge", "providers", "router", "state"]
    assert f"listening on http://127.0.0.1:{port}" in gw.log()
    # uvloop where it pays (uvicorn's edge, aiohttp in providers); gRPC alone on asyncio's.
    with_uvloop = sorted(cmdline(pid).split(" serve ")[1].split()[0] for pid in children
                         if maps_file(pid, "/uvloop/"))
    assert with_uvloop == ["edge", "providers"]
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


def _chat(url: str, model: str) -> int:
    import httpx
    return httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
        "model": model, "messages": [{"role": "user", "content": "hi"}]}).status_code


def test_two_gateways_without_services_keep_their_own_backends(emulator, tmp_path):
    """Two `switchyard up` on one host, neither naming `services:`: each has private
    backends, so its routes and stored responses are its own (no shared default ports)."""
    import httpx
    emulator.reset()
    gateways = {}
    try:
        for name in ("a", "b"):
            port = free_port()
            (tmp_path / name).mkdir()
            gateways[name] = Gateway(gateway_config(
                emulator.url, port, aliases=f"  only-{name}: {{target: gpt-4o-mini}}\n",
                state="state_storage: {type: memory}", services_section=False),
                tmp_path / name, port).start()
        a, b = gateways["a"], gateways["b"]
        for gw in (a, b):
            assert "listening on unix:" in gw.log() and "listening on 127.0.0.1:1200" not in gw.log()
        stored = {}
        for name, gw in gateways.items():
            r = httpx.post(f"{gw.url}/v1/responses", timeout=30,
                           json={"model": "gpt-4o-mini", "input": "remember me"})
            assert r.status_code == 200, r.text
            stored[name] = r.json()["id"]
        for _ in range(4):   # shared backends would split calls between the two; none may leak
            assert _chat(a.url, "only-a") == 200 and _chat(b.url, "only-b") == 200
            assert _chat(a.url, "only-b") == 404 and _chat(b.url, "only-a") == 404
            assert httpx.get(f"{a.url}/v1/responses/{stored['a']}").status_code == 200
            assert httpx.get(f"{b.url}/v1/responses/{stored['b']}").status_code == 200
            assert httpx.get(f"{b.url}/v1/responses/{stored['a']}").status_code == 404
            assert httpx.get(f"{a.url}/v1/responses/{stored['b']}").status_code == 404
    finally:
        for gw in gateways.values():
            gw.stop()
    gone = [line.split("listening on unix:")[1].rsplit("/", 1)[0]
            for gw in gateways.values() for line in gw.log().splitlines()
            if "listening on unix:" in line]
    assert gone and not any(os.path.exists(d) for d in gone)   # runtime dirs removed


def test_a_second_gateway_on_a_taken_port_stops_with_one_line(emulator, tmp_path):
    import subprocess
    import sys

    from tests.e2e.harness import ROOT
    port = free_port()
    (tmp_path / "first").mkdir()
    first = Gateway(gateway_config(emulator.url, port, services_section=False),
                    tmp_path / "first", port).start()
    try:
        cfg = tmp_path / "second.yaml"
        cfg.write_text(gateway_config(emulator.url, port, services_section=False))
        second = subprocess.run(
            [sys.executable, "-m", "switchyard", "up", "--config", str(cfg)], cwd=ROOT,
            capture_output=True, text=True, timeout=30)
        assert second.returncode != 0
        lines = (second.stdout + second.stderr).strip().splitlines()
        assert len(lines) == 1, lines
        assert f"port {port} is already in use" in lines[0] and str(cfg) in lines[0]
        assert first.healthy() and _chat(first.url, "gpt-4o-mini") == 200
    finally:
        first.stop()


def test_serve_edge_on_a_taken_port_exits_with_one_line(tmp_path):
    import socket
    import subprocess
    import sys

    from switchyard.common.ports import EXIT_ADDRESS_IN_USE
    from tests.e2e.harness import ROOT
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg = tmp_path / "plano_config.yaml"
        cfg.write_text(gateway_config("http://127.0.0.1:9", port))
        edge = subprocess.run([sys.executable, "-m", "switchyard", "serve", "edge", "--config",
                               str(cfg)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert edge.returncode == EXIT_ADDRESS_IN_USE
    said = [line for line in edge.stderr.splitlines() if line.startswith("switchyard edge:")]
    assert len(said) == 1 and f"port {port} is already in use" in said[0]
    assert "Traceback" not in edge.stderr
