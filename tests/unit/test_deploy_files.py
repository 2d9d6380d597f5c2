"""The deployment files stay consistent with the code: configs parse, commands exist."""
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
