"""Config loading: the Plano format, our extensions, and every error message."""
from __future__ import annotations

import copy
import filecmp
import pathlib

import pytest

from switchyard.common.config import ConfigError, format_model_table, load_config, parse_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECRET = "sk-very-secret-123"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    for var in ("SWITCHYARD_ROUTER_ADDR", "SWITCHYARD_PROVIDERS_ADDR", "SWITCHYARD_STATE_ADDR",
                "UNSET_VAR_FOR_TEST"):
        monkeypatch.delenv(var, raising=False)


def base() -> dict:
    return {
        "version": "v0.3.0",
        "listeners": [{"type": "model", "name": "model_listener", "address": "127.0.0.1",
                       "port": 12000, "timeout": "30s"}],
        "model_providers": [
            {"model": "openai/gpt-4o-mini", "access_key": "$OPENAI_API_KEY", "default": True},
            {"model": "anthropic/*", "access_key": "${ANTHROPIC_API_KEY}"},
            {"model": "ollama/llama3.1", "base_url": "http://localhost:11434"},
            {"model": "vllm/qwen2.5", "base_url": "http://gpu-box:8000",
             "provider_interface": "openai"},
        ],
        "model_aliases": {"fast-model": {"target": "gpt-4o-mini"},
                          "smart-model": {"target": "claude-3-5-sonnet-20241022",
                                          "fallbacks": ["gpt-4o-mini"]}},
        "state_storage": {"type": "memory"},
    }


def errors_of(data: dict, path: str = "cfg.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, path)
    assert str(info.value).splitlines() == info.value.errors
    return info.value.errors


def test_minimal_design_config_parses():
    c = parse_config(base(), "cfg.yaml")
    names = [p.name for p in c.providers]
    assert names == ["openai/gpt-4o-mini", "anthropic/*", "ollama/llama3.1", "vllm/qwen2.5"]
    openai, anthropic, ollama, vllm = c.providers
    assert openai.access_key == SECRET and openai.auth == "bearer" and openai.default
    assert openai.endpoint == "https://api.openai.com/v1/chat/completions"
    assert anthropic.is_wildcard and anthropic.interface == "anthropic"
    assert anthropic.auth == "x-api-key" and anthropic.access_key == "sk-ant-secret"
    assert anthropic.endpoint == "https://api.anthropic.com/v1/messages"
    assert ollama.auth == "none" and ollama.access_key is None
    assert ollama.endpoint == "http://localhost:11434/v1/chat/completions"
    assert vllm.provider == "vllm" and vllm.interface == "openai" and vllm.auth == "none"
    assert vllm.endpoint == "http://gpu-box:8000/v1/chat/completions"
    assert c.aliases["smart-model"].fallbacks == ("gpt-4o-mini",)
    assert c.listener.timeout_s == 30.0 and c.listener.port == 12000
    assert c.state.type == "memory"
    assert c.services.router == "127.0.0.1:12001"


def test_listener_list_form_picks_the_model_listener():
    data = base()
    data["listeners"] = [
        {"type": "agent", "name": "agents", "port": 8001, "router": "plano_orchestrator_v1"},
        {"type": "model", "name": "llm", "address": "0.0.0.0", "port": 12500,
         "timeout": "500ms", "max_retries": 4},
    ]
    lst = parse_config(data).listener
    assert (lst.name, lst.address, lst.port, lst.timeout_s, lst.max_retries) == \
        ("llm", "0.0.0.0", 12500, 0.5, 4)


def test_listener_older_map_form():
    data = base()
    data["listeners"] = {"ingress_traffic": {"port": 10000},
                         "egress_traffic": {"address": "0.0.0.0", "port": 12001,
                                            "message_format": "openai", "timeout": "2m"}}
    lst = parse_config(data).listener
    assert (lst.name, lst.address, lst.port, lst.timeout_s) == \
        ("egress_traffic", "0.0.0.0", 12001, 120.0)


@pytest.mark.parametrize("value,seconds", [("30s", 30.0), ("500ms", 0.5), ("2m", 120.0),
                                           (45, 45.0), (1.5, 1.5), ("1h", 3600.0)])
def test_timeouts(value, seconds):
    data = base()
    data["listeners"][0]["timeout"] = value
    assert parse_config(data).listener.timeout_s == seconds


def test_llm_providers_is_the_older_name():
    data = base()
    data["llm_providers"] = data.pop("model_providers")
    assert len(parse_config(data).providers) == 4


def test_older_arch_form_provider_interface_with_bare_model():
    data = base()
    data["model_providers"] = [{"name": "OpenAI", "provider_interface": "openai",
                                "access_key": "$OPENAI_API_KEY", "model": "gpt-4o",
                                "default": True}]
    data["model_aliases"] = {}
    (e,) = parse_config(data).providers
    assert (e.name, e.provider, e.model) == ("OpenAI", "openai", "gpt-4o")


def test_env_expansion_everywhere(monkeypatch):
    monkeypatch.setenv("GPU_HOST", "gpu7")
    monkeypatch.setenv("TEAM", "blue")
    data = base()
    data["model_providers"][3]["base_url"] = "http://${GPU_HOST}:8000"
    data["model_providers"][3]["headers"] = {"X-Team": "$TEAM", "X-Price": "$$5",
                                             "X-Default": "${NOPE_UNSET:-fallback}"}
    vllm = parse_config(data).providers[3]
    assert vllm.endpoint == "http://gpu7:8000/v1/chat/completions"
    assert vllm.headers == {"X-Team": "blue", "X-Price": "$5", "X-Default": "fallback"}


def test_unset_key_is_fine_for_providers_that_need_none():
    data = base()
    data["model_providers"][2]["access_key"] = "$UNSET_VAR_FOR_TEST"
    data["model_providers"][3]["access_key"] = "$UNSET_VAR_FOR_TEST"
    c = parse_config(data)
    assert c.providers[2].access_key is None and c.providers[3].auth == "none"


def test_vllm_with_key_uses_bearer():
    data = base()
    data["model_providers"][3]["access_key"] = "tok"
    assert parse_config(data).providers[3].auth == "bearer"


def test_passthrough_auth_needs_no_key():
    data = base()
    data["model_providers"].append({"model": "openai/gpt-4o-litellm", "passthrough_auth": True,
                                    "base_url": "https://litellm.example.com"})
    e = parse_config(data).providers[-1]
    assert e.passthrough_auth and e.access_key is None and e.auth == "bearer"
    assert e.endpoint == "https://litellm.example.com/v1/chat/completions"


@pytest.mark.parametrize("entry,endpoint", [
    ({"model": "groq/llama-3.3-70b-versatile", "access_key": "k"},
     "https://api.groq.com/openai/v1/chat/completions"),
    ({"model": "gemini/gemini-2.0-flash", "access_key": "k"},
     "https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent"),
    ({"model": "gemini/gemini-2.0-flash", "access_key": "k", "provider_interface": "openai"},
     "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"),
    ({"model": "openai/gpt-4o", "access_key": "k", "base_url": "https://proxy.local/api/v2/"},
     "https://proxy.local/api/v2/chat/completions"),
    ({"model": "openai/gpt-4o", "access_key": "k",
      "base_url": "http://h:1234/v1/chat/completions"}, "http://h:1234/v1/chat/completions"),
    ({"model": "claude/sonnet", "provider_interface": "anthropic", "base_url": "http://a:9"},
     "http://a:9/v1/messages"),
    ({"model": "azure_openai/gpt-4o", "access_key": "k",
      "base_url": "https://res.openai.azure.com"},
     "https://res.openai.azure.com/openai/deployments/{model}/chat/completions"
     "?api-version=2024-10-21"),
    ({"model": "azure_openai/gpt-4o", "access_key": "k", "api_version": "2025-01-01-preview",
      "base_url": "https://res.openai.azure.com"},
     "https://res.openai.azure.com/openai/deployments/{model}/chat/completions"
     "?api-version=2025-01-01-preview"),
])
def test_endpoints(entry, endpoint):
    data = base()
    data["model_providers"].append(entry)
    e = parse_config(data).providers[-1]
    assert e.endpoint == endpoint
    if e.provider == "azure_openai":
        assert e.auth == "api-key" and e.api_version


def test_duplicate_model_strings_are_auto_suffixed():
    data = base()
    data["model_providers"][0]["group"] = "mini"
    data["model_providers"].append({"model": "openai/gpt-4o-mini", "access_key": "k2",
                                    "group": "mini"})
    data["model_providers"].append({"model": "openai/gpt-4o-mini", "access_key": "k3",
                                    "group": "mini"})
    names = [p.name for p in parse_config(data).providers]
    assert names[-2:] == ["openai/gpt-4o-mini#2", "openai/gpt-4o-mini#3"]


def test_extensions_and_services(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_STATE_ADDR", "state.svc:9000")
    data = base()
    data["model_providers"][0]["default_max_tokens"] = 2048
    data["state_storage"] = {"type": "postgres", "connection_string": "postgresql://u:p@h/db",
                             "ttl_seconds": 60, "max_entries": 10, "max_depth": 5}
    data["services"] = {"router": "router.svc:7001", "providers": "10.0.0.2:7002"}
    c = parse_config(data)
    assert c.providers[0].default_max_tokens == 2048
    assert (c.state.type, c.state.ttl_seconds, c.state.max_entries, c.state.max_depth) == \
        ("postgres", 60, 10, 5)
    assert (c.services.router, c.services.providers, c.services.state) == \
        ("router.svc:7001", "10.0.0.2:7002", "state.svc:9000")


def test_plano_only_keys_are_accepted():
    data = base()
    data["tracing"] = {"random_sampling": 100}
    data["model_providers"][0]["routing_preferences"] = [{"name": "code", "description": "x"}]
    parse_config(data)


def _set(data: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()

# (mutation path, value, entry the message names, words it must contain)
ERROR_CASES = [
    ("model_providers.3.provider_interface", _DELETE, "model_providers[3] (vllm/qwen2.5)",
     ["unknown provider 'vllm'", "provider_interface: openai", "base_url"]),
    ("model_providers.0.access_key", "$UNSET_VAR_FOR_TEST",
     "model_providers[0] (openai/gpt-4o-mini)", ["UNSET_VAR_FOR_TEST", "not set"]),
    ("model_providers.0.access_key", _DELETE, "model_providers[0] (openai/gpt-4o-mini)",
     ["access_key is missing", "$OPENAI_API_KEY"]),
    ("model_providers.0.model", "gpt-4o-mini", "model_providers[0] (gpt-4o-mini)",
     ["provider prefix", "openai/gpt-4o-mini"]),
    ("model_providers.0.model", "openai/gpt-*", "model_providers[0] (openai/gpt-*)",
     ["openai/*"]),
    ("model_providers.2.default", True, "model_providers", ["more than one", "default: true",
                                                               "model_providers[2]"]),
    ("model_providers.0.default", "yes", "model_providers[0] (openai/gpt-4o-mini)",
     ["default must be true or false"]),
    ("model_providers.1.acess_key", "x", "model_providers[1] (anthropic/*)",
     ["unknown key 'acess_key'", "did you mean 'access_key'"]),
    ("model_providers.3.provider_interface", "grpc", "model_providers[3] (vllm/qwen2.5)",
     ["provider_interface 'grpc'", "openai"]),
    ("model_providers.3.base_url", "gpu-box:8000", "model_providers[3] (vllm/qwen2.5)",
     ["base_url", "scheme://host[:port][/path]"]),
    ("model_providers.3.base_url", _DELETE, "model_providers[3] (vllm/qwen2.5)",
     ["base_url is required"]),
    ("model_providers.2.endpoint", "localhost:11434", "model_providers[2] (ollama/llama3.1)",
     ["endpoint is not supported", "base_url"]),
    ("model_providers.2.default_max_tokens", 0, "model_providers[2] (ollama/llama3.1)",
     ["default_max_tokens must be a positive whole number"]),
    ("model_providers.2.headers", ["x"], "model_providers[2] (ollama/llama3.1)",
     ["headers must be a map"]),
    ("model_aliases.fast-model.target", "gtp-4o-mini", "model_aliases.fast-model",
     ["'gtp-4o-mini' does not match", "did you mean", "gpt-4o-mini"]),
    ("model_aliases", {"loop": {"target": "loop2"}, "loop2": {"target": "loop"}},
     "model_aliases.loop",
     ["cycle", "loop → loop2 → loop"]),
    ("model_aliases.w", {"targets": [{"model": "gpt-4o-mini", "weight": 0}]},
     "model_aliases.w.targets[0]", ["weight must be a positive whole number"]),
    ("model_aliases.w", {"targets": [{"model": "gpt-4o-mini", "weight": 1.5}]},
     "model_aliases.w.targets[0]", ["weight must be a positive whole number"]),
    ("model_aliases.w", {"target": "gpt-4o-mini", "targets": [{"model": "gpt-4o-mini"}]},
     "model_aliases.w", ["either target or targets"]),
    ("model_aliases.w", {"fallbacks": ["gpt-4o-mini"]}, "model_aliases.w", ["needs a target"]),
    ("model_aliases.w", {"target": "gpt-4o-mini", "fallback": ["x"]}, "model_aliases.w",
     ["unknown key 'fallback'", "did you mean 'fallbacks'"]),
    ("listeners.0.timeout", "soon", "listeners[0]", ["timeout", "30s, 500ms, 2m"]),
    ("listeners.0.timeout", "-5s", "listeners[0]", ["timeout"]),
    ("listeners.0.port", 70000, "listeners[0]", ["port must be a number between 1 and 65535"]),
    ("listeners.0.max_retries", -1, "listeners[0]", ["max_retries"]),
    ("state_storage.type", "redis", "state_storage", ["memory or postgres", "redis"]),
    ("state_storage.type", "postgres", "state_storage", ["connection_string"]),
    ("state_storage.ttl_seconds", -3, "state_storage", ["ttl_seconds"]),
    ("services", {"router": "nohostport"}, "services.router", ["host:port"]),
    ("services", {"edge": "127.0.0.1:1"}, "services", ["unknown service 'edge'"]),
    ("modle_providers", [], "", ["unknown top-level key 'modle_providers'",
                                 "did you mean 'model_providers'"]),
    ("llm_providers", [], "llm_providers", ["keep one"]),
    ("model_providers", [], "model_providers", ["no model providers configured"]),
]


@pytest.mark.parametrize("dotted,value,where,words", ERROR_CASES,
                         ids=[f"{c[0]}={c[1]!r}"[:60] for c in ERROR_CASES])
def test_error_messages(dotted, value, where, words):
    data = base()
    _set(data, dotted, value)
    errors = errors_of(data)
    line = next((e for e in errors if all(w in e for w in words)), None)
    assert line is not None, errors
    assert line.startswith(f"cfg.yaml: {where}"), line
    assert SECRET not in "\n".join(errors)


def test_duplicate_explicit_names_are_an_error():
    data = base()
    data["model_providers"][2]["name"] = "local"
    data["model_providers"][3]["name"] = "local"
    (line,) = errors_of(data)
    assert line.startswith("cfg.yaml: model_providers[3] (vllm/qwen2.5): name 'local' is "
                           "already used by model_providers[2]")


def test_default_wildcard_is_an_error():
    data = base()
    data["model_providers"][0]["default"] = False
    data["model_providers"][1]["default"] = True
    (line,) = errors_of(data)
    assert "model_providers[1] (anthropic/*)" in line and "concrete model" in line


def test_azure_without_base_url():
    data = base()
    data["model_providers"].append({"model": "azure_openai/gpt-4o", "access_key": "k"})
    (line,) = errors_of(data)
    assert "model_providers[4] (azure_openai/gpt-4o): base_url is required" in line
    assert "openai.azure.com" in line


def test_all_errors_reported_at_once():
    data = base()
    data["model_providers"][0]["access_key"] = "$UNSET_VAR_FOR_TEST"
    data["model_providers"][3].pop("provider_interface")
    data["listeners"][0]["port"] = "x"
    data["state_storage"]["type"] = "disk"
    errors = errors_of(data)
    assert len(errors) == 4
    assert all(e.startswith("cfg.yaml: ") for e in errors)


def test_secrets_stay_out_of_reprs_and_messages():
    data = base()
    data["model_providers"][3]["base_url"] = "http://user:hunter2@gpu box"
    data["state_storage"] = {"type": "postgres", "connection_string": "postgresql://u:pw9@h/db"}
    errors = errors_of(data)
    assert "hunter2" not in "\n".join(errors)
    c = parse_config(base())
    assert SECRET not in repr(c) and SECRET not in format_model_table(c)
    data = base()
    data["state_storage"] = {"type": "postgres", "connection_string": "postgresql://u:pw9@h/db"}
    assert "pw9" not in repr(parse_config(data))


def test_model_table_lists_entries_and_aliases():
    table = format_model_table(parse_config(base()))
    lines = table.splitlines()
    assert lines[0].split() == ["MODEL", "ENTRY", "UPSTREAM", "MODEL", "ENDPOINT", "INTERFACE"]
    assert any("openai/gpt-4o-mini (default)" in ln and
               "https://api.openai.com/v1/chat/completions" in ln for ln in lines)
    assert any(ln.startswith("smart-model (alias)") and "gpt-4o-mini" in ln for ln in lines)
    assert any("vllm/qwen2.5" in ln and "http://gpu-box:8000/v1/chat/completions" in ln
               for ln in lines)


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert "missing.yaml: file not found" in str(info.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_providers:\n  - model: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert str(info.value).startswith(f"{bad}: line ") and "invalid YAML" in str(info.value)
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- a\n- b\n")
    with pytest.raises(ConfigError) as info:
        load_config(notmap)
    assert "must be a YAML mapping" in str(info.value)


def test_example_config_loads_and_copies_match(monkeypatch):
    example = ROOT / "examples" / "plano_config.yaml"
    bundled = ROOT / "services" / "examples" / "plano_config.yaml"
    assert filecmp.cmp(example, bundled, shallow=False)
    c = load_config(example)
    assert {"fast-model", "smart-model", "reasoning-model"} <= set(c.aliases)
    assert c.state.type == "memory"
    assert {p.provider for p in c.providers} >= {"openai", "anthropic", "ollama", "vllm"}
    # No `services:` named: `switchyard up` gives the backends private sockets.
    assert not c.services.named


def test_example_config_starts_without_keys(monkeypatch):
    """`switchyard up` with the bundled example must start on a fresh machine."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config = load_config(ROOT / "examples" / "plano_config.yaml")
    assert config.provider("openai/gpt-4o-mini").access_key is None


def test_parse_does_not_mutate_input():
    data = base()
    snapshot = copy.deepcopy(data)
    parse_config(data)
    assert data == snapshot
