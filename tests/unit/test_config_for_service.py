"""Each service reads the config file for itself: it expands only the secrets it uses, so
its pod needs no other service's, and a missing variable is an error only where it is used;
`check` (every service) still reports them all. Also SWITCHYARD_EDGE_LISTEN, which lets
several edges on one machine read one file."""
from __future__ import annotations

import hashlib
import pathlib

import pytest
import yaml

from switchyard.common.config import ConfigError, load_config, parse_config
from switchyard.common.config.fields import SECRET_READERS, SERVICES
from switchyard.common.config.loader import source_digest

ROOT = pathlib.Path(__file__).resolve().parents[2]

CONFIG = """
version: v0.3.0
listeners:
  - {type: model, name: model_listener, address: 127.0.0.1, port: 12000}
model_providers:
  - model: openai/gpt-4o-mini
    access_key: $OPENAI_API_KEY
    headers: {x-team-token: "${TEAM_TOKEN}"}
    base_url: http://127.0.0.1:9999
    default: true
  - model: amazon_bedrock/us.anthropic.claude-sonnet-4-20250514-v1:0
    access_key: $AWS_KEY_ID
    secret_key: $AWS_SECRET
    region: us-west-2
model_aliases:
  fast-model: {target: gpt-4o-mini}
state_storage: {type: postgres, connection_string: $DATABASE_URL}
auth:
  keys:
    - {key: $GATEWAY_KEY, tenant: default, requests_per_minute: 60}
redis: {url: "redis://:${REDIS_PASSWORD}@redis:6379/0"}
filters:
  - {id: pii, type: http, url: "http://filters:9000/pii?token=${FILTER_TOKEN}"}
listeners_filter_placeholder: null
"""
SECRETS = {"OPENAI_API_KEY": "sk-provider-0123456789", "TEAM_TOKEN": "team-token-0123456789",
           "AWS_KEY_ID": "AKIAEXAMPLE000000001", "AWS_SECRET": "aws-secret-0123456789",
           "DATABASE_URL": "postgresql://u:db-password-0123@db:5432/s",
           "GATEWAY_KEY": "gateway-key-0123456789", "REDIS_PASSWORD": "redis-pw-0123456789",
           "FILTER_TOKEN": "filter-token-0123456789"}
# The variables each service's own part uses.
OWN = {"providers": {"OPENAI_API_KEY", "TEAM_TOKEN", "AWS_KEY_ID", "AWS_SECRET"},
       "state": {"DATABASE_URL"}, "edge": {"GATEWAY_KEY", "REDIS_PASSWORD", "FILTER_TOKEN"},
       "router": set()}


def data() -> dict:
    raw = yaml.safe_load(CONFIG)
    del raw["listeners_filter_placeholder"]
    raw["listeners"][0]["input_filters"] = ["pii"]
    return raw


def held(config) -> set[str]:
    """Every secret value the parsed config holds anywhere."""
    text = repr([(p.access_key, p.headers, p.aws and (p.aws.secret_key, p.aws.session_token))
                 for p in config.providers]) + repr(config.state.connection_string) + \
        repr([k.sha256 for k in config.security.keys]) + \
        repr(config.security.redis and config.security.redis.url) + \
        repr([f.url for f in (*config.filters.input, *config.filters.output)])
    digests = {name for name, v in SECRETS.items() if repr(hashlib.sha256(v.encode()).digest())
               in text}
    return {name for name, v in SECRETS.items() if v in text} | digests


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_needs_only_its_own_variables(service):
    env = {name: SECRETS[name] for name in OWN[service]}
    config = parse_config(data(), "f.yaml", environ=env, service=service)
    assert config.service == service
    assert held(config) == OWN[service]
    # The parts it does not read are still there, without their secrets.
    assert [p.name for p in config.providers][0] == "openai/gpt-4o-mini"
    assert config.state.type == "postgres"
    assert "fast-model" in config.aliases


def test_the_edge_keeps_its_keys_limits_redis_and_filters():
    env = {name: SECRETS[name] for name in OWN["edge"]}
    config = parse_config(data(), "f.yaml", environ=env, service="edge")
    assert config.security.auth_enabled and config.security.keys[0].requests_per_minute == 60
    assert config.security.redis is not None and "***" in config.security.redis.display
    assert [f.id for f in config.filters.input] == ["pii"]
    router = parse_config(data(), "f.yaml", environ={}, service="router")
    assert not router.security.keys and router.security.redis is None and not router.filters


@pytest.mark.parametrize("service", SERVICES)
def test_a_missing_variable_is_an_error_only_where_it_is_used(service):
    env = {name: SECRETS[name] for name in OWN[service]}
    for name in sorted(OWN[service]):
        with pytest.raises(ConfigError) as info:
            parse_config(data(), "f.yaml", environ={k: v for k, v in env.items() if k != name},
                         service=service)
        assert any(f"${name}" in e for e in info.value.errors), info.value.errors
    for other in set(SERVICES) - {service}:   # the others start without this one's secrets
        parse_config(data(), "f.yaml", environ={n: SECRETS[n] for n in OWN[other]},
                     service=other)


def test_check_reads_every_part_and_names_every_missing_variable():
    with pytest.raises(ConfigError) as info:
        parse_config(data(), "f.yaml", environ={})
    text = "\n".join(info.value.errors)
    for name in SECRETS:
        assert f"${name}" in text, name
    config = parse_config(data(), "f.yaml", environ=SECRETS)
    assert config.service is None and held(config) == set(SECRETS)


def test_structural_errors_stay_errors_for_every_service():
    raw = data()
    raw["redis"]["on_unavailable"] = "sometimes"
    with pytest.raises(ConfigError, match="on_unavailable must be allow or deny"):
        parse_config(raw, "f.yaml", environ=SECRETS, service="edge")
    raw = data()
    raw["model_providers"][0]["acces_key"] = raw["model_providers"][0].pop("access_key")
    for service in SERVICES:
        with pytest.raises(ConfigError, match="did you mean 'access_key'"):
            parse_config(raw, "f.yaml", environ=SECRETS, service=service)


def test_every_secret_part_names_real_services():
    assert set(SECRET_READERS) == {"model_providers", "state_storage", "auth", "redis",
                                   "filters"}
    assert all(readers <= set(SERVICES) for readers in SECRET_READERS.values())


def test_the_k8s_config_starts_every_service_with_its_pods_environment(monkeypatch):
    """deploy/k8s: each Deployment's env (values faked) is enough for its own service."""
    text = yaml.safe_load((ROOT / "deploy/k8s/configmap.yaml").read_text())["data"][
        "plano_config.yaml"]
    for service in SERVICES:
        (deployment,) = [d for d in yaml.safe_load_all(
            (ROOT / f"deploy/k8s/{service}.yaml").read_text()) if d and d["kind"] == "Deployment"]
        env = {e["name"]: e.get("value", "value-from-a-secret")
               for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        for name in list(env):
            if name.startswith("SWITCHYARD_"):
                env.pop(name)
        config = parse_config(yaml.safe_load(text), "configmap", environ=env, service=service)
        assert config.service == service


def test_load_config_for_a_service_and_its_digest(tmp_path, monkeypatch):
    path = tmp_path / "plano_config.yaml"
    path.write_text("model_providers:\n  - model: openai/gpt-4o\n    access_key: $NOT_SET_KEY\n")
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_KEY"):
        load_config(path)
    config = load_config(path, for_service="router")
    assert config.providers[0].access_key is None
    assert config.source_digest == source_digest(path.read_text(), str(path))
    (tmp_path / ".env").write_text("NOT_SET_KEY=sk-from-dotenv-123\n")
    again = load_config(path, for_service="providers")
    assert again.providers[0].access_key == "sk-from-dotenv-123"
    assert again.source_digest != config.source_digest   # the .env is part of the digest
    with pytest.raises(ValueError, match="unknown service"):
        load_config(path, for_service="gateway")


def test_switchyard_edge_listen_moves_the_model_listener(monkeypatch):
    raw = {"listeners": [{"type": "model", "name": "l", "address": "0.0.0.0", "port": 12000}],
           "model_providers": [{"model": "ollama/llama3.1"}]}
    monkeypatch.setenv("SWITCHYARD_EDGE_LISTEN", "127.0.0.1:12345")
    lst = parse_config(raw).listener
    assert (lst.address, lst.port, lst.name) == ("127.0.0.1", 12345, "l")
    monkeypatch.setenv("SWITCHYARD_EDGE_LISTEN", "12345")
    with pytest.raises(ConfigError, match="SWITCHYARD_EDGE_LISTEN: '12345' must be host:port"):
        parse_config(raw)
