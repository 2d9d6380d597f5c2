"""The deployment files stay consistent with the code: configs parse, commands exist, each
pod gets only its secrets, probes and drain times match what the services do, and every
manifest passes the Kubernetes schemas (offline)."""
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
import yaml

from switchyard.cli import SERVICES
from switchyard.common.config import ConfigError, parse_config
from switchyard.common.config.fields import expand_env, parse_duration
from switchyard.common.internal_auth import TOKEN_ENV

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
ENV = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "POSTGRES_PASSWORD": "p",
       "DATABASE_URL": "postgresql://u:p@db:5432/s", "GATEWAY_KEY": "gateway-key",
       "REDIS_PASSWORD": "redis-password"}
BACKENDS = ("router", "providers", "state")
PORTS = {"router": 12001, "providers": 12002, "state": 12003}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"switchyard:{VERSION}"
# The config's variables each service reads (besides the internal token): nothing else may
# reach its environment.
NEEDS = {"edge": {"GATEWAY_KEY", "REDIS_PASSWORD"}, "router": set(),
         "providers": {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}, "state": {"DATABASE_URL"}}


def _parse(raw: dict, service: str | None = None):
    return parse_config(raw, service=service)


def _set_env(monkeypatch, env: dict[str, str]) -> None:
    for name in {*ENV, *(f"SWITCHYARD_{s.upper()}_ADDR" for s in BACKENDS)}:
        monkeypatch.delenv(name, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _k8s_docs() -> list[dict]:
    return [d for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for d in yaml.safe_load_all(path.read_text()) if d]


def _of_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _k8s_docs() if d["kind"] == kind}


def _pod(name: str) -> dict:
    return _of_kind("Deployment")[f"switchyard-{name}"]["spec"]["template"]["spec"]


def _container(name: str) -> dict:
    return _pod(name)["containers"][0]


def _configmap_text() -> str:
    return _of_kind("ConfigMap")["switchyard-config"]["data"]["plano_config.yaml"]


def _prestop_seconds(container: dict) -> float:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, command
    return float(command[1])


# --- docker-compose ---------------------------------------------------------------------

def test_compose_runs_the_four_services_with_a_valid_config(monkeypatch):
    _set_env(monkeypatch, ENV)
    services = _compose()["services"]
    assert set(SERVICES) | {"postgres", "redis"} == set(services)
    for name in SERVICES:
        assert services[name]["command"] == ["switchyard", "serve", name]
        assert services[name]["healthcheck"]["test"] == ["CMD", "switchyard", "probe", name]
        assert services[name]["image"] == IMAGE
    raw = yaml.safe_load((ROOT / "deploy" / "plano_config.compose.yaml").read_text())
    config = _parse(raw)
    assert config.services.router == "router:12001" and config.state.type == "postgres"
    # The edges share compose's redis service; Redis down must not take the gateway down.
    assert raw["redis"] == {"url": "redis://redis:6379/0", "on_unavailable": "allow"}
    assert services["edge"]["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_compose_requires_the_internal_token_and_publishes_only_the_edge():
    from switchyard.common.internal_auth import refusal
    services = _compose()["services"]
    assert [n for n in services if "ports" in services[n]] == ["edge"]
    for name in SERVICES:
        env = services[name]["environment"]
        # `:?` makes compose itself refuse to start without it; no default token.
        assert env[TOKEN_ENV].startswith("${" + TOKEN_ENV + ":?")
    for name in BACKENDS:
        listen = services[name]["environment"][f"SWITCHYARD_{name.upper()}_LISTEN"]
        # Beyond loopback, so the service would refuse to start without that token.
        assert refusal(name, listen, None, insecure=False) is not None
        assert refusal(name, listen, "t", insecure=False) is None


def test_compose_services_are_hardened_and_may_finish_their_drain(monkeypatch):
    from switchyard.edge.server import END_GRACE_S
    _set_env(monkeypatch, ENV)
    services = _compose()["services"]
    drain = _parse(yaml.safe_load(
        (ROOT / "deploy" / "plano_config.compose.yaml").read_text())).security.drain_s
    for name in SERVICES:
        s = services[name]
        assert s["read_only"] is True and "/tmp" in s["tmpfs"]
        assert s["cap_drop"] == ["ALL"] and "no-new-privileges:true" in s["security_opt"]
        # Docker's default stop grace (10 s) would SIGKILL the edge mid-drain.
        assert parse_duration(s["stop_grace_period"]) > drain + END_GRACE_S


def test_compose_config_is_valid():
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


# --- the image ----------------------------------------------------------------------------

def _dockerfile() -> list[str]:
    text = (ROOT / "deploy" / "Dockerfile").read_text().replace("\\\n", " ")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_dockerfile_runs_as_a_numeric_user_that_the_manifests_name():
    lines = _dockerfile()
    user = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert len(user) == 1 and re.fullmatch(r"\d+(:\d+)?", user[0]), user
    uid = int(user[0].split(":")[0])
    assert uid >= 10000    # clear of the ids a node's own users and images take
    for name in SERVICES:
        pod = _pod(name)["securityContext"]
        assert pod["runAsUser"] == uid and pod["runAsNonRoot"] is True
    cmd = next(ln for ln in lines if ln.startswith("CMD "))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert cmd.split('"')[1] in scripts    # the console script pip installs
    assert (ROOT / "deploy" / "Dockerfile").read_text().count(
        f"docker build -f deploy/Dockerfile -t {IMAGE} .") == 1


def test_dockerfile_copies_enough_for_pip_install(tmp_path):
    """Build the wheel `pip install .` builds in the image, from exactly what it COPYs."""
    src = tmp_path / "context"
    src.mkdir()
    for ln in _dockerfile():
        if ln.startswith("COPY "):
            *sources, _dest = ln.split()[1:]
            for s in sources:
                if (ROOT / s).is_dir():
                    shutil.copytree(ROOT / s, src / s,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy(ROOT / s, src / s)
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                          "--no-build-isolation", "--disable-pip-version-check", "-q",
                          "-w", str(tmp_path / "out"), str(src)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    (wheel,) = (tmp_path / "out").glob("switchyard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("switchyard/cli.py", "switchyard/examples/plano_config.yaml",
                   "switchyard/common/proto/chat_pb2.py"):
        assert needed in names
    assert any(n.startswith("switchyard/state/migrations/") and n.endswith(".sql")
               for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "switchyard = switchyard.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_every_image_is_pinned_and_switchyards_is_the_built_tag():
    images = [c["image"] for d in _of_kind("Deployment").values()
              for c in d["spec"]["template"]["spec"]["containers"]]
    images += [s["image"] for s in _compose()["services"].values()]
    for image in images:
        assert ":" in image and not image.endswith(":latest"), image
    assert {i for i in images if i.split(":")[0] == "switchyard"} == {IMAGE}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert {"name": "switchyard", "newTag": VERSION} in kustomization["images"]


# --- k8s: structure -------------------------------------------------------------------------

def test_k8s_manifests(monkeypatch):
    _set_env(monkeypatch, ENV)
    _parse(yaml.safe_load(_configmap_text()))
    for name in SERVICES:
        docs = {d["kind"]: d for d in yaml.safe_load_all((K8S / f"{name}.yaml").read_text())}
        container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["switchyard", "serve", name]
        if name != "edge":  # gRPC: headless, so clients see every pod
            assert docs["Service"]["spec"]["clusterIP"] == "None"
        assert ("HorizontalPodAutoscaler" in docs) == (name in ("edge", "providers"))


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_k8s_manifests_match_the_kubernetes_schemas():
    from kubernetes_validate import validate  # a test extra (pyproject.toml); bundles the schemas
    from kubernetes_validate.utils import latest_version
    docs = _k8s_docs()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "PodDisruptionBudget",
                                         "HorizontalPodAutoscaler", "ConfigMap",
                                         "NetworkPolicy"}
    for version in ("1.30.0", latest_version()):   # the oldest supported and the newest
        for doc in docs:
            validate(doc, version, strict=True)   # raises on any schema violation


def test_k8s_config_names_the_headless_services_and_redis(monkeypatch):
    _set_env(monkeypatch, ENV)
    raw = yaml.safe_load(_configmap_text())
    config = _parse(raw)
    services = _of_kind("Service")
    for name in BACKENDS:
        address = getattr(config.services, name)
        assert address == f"dns:///switchyard-{name}:{PORTS[name]}"
        spec = services[f"switchyard-{name}"]["spec"]
        assert spec["clusterIP"] == "None" and spec["ports"][0]["port"] == PORTS[name]
        assert _container(name)["ports"][0]["containerPort"] == PORTS[name]
        listen = {e["name"]: e.get("value") for e in _container(name)["env"]}
        assert listen[f"SWITCHYARD_{name.upper()}_LISTEN"] == f"0.0.0.0:{PORTS[name]}"
    assert raw["redis"]["on_unavailable"] == "allow"
    url = expand_env(raw["redis"]["url"], ENV)[0]
    assert url == "redis://:redis-password@switchyard-redis:6379/0"
    parsed = getattr(config.security, "redis", None)   # once the loader reads `redis:`
    if "redis" in config.raw and parsed is not None:
        assert (parsed.url, parsed.on_unavailable) == (url, "allow")
    redis_port = services["switchyard-redis"]["spec"]["ports"][0]["port"]
    assert redis_port == 6379
    assert "--requirepass" in _of_kind("Deployment")["switchyard-redis"]["spec"]["template"][
        "spec"]["containers"][0]["args"]


# --- k8s: secrets -------------------------------------------------------------------------

def _secret_env(container: dict) -> dict[str, tuple[str, str]]:
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"],
                        e["valueFrom"]["secretKeyRef"]["key"])
            for e in container.get("env", ()) if "valueFrom" in e}


def test_k8s_every_service_gets_the_token_from_a_secret_and_only_edge_reaches_backends():
    for name in SERVICES:
        env = {e["name"]: e for e in _container(name)["env"]}
        assert "value" not in env[TOKEN_ENV]
        assert env[TOKEN_ENV]["valueFrom"]["secretKeyRef"] == \
            {"name": "switchyard-internal", "key": "token"}
    policies = _of_kind("NetworkPolicy")
    backends = policies["switchyard-backends-from-edge"]["spec"]
    selected = backends["podSelector"]["matchExpressions"][0]["values"]
    assert sorted(selected) == sorted(f"switchyard-{n}" for n in BACKENDS)
    assert sorted(p["port"] for p in backends["ingress"][0]["ports"]) == sorted(PORTS.values())
    redis = policies["switchyard-redis-from-edge"]["spec"]
    assert redis["podSelector"] == {"matchLabels": {"app": "switchyard-redis"}}
    edge_only = [{"podSelector": {"matchLabels": {"app": "switchyard-edge"}}}]
    assert backends["ingress"][0]["from"] == edge_only == redis["ingress"][0]["from"]
    assert all(d["spec"].get("type", "ClusterIP") == "ClusterIP"
               for d in _of_kind("Service").values())


def test_k8s_each_service_gets_only_the_secrets_it_uses():
    config_vars = set(expand_env(_configmap_text(), {})[1])
    assert config_vars == set().union(*NEEDS.values())   # every variable reaches its reader
    for name in SERVICES:
        container = _container(name)
        assert "envFrom" not in container    # no bulk import of a Secret's keys
        got = set(_secret_env(container)) - {TOKEN_ENV}
        assert got == NEEDS[name], name
    # A Secret is read by its one service, except the shared token (and Redis's password,
    # which the edge and Redis share).
    readers: dict[str, set[str]] = {}
    for name in [*SERVICES, "redis"]:
        for secret, _key in _secret_env(_pod(name)["containers"][0]).values():
            readers.setdefault(secret, set()).add(name)
    assert readers == {"switchyard-internal": set(SERVICES), "switchyard-edge": {"edge"},
                       "switchyard-redis": {"edge", "redis"},
                       "switchyard-providers": {"providers"}, "switchyard-state": {"state"}}


def test_k8s_readme_creates_exactly_the_secrets_the_pods_read():
    readme = (K8S / "README.md").read_text()
    created = set()
    for command in re.findall(r"kubectl create secret generic .*?(?:\n(?!\s)|$)",
                              readme.replace("\\\n", " "), re.S):
        secret = command.split()[4]
        created |= {(secret, key) for key in re.findall(r"--from-literal=(\w+)=", command)}
    read = {ref for name in [*SERVICES, "redis"]
            for ref in _secret_env(_pod(name)["containers"][0]).values()}
    assert created == read


def test_k8s_config_parses_with_each_services_own_environment(monkeypatch):
    """Each pod gets only its own secrets, and each service expands only the sections it
    uses: its own environment is enough, and another service's is not."""
    _set_env(monkeypatch, ENV)
    _parse(yaml.safe_load(_configmap_text()))
    for name in SERVICES:
        env = {e["name"]: e.get("value", "secret-from-k8s") for e in _container(name)["env"]}
        _set_env(monkeypatch, env)
        _parse(yaml.safe_load(_configmap_text()), service=name)
        if NEEDS[name]:   # ... and it does need them
            _set_env(monkeypatch, {k: v for k, v in env.items() if k not in NEEDS[name]})
            with pytest.raises(ConfigError):
                _parse(yaml.safe_load(_configmap_text()), service=name)


# --- k8s: pods, probes, drain, disruptions --------------------------------------------------

def test_k8s_pods_are_hardened():
    for name in [*SERVICES, "redis"]:
        pod = _pod(name)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert isinstance(pod["securityContext"]["runAsUser"], int)
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert "resources" in c and "memory" in c["resources"]["limits"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        writable = {m["mountPath"]: volumes[m["name"]] for c in pod["containers"]
                    for m in c["volumeMounts"] if not m.get("readOnly")}
        scratch = "/data" if name == "redis" else "/tmp"   # redis-server's working dir
        assert "emptyDir" in writable[scratch], name
        assert all("emptyDir" in v for v in writable.values()), name


def test_k8s_backends_use_native_grpc_probes_and_the_edge_http_ones():
    for name in BACKENDS:
        c = _container(name)
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["grpc"] == {"port": PORTS[name], "service": ""}, (name, probe)
            assert "exec" not in c[probe]
    edge = _container("edge")
    port = edge["ports"][0]
    assert edge["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert edge["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert edge[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])


async def test_k8s_edge_probe_paths_need_no_gateway_key(monkeypatch):
    """The kubelet sends no API key: the guard must let the probe paths through with auth
    on. `/readyz` is being added (issue 12 item 2): until the edge routes it, it is the one
    path allowed to be missing; from then on it is checked like /healthz."""
    from switchyard.edge.app import create_app
    from switchyard.edge.guard import Guard
    _set_env(monkeypatch, ENV)
    config = _parse(yaml.safe_load(_configmap_text()))
    assert config.security.auth_enabled
    edge = _container("edge")
    paths = {edge[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    routed = {getattr(r, "path", None) for r in create_app(config).app.app.routes}

    async def stub(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = Guard(stub, security=config.security)
    for path in sorted(paths) + ["/v1/models"]:
        if path not in routed:
            assert path == "/readyz", f"{path} is probed but the edge does not serve it"
            continue
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message, sent=sent):
            sent.append(message)
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "headers": [], "client": ("10.0.0.1", 1234),
                 "server": ("10.0.0.2", 12000), "scheme": "http", "http_version": "1.1",
                 "state": {}}
        await guard(scope, receive, send)
        status = sent[0]["status"]
        if path == "/v1/models":     # the control: without a key a real path is refused
            assert status == 401
        else:
            assert status == 200, (path, status)


def test_k8s_grace_period_covers_prestop_and_drain(monkeypatch):
    from switchyard.common.grpc_server import DRAIN_SECONDS
    from switchyard.edge.server import END_GRACE_S
    _set_env(monkeypatch, ENV)
    config = _parse(yaml.safe_load(_configmap_text()))
    # The edge's uvicorn stops after the drain plus the error events' grace, then exits; a
    # gRPC service drains for limits.drain_seconds (DRAIN_SECONDS when run without a config).
    edge_stop = math.ceil(config.security.drain_s + END_GRACE_S)
    backend_stop = max(DRAIN_SECONDS, config.security.drain_s)
    for name in SERVICES:
        pod = _pod(name)
        prestop = _prestop_seconds(pod["containers"][0])
        assert prestop >= 1   # endpoints must leave the Services before the drain starts
        stop = edge_stop if name == "edge" else backend_stop
        assert pod["terminationGracePeriodSeconds"] > prestop + stop, name


def test_k8s_every_deployment_has_a_disruption_budget_and_spreads():
    budgets = _of_kind("PodDisruptionBudget")
    for name in SERVICES:
        deployment = _of_kind("Deployment")[f"switchyard-{name}"]
        assert deployment["spec"]["replicas"] >= 2
        budget = budgets[f"switchyard-{name}"]["spec"]
        assert budget["selector"] == deployment["spec"]["selector"]
        # Lets a node drain proceed one pod at a time; never blocks it outright.
        assert budget == {"maxUnavailable": 1, "selector": budget["selector"]}
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
        assert spread["labelSelector"] == deployment["spec"]["selector"]
    hpas = _of_kind("HorizontalPodAutoscaler")
    assert set(hpas) == {"switchyard-edge", "switchyard-providers"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["minReplicas"] >= budgets[name]["spec"]["maxUnavailable"] + 1
        container = _of_kind("Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
        assert "cpu" in container["resources"]["requests"]   # utilization is of the request


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_service_selects_its_deployment(service):
    deployment = _of_kind("Deployment")[f"switchyard-{service}"]
    svc = _of_kind("Service")[f"switchyard-{service}"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    named = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert all(p["targetPort"] in named for p in svc["spec"]["ports"])
