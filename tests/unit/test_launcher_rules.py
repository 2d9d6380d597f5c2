"""The launcher's and the services' start-up rules, as pure functions: restart backoff,
which addresses need the internal token, where the token comes from, taken ports, and
which backends `switchyard up` gives private sockets."""
from __future__ import annotations

import os
import resource
import socket
import stat

import pytest

from switchyard.cli import raise_open_files_limit
from switchyard.common.config import ConfigError, parse_config
from switchyard.common.internal_auth import (
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    TokenError,
    internal_token,
    is_local_address,
    refusal,
)
from switchyard.common.ports import bind_error, in_use, split_host_port
from switchyard.launcher import (
    HEALTHY_RESET_S,
    MAX_BACKOFF_S,
    Launcher,
    private_runtime_dir,
    restart_backoff,
)
from tests.support.fresh_python import run_fresh

ADDR_VARS = ("SWITCHYARD_ROUTER_ADDR", "SWITCHYARD_PROVIDERS_ADDR", "SWITCHYARD_STATE_ADDR")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in (*ADDR_VARS, TOKEN_ENV, TOKEN_FILE_ENV):
        monkeypatch.delenv(var, raising=False)


def test_backoff_doubles_to_the_cap_while_a_child_keeps_crashing():
    failures, delays = 0, []
    for _ in range(7):
        delay, failures = restart_backoff(failures, ran_for_s=1.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, MAX_BACKOFF_S, MAX_BACKOFF_S]
    assert failures == 7


def test_backoff_resets_after_a_healthy_minute():
    failures = 6   # deep in backoff
    assert restart_backoff(failures, HEALTHY_RESET_S - 0.1) == (MAX_BACKOFF_S, 7)
    assert restart_backoff(failures, HEALTHY_RESET_S) == (0.5, 1)
    assert restart_backoff(1, 3600.0) == (0.5, 1)


@pytest.mark.parametrize("address, local", [
    ("127.0.0.1:12001", True), ("127.3.2.1:1", True), ("[::1]:12001", True),
    ("localhost:12001", True), ("unix:/run/x/router.sock", True),
    ("0.0.0.0:12001", False), ("[::]:12001", False), ("10.0.0.5:12001", False),
    ("router:12001", False), ("switchyard-router.default.svc:12001", False),
])
def test_local_addresses(address, local):
    assert is_local_address(address) is local
    assert (refusal("router", address, None, insecure=False) is None) is local


def test_refusal_is_lifted_by_a_token_or_insecure():
    assert refusal("state", "0.0.0.0:12003", "t", insecure=False) is None
    assert refusal("state", "0.0.0.0:12003", None, insecure=True) is None
    reason = refusal("state", "0.0.0.0:12003", None, insecure=False)
    assert reason is not None and "\n" not in reason
    assert "0.0.0.0:12003" in reason and TOKEN_ENV in reason and "--insecure" in reason


def test_token_sources(tmp_path):
    assert internal_token({}) is None
    assert internal_token({TOKEN_ENV: ""}) is None
    assert internal_token({TOKEN_ENV: "abc"}) == "abc"
    path = tmp_path / "token"
    path.write_text("  from-file\n")
    assert internal_token({TOKEN_FILE_ENV: str(path)}) == "from-file"
    with pytest.raises(TokenError, match="not both"):
        internal_token({TOKEN_ENV: "abc", TOKEN_FILE_ENV: str(path)})
    path.write_text("\n")
    with pytest.raises(TokenError, match="is empty"):
        internal_token({TOKEN_FILE_ENV: str(path)})
    with pytest.raises(TokenError, match="cannot read") as info:
        internal_token({TOKEN_FILE_ENV: str(tmp_path / "missing")})
    assert "from-file" not in str(info.value)


def test_a_listening_port_is_taken_a_free_one_is_not():
    assert split_host_port("[::1]:80") == ("::1", 80)
    assert split_host_port("unix:/x.sock") is None
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        holder.listen()
        assert in_use(bind_error("127.0.0.1", port))
        assert in_use(bind_error("0.0.0.0", port))
    assert bind_error("127.0.0.1", port) is None


def test_unix_addresses_are_accepted_and_named_services_recorded(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_STATE_ADDR", "unix:/tmp/sy/state.sock")
    c = parse_config({"model_providers": [{"model": "ollama/llama3.1"}],
                      "services": {"router": "unix:/tmp/sy/router.sock"}})
    assert (c.services.router, c.services.state) == \
        ("unix:/tmp/sy/router.sock", "unix:/tmp/sy/state.sock")
    assert c.services.named == {"router", "state"}
    monkeypatch.setenv("SWITCHYARD_STATE_ADDR", "unix:")
    with pytest.raises(ConfigError, match="unix:/absolute/path.sock"):
        parse_config({"model_providers": [{"model": "ollama/llama3.1"}]})


def _launcher(services: dict | None = None) -> Launcher:
    raw = {"model_providers": [{"model": "ollama/llama3.1"}]}
    if services:
        raw["services"] = services
    return Launcher(parse_config(raw), "/x/plano_config.yaml")


def test_without_services_up_gives_every_backend_a_private_socket():
    la = _launcher()
    la._prepare()
    try:
        assert la.runtime_dir is not None
        assert stat.S_IMODE(os.stat(la.runtime_dir).st_mode) == 0o700
        assert la.addresses == {s: f"unix:{la.runtime_dir}/{s}.sock"
                                for s in ("state", "router", "providers")}
        env = la._env()
        assert env["SWITCHYARD_ROUTER_ADDR"] == la.addresses["router"]
        assert len(env[TOKEN_ENV]) >= 32 and env["SWITCHYARD_INSTANCE"] == la.instance
        assert _launcher().instance != la.instance
    finally:
        la._stop_all()
    assert not os.path.exists(la.runtime_dir)


def test_named_services_keep_their_addresses_and_a_set_token_is_kept(monkeypatch):
    monkeypatch.setenv(TOKEN_FILE_ENV, "/run/secrets/token")
    la = _launcher({"router": "127.0.0.1:7001", "providers": "127.0.0.1:7002",
                    "state": "127.0.0.1:7003"})
    la._prepare()
    assert la.runtime_dir is None
    assert la.addresses == {"router": "127.0.0.1:7001", "providers": "127.0.0.1:7002",
                            "state": "127.0.0.1:7003"}
    env = la._env()
    assert TOKEN_ENV not in env and env[TOKEN_FILE_ENV] == "/run/secrets/token"
    assert "SWITCHYARD_ROUTER_ADDR" not in env


def test_the_runtime_dir_leaves_room_for_socket_names(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / ("d" * 120)))
    path = private_runtime_dir()
    try:
        assert len(f"{path}/providers.sock") < 104
    finally:
        os.rmdir(path)


def test_the_open_files_limit_is_raised_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        raise_open_files_limit()
        new_soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert new_soft == (hard if hard != resource.RLIM_INFINITY else 1 << 20)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("status", [200, 503])
def test_the_edge_counts_as_up_only_when_it_echoes_this_launchers_instance(status):
    """Another gateway (or anything else) answering on the port is not our edge."""
    import http.server
    import threading

    echoed: list[str | None] = [None]

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(status)
            if echoed[0] is not None:
                self.send_header("x-switchyard-instance", echoed[0])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        la = Launcher(parse_config({
            "model_providers": [{"model": "ollama/llama3.1"}],
            "listeners": [{"type": "model", "address": "127.0.0.1",
                           "port": server.server_address[1]}]}), "/x.yaml")
        assert not la._healthy("edge")                 # no token at all
        echoed[0] = "someone-elses-instance"
        assert not la._healthy("edge")
        echoed[0] = la.instance
        assert la._healthy("edge")
        assert la._port_taken() is not None and "already in use" in la._port_taken()
    finally:
        server.shutdown()
        server.server_close()


def test_a_child_whose_address_is_taken_stops_the_launcher_instead_of_restarting(capsys):
    from switchyard.common.ports import EXIT_ADDRESS_IN_USE

    class Exited:
        pid, returncode = 4242, EXIT_ADDRESS_IN_USE

        def poll(self):
            return self.returncode

    la = _launcher()
    la.procs = {"router": Exited()}   # type: ignore[dict-item]
    la.started = {"router": 0.0}
    assert la._supervise() == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "router cannot listen" in err[0]


def test_a_service_does_not_load_the_launcher():
    """The child side lives in common/launched.py: the launcher and its imports stay out of
    the service processes (urllib.request is 1.2 MB of RSS; state and router load nothing
    else that needs it)."""
    out = run_fresh("import sys\n"
                    "import switchyard.cli, switchyard.common.launched\n"
                    "import switchyard.state.service, switchyard.router.service\n"
                    "backends = 'urllib.request' in sys.modules\n"
                    "import switchyard.edge.probes\n"
                    "print('switchyard.launcher' in sys.modules, backends)\n")
    assert out.split() == ["False", "False"]
