"""Service addresses come from the loaded config, which applies `SWITCHYARD_<SERVICE>_ADDR`;
only the bind address (`SWITCHYARD_<SERVICE>_LISTEN`) is read by the command itself."""
from __future__ import annotations

import pytest

from switchyard.cli import listen_address
from switchyard.common.config import ConfigError, load_config

ADDR_VARS = ("SWITCHYARD_ROUTER_ADDR", "SWITCHYARD_PROVIDERS_ADDR", "SWITCHYARD_STATE_ADDR")
LISTEN_VARS = ("SWITCHYARD_ROUTER_LISTEN", "SWITCHYARD_PROVIDERS_LISTEN",
               "SWITCHYARD_STATE_LISTEN")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ADDR_VARS + LISTEN_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "plano_config.yaml"
    path.write_text("model_providers:\n  - model: ollama/llama3.1\n"
                    "services:\n  router: router.svc:7001\n  providers: providers.svc:7002\n")
    return path


def test_file_addresses_and_defaults(config_file):
    s = load_config(config_file).services
    assert (s.router, s.providers, s.state) == \
        ("router.svc:7001", "providers.svc:7002", "127.0.0.1:12003")


def test_env_overrides_the_file_and_the_default(config_file, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_ROUTER_ADDR", "10.0.0.1:9001")
    monkeypatch.setenv("SWITCHYARD_STATE_ADDR", "state.svc:9003")
    s = load_config(config_file).services
    assert (s.router, s.providers, s.state) == \
        ("10.0.0.1:9001", "providers.svc:7002", "state.svc:9003")


def test_a_bad_env_address_is_a_config_error_naming_the_variable(config_file, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_PROVIDERS_ADDR", "no-port")
    with pytest.raises(ConfigError) as info:
        load_config(config_file)
    assert "SWITCHYARD_PROVIDERS_ADDR" in str(info.value)
    assert "host:port" in str(info.value)


def test_listen_address(config_file, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_STATE_ADDR", "state.svc:9003")
    config = load_config(config_file)
    assert listen_address(config, "router") == "router.svc:7001"
    assert listen_address(config, "state") == "state.svc:9003"
    monkeypatch.setenv("SWITCHYARD_STATE_LISTEN", "0.0.0.0:9003")
    assert listen_address(config, "state") == "0.0.0.0:9003"
    assert listen_address(config, "providers") == "providers.svc:7002"


def write(tmp_path, services: str):
    path = tmp_path / "plano_config.yaml"
    path.write_text("model_providers:\n  - model: ollama/llama3.1\nservices:\n" + services)
    return path


def test_replicas_as_a_list_a_dns_name_or_commas(tmp_path, monkeypatch):
    from switchyard.common.config.model import endpoints_of
    s = load_config(write(tmp_path, "  providers: [10.0.0.5:12002, 10.0.0.6:12002]\n"
                                    "  router: dns:///router.svc:12001\n")).services
    assert s.providers == "10.0.0.5:12002,10.0.0.6:12002"
    assert endpoints_of(s.providers) == ("10.0.0.5:12002", "10.0.0.6:12002")
    assert s.router == "dns:///router.svc:12001"
    monkeypatch.setenv("SWITCHYARD_STATE_ADDR", "state-0.svc:12003, state-1.svc:12003")
    s = load_config(write(tmp_path, "  router: router.svc:12001\n")).services
    assert endpoints_of(s.state) == ("state-0.svc:12003", "state-1.svc:12003")


@pytest.mark.parametrize("services, found", [
    ("  providers: [10.0.0.5:12002, noport]\n", "'noport'"),
    ("  router: dns:///router.svc\n", "dns:///router.svc"),
    ("  max_connection_age: soon\n", "services.max_connection_age"),
    ("  max_connection_age_grace: -1s\n", "services.max_connection_age_grace"),
    ("  max_conection_age: 30s\n", "did you mean 'max_connection_age'"),
])
def test_bad_services_entries_are_named(tmp_path, services, found):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, services))
    assert found in str(info.value)


def test_connection_age_and_grace(tmp_path):
    from switchyard.common.grpc_server import server_options
    default = load_config(write(tmp_path, "  router: router.svc:1\n")).services
    assert (default.max_connection_age_s, default.max_connection_age_grace_s) == (60.0, None)
    assert dict(server_options(default))["grpc.max_connection_age_ms"] == 60_000
    assert "grpc.max_connection_age_grace_ms" not in dict(server_options(default))
    s = load_config(write(tmp_path, "  max_connection_age: 30s\n"
                                    "  max_connection_age_grace: 10m\n")).services
    options = dict(server_options(s))
    assert options["grpc.max_connection_age_ms"] == 30_000
    assert options["grpc.max_connection_age_grace_ms"] == 600_000
    off = load_config(write(tmp_path, "  max_connection_age: none\n")).services
    assert off.max_connection_age_s is None
    assert "grpc.max_connection_age_ms" not in dict(server_options(off))
    assert "grpc.max_connection_age_ms" not in dict(server_options(None))
