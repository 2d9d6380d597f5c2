"""The deployment files stay consistent with the code: configs parse, commands exist."""
import os
import pathlib

import yaml

from switchyard.cli import SERVICES
from switchyard.common.config import parse_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "POSTGRES_PASSWORD": "p",
       "DATABASE_URL": "postgresql://u:p@db:5432/s"}


def test_compose_runs_the_four_services_with_a_valid_config(monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(SERVICES) | {"postgres"} == set(services)
    for name in SERVICES:
        assert services[name]["command"] == ["switchyard", "serve", name]
        assert services[name]["healthcheck"]["test"] == ["CMD", "switchyard", "probe", name]
    config = parse_config(yaml.safe_load(
        (ROOT / "deploy" / "plano_config.compose.yaml").read_text()))
    assert config.services.router == "router:12001" and config.state.type == "postgres"


def test_k8s_manifests(monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    k8s = ROOT / "deploy" / "k8s"
    cm = yaml.safe_load((k8s / "configmap.yaml").read_text())
    parse_config(yaml.safe_load(cm["data"]["plano_config.yaml"]))
    for name in SERVICES:
        docs = {d["kind"]: d for d in yaml.safe_load_all((k8s / f"{name}.yaml").read_text())}
        container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["switchyard", "serve", name]
        if name != "edge":  # gRPC: headless, so clients see every pod
            assert docs["Service"]["spec"]["clusterIP"] == "None"
        assert ("HorizontalPodAutoscaler" in docs) == (name in ("edge", "providers"))


BACKENDS = ("router", "providers", "state")


def test_compose_requires_the_internal_token_and_publishes_only_the_edge():
    from switchyard.common.internal_auth import TOKEN_ENV, refusal
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert [n for n in SERVICES if "ports" in services[n]] == ["edge"]
    for name in SERVICES:
        env = services[name]["environment"]
        # `:?` makes compose itself refuse to start without it; no default token.
        assert env[TOKEN_ENV].startswith("${" + TOKEN_ENV + ":?")
    for name in BACKENDS:
        listen = services[name]["environment"][f"SWITCHYARD_{name.upper()}_LISTEN"]
        # Beyond loopback, so the service would refuse to start without that token.
        assert refusal(name, listen, None, insecure=False) is not None
        assert refusal(name, listen, "t", insecure=False) is None


def test_compose_config_is_valid():
    import shutil
    import subprocess
    # scripts/test.sh installs Debian's docker-compose (it validates without an engine).
    assert shutil.which("docker-compose"), "docker-compose is missing: run ./scripts/test.sh"
    run = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config",
                          "-q"], capture_output=True, text=True, timeout=60,
                         env={"PATH": os.environ["PATH"], "SWITCHYARD_INTERNAL_TOKEN": "t"})
    assert run.returncode == 0, run.stderr
    missing = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"),
                              "config", "-q"], capture_output=True, text=True, timeout=60,
                             env={"PATH": os.environ["PATH"]})
    assert missing.returncode != 0 and "SWITCHYARD_INTERNAL_TOKEN" in missing.stderr


def _k8s_docs() -> list[dict]:
    return [d for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
            for d in yaml.safe_load_all(path.read_text()) if d]


def test_k8s_every_service_gets_the_token_from_a_secret_and_only_edge_reaches_backends():
    from switchyard.common.internal_auth import TOKEN_ENV
    docs = _k8s_docs()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for name in SERVICES:
        container = deployments[f"switchyard-{name}"]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert "value" not in env[TOKEN_ENV]
        assert env[TOKEN_ENV]["valueFrom"]["secretKeyRef"] == \
            {"name": "switchyard-internal", "key": "token"}
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
    selected = policy["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert sorted(selected) == sorted(f"switchyard-{n}" for n in BACKENDS)
    assert policy["spec"]["ingress"][0]["from"] == \
        [{"podSelector": {"matchLabels": {"app": "switchyard-edge"}}}]
    services = [d for d in docs if d["kind"] == "Service"]
    assert all(d["spec"].get("type", "ClusterIP") == "ClusterIP" for d in services)


def test_k8s_manifests_match_the_kubernetes_schemas():
    from kubernetes_validate import validate  # a test extra (pyproject.toml)
    for doc in _k8s_docs():
        validate(doc, "1.30.0", strict=True)   # raises on any schema violation
