"""Strict where Plano is strict, and Plano's defaults: duplicate YAML keys, listeners,
versions, port clashes, provider prefixes and groups, overrides, `.env`, the scope table."""
from __future__ import annotations

import pathlib

import pytest

from switchyard.common.config import ConfigError, load_config, parse_config, plano_scope
from switchyard.common.config.envfile import parse_env_file
from switchyard.common.config.loader import VERSIONS
from switchyard.common.config.model import Listener
from switchyard.launcher import service_command


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for var in ("SWITCHYARD_ROUTER_ADDR", "SWITCHYARD_PROVIDERS_ADDR", "SWITCHYARD_STATE_ADDR",
                "STRICT_TEST_KEY"):
        monkeypatch.delenv(var, raising=False)


def base(**extra) -> dict:
    return {"version": "v0.4.0", "listeners": [{"type": "model", "name": "llm", "port": 12000}],
            "model_providers": [{"model": "openai/gpt-4o", "access_key": "sk-t",
                                 "default": True}], **extra}


def errors_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.yaml")
    return info.value.errors


def notices_of(data: dict) -> list[tuple[str, str]]:
    return [(n.kind, n.line) for n in parse_config(data, "cfg.yaml").notices]


# --- YAML --------------------------------------------------------------------------------

def test_a_key_given_twice_is_an_error_with_both_lines(tmp_path):
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text("version: v0.4.0\nmodel_providers:\n  - model: openai/gpt-4o\n"
                   "    access_key: a\n    access_key: b\nversion: v0.3.0\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert f"{cfg}: model_providers[0]: key 'access_key' is given twice (lines 4 and 5)" \
        in info.value.errors[0]
    assert any(e.startswith(f"{cfg}: top level: key 'version' is given twice (lines 1 and 6)")
               for e in info.value.errors)


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text("version: v0.4.0\nx-common: &k {access_key: sk-a, default: true}\n"
                   "model_providers:\n  - <<: *k\n    model: openai/gpt-4o\n"
                   "    access_key: sk-b\n")
    with pytest.raises(ConfigError) as info:   # only the extension-less anchor key is wrong
        load_config(cfg)
    assert [e for e in info.value.errors if "twice" in e] == []
    assert "unknown top-level key 'x-common'" in info.value.errors[0]


# --- .env --------------------------------------------------------------------------------

def test_env_file_lines():
    values, problems = parse_env_file("# c\n\nA=1\nexport B = 'two words'\nC=\"q\"\n"
                                      "D=x=y\nnot a pair sk-secret\n1X=2\n", "/d/.env")
    assert values == {"A": "1", "B": "two words", "C": "q", "D": "x=y"}
    assert problems == [f"/d/.env: line {n}: expected NAME=value (NAME: letters, digits, "
                        "underscores); fix or remove the line" for n in (7, 8)]
    assert "sk-secret" not in "".join(problems)


def test_env_file_beside_the_config_fills_keys_and_bad_lines_are_errors(tmp_path, monkeypatch):
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text("version: v0.4.0\nmodel_providers:\n  - model: openai/gpt-4o\n"
                   "    access_key: $STRICT_TEST_KEY\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "STRICT_TEST_KEY, which is not set" in str(info.value)
    (tmp_path / ".env").write_text("STRICT_TEST_KEY=sk-dotenv\n")
    config = load_config(cfg)
    assert config.providers[0].access_key == "sk-dotenv"
    assert config.env_file == str(tmp_path / ".env")
    monkeypatch.setenv("STRICT_TEST_KEY", "sk-env")
    assert load_config(cfg).providers[0].access_key == "sk-env"
    (tmp_path / ".env").write_text("garbage\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.errors == [f"{tmp_path / '.env'}: line 1: expected NAME=value (NAME: "
                                 "letters, digits, underscores); fix or remove the line"]


# --- version -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_every_plano_version_is_known(version):
    assert parse_config(base(version=version)).version == version


@pytest.mark.parametrize("version", ["v9.9", 0.2, "v0.5.0", None])
def test_an_unknown_version_is_an_error(version):
    (line,) = errors_of(base(version=version))
    assert line.startswith("cfg.yaml: version: ") and "v0.4.0" in line


def test_version_may_be_left_out():
    data = base()
    del data["version"]
    assert parse_config(data).version == "v0.3.0"


# --- listeners ---------------------------------------------------------------------------

def test_listener_timeout_defaults_to_planos_300_s():
    assert Listener().timeout_s == 300.0
    assert parse_config(base()).listener.timeout_s == 300.0


@pytest.mark.parametrize("item,words", [
    ({"name": "llm", "port": 1}, "type is missing; add type: model"),
    ({"type": "model", "router": "plano_orchestrator_v1"}, "router applies to listeners of "
                                                           "type agent only"),
    ({"type": "agent", "name": "a", "port": 8001, "agnets": []},
     "unknown listener key 'agnets'; did you mean 'agents'?"),
])
def test_listener_mistakes(item, words):
    data = base(listeners=[item])
    assert any(words in e for e in errors_of(data)), errors_of(data)


def test_two_model_listeners_are_an_error():
    data = base(listeners=[{"type": "model", "port": 1}, {"type": "model", "port": 2}])
    assert any("only one listener of type model" in e for e in errors_of(data))


def test_prompt_and_agent_listeners_are_named_and_kept_for_the_table():
    config = parse_config(base(listeners=[
        {"type": "agent", "name": "ag", "port": 8001},
        {"type": "prompt", "name": "pr", "address": "127.0.0.1", "port": 10000}]), "cfg.yaml")
    assert [(n.kind, n.line.split(": not supported")[0]) for n in config.notices] == [
        ("unsupported", "cfg.yaml: listeners[0] (ag)"),
        ("unsupported", "cfg.yaml: listeners[1] (pr)"),
        ("default", "cfg.yaml: listeners: no listener of type model; the model listener is the "
                    "default 127.0.0.1:12000 (add [{type: model, name: model_listener, address: "
                    "127.0.0.1, port: 12000}] to choose)")]
    assert "nothing listens on 127.0.0.1:10000" in config.notices[1].line
    assert [(lst.name, lst.type, lst.port) for lst in config.unserved_listeners] == [
        ("ag", "agent", 8001), ("pr", "prompt", 10000)]
    assert config.listener == Listener()


def test_older_map_form_is_checked_too():
    data = base(listeners={"egress_traffic": {"port": 12001, "message_format": "anthropic",
                                              "adress": "0.0.0.0"}})
    errors = errors_of(data)
    assert any("message_format must be openai" in e for e in errors)
    assert any("unknown key 'adress'; did you mean 'address'?" in e for e in errors)
    # An empty ingress_traffic serves nothing in Plano either: no line.
    data = base(listeners={"egress_traffic": {"port": 12001}, "ingress_traffic": {}})
    assert notices_of(data) == []


# --- port clashes ------------------------------------------------------------------------

@pytest.mark.parametrize("services,clash", [
    ({"router": "127.0.0.1:12000"}, "services.router"),
    ({"state": "dns:///localhost:12000"}, "services.state"),
    ({"router": "127.0.0.1:12001", "providers": "localhost:12001"}, "services.providers"),
    ({"router": "127.0.0.1:12001,127.0.0.1:12000"}, "services.router"),
    ({"router": "router.svc:12000"}, None),          # another host
    ({"router": "unix:/tmp/r.sock"}, None),
])
def test_port_clashes(services, clash):
    data = base(services=services)
    if clash is None:
        parse_config(data)
        return
    (line,) = errors_of(data)
    assert line.startswith(f"cfg.yaml: {clash}: ") and "give each its own port" in line


def test_a_clash_from_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_PROVIDERS_ADDR", "0.0.0.0:12000")
    (line,) = errors_of(base())
    assert line.startswith("cfg.yaml: environment variable SWITCHYARD_PROVIDERS_ADDR: ")


# --- providers ---------------------------------------------------------------------------

@pytest.mark.parametrize("entry,endpoint", [
    ({"model": "moonshotai/kimi-k2", "access_key": "k"},
     "https://api.moonshot.ai/v1/chat/completions"),
    ({"model": "zhipu/glm-4.6", "access_key": "k"},
     "https://open.bigmodel.cn/api/paas/v4/chat/completions"),
    ({"model": "digitalocean/llama3-8b-instruct", "access_key": "k"},
     "https://inference.do-ai.run/v1/chat/completions"),
    ({"model": "xiaomi/mimo-v2-flash", "access_key": "k"},
     "https://api.xiaomimimo.com/v1/chat/completions"),
    ({"model": "qwen/qwen3-max", "access_key": "k",
      "base_url": "https://dashscope-intl.aliyuncs.com"},
     "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions"),
    ({"model": "plano/Arch-Router", "base_url": "http://127.0.0.1:11434"},
     "http://127.0.0.1:11434/v1/chat/completions"),
    ({"model": "box/llama", "provider_interface": "moonshotai", "base_url": "http://h:1"},
     "http://h:1/v1/chat/completions"),
])
def test_planos_openai_compatible_prefixes(entry, endpoint):
    config = parse_config(base(model_providers=[entry]))
    (e,) = config.providers
    assert (e.interface, e.endpoint) == ("openai", endpoint)
    if e.provider == "plano":
        assert e.auth == "none"


@pytest.mark.parametrize("entry,words", [
    ({"model": "chatgpt/gpt-5"}, "use openai/<model> with access_key"),
    ({"model": "x/gpt-5", "provider_interface": "chatgpt", "base_url": "http://h:1"},
     "chatgpt/ is Plano's ChatGPT-subscription provider"),
    ({"model": "plano/Plano-Orchestrator"}, "serve the model yourself (Ollama or vLLM) and add "
                                            "base_url"),
    ({"model": "vercel/gpt-4o", "access_key": "k"}, "base_url is required"),
    ({"model": "openai/gpt-4o", "access_key": "k", "cluster_name": "x"},
     "unknown key 'cluster_name'"),
])
def test_refused_providers_say_what_to_do(entry, words):
    line = errors_of(base(model_providers=[entry]))[0]
    assert words in line, line


def test_http_host_is_the_host_header():
    e = parse_config(base(model_providers=[{"model": "openai/gpt-4o", "access_key": "k",
                                            "base_url": "https://10.0.0.5",
                                            "http_host": "api.example.com"}])).providers[0]
    assert e.headers == {"Host": "api.example.com"}
    assert e.endpoint == "https://10.0.0.5/v1/chat/completions"
    line = errors_of(base(model_providers=[{"model": "openai/gpt-4o", "access_key": "k",
                                            "http_host": "a.example", "headers": {
                                                "host": "b.example"}}]))[0]
    assert "keep one" in line


def test_groups_must_agree():
    one = {"model": "openai/gpt-4o", "access_key": "a", "default": True, "group": "g"}
    two = {"model": "openai/gpt-4o", "access_key": "b", "group": "g"}
    config = parse_config(base(model_providers=[one, two]))
    assert [p.name for p in config.providers] == ["openai/gpt-4o", "openai/gpt-4o#2"]
    (line,) = errors_of(base(model_providers=[one, {**two, "group": "h"}]))
    assert line.startswith("cfg.yaml: model_providers[1] (openai/gpt-4o): serves the same "
                           "model as model_providers[0]")
    assert any("group must be a name" in e for e in
               errors_of(base(model_providers=[{**one, "group": 3}])))


def test_a_bare_model_id_under_two_providers_is_a_duplicate_but_names_are_not():
    data = base(model_providers=[
        {"model": "openrouter/anthropic/claude-3", "access_key": "a", "default": True},
        {"model": "anthropic/claude-3", "access_key": "b"}])
    parse_config(data)   # `anthropic/claude-3` is the second's name, the first's model id


# --- overrides ---------------------------------------------------------------------------

def test_overrides_honoured_and_checked(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text((pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "plano_configs" /
                   "ca.pem").read_text())
    config = parse_config(base(overrides={"upstream_connect_timeout": "2500ms",
                                          "upstream_tls_ca_path": str(ca)}))
    assert (config.upstream.connect_timeout_s, config.upstream.tls_ca_path) == (2.5, str(ca))
    not_pem = tmp_path / "x.pem"
    not_pem.write_text("hello\n")
    errors = errors_of(base(overrides={"upstream_tls_ca_path": str(not_pem),
                                       "upstream_connect_timeout": "soon",
                                       "disable_signals": "yes",
                                       "orchestrator_model_context_length": True,
                                       "llm_routing_model": 7}))
    assert any("holds no PEM CA certificate" in e for e in errors)
    assert any("upstream_connect_timeout must be a positive duration" in e for e in errors)
    assert any("overrides.disable_signals: must be true or false" in e for e in errors)
    assert any("orchestrator_model_context_length: must be a whole number" in e for e in errors)
    assert any("llm_routing_model: must be a model name" in e for e in errors)
    (line,) = errors_of(base(overrides={"upstream_tls_ca_path": str(tmp_path / "none.pem")}))
    assert "is not a readable file" in line


def test_top_level_key_of_an_older_format_says_where_it_moved():
    (line,) = errors_of(base(llm_routing_model="Arch-Router"))
    assert "it belongs under overrides.llm_routing_model" in line


# --- the scope table ---------------------------------------------------------------------

def test_values_that_ask_for_what_switchyard_does_need_no_line():
    data = base(mode="llm", overrides={"optimize_context_window": False,
                                       "use_agent_orchestrator": False},
                prompt_caching={"enabled": False}, prompt_targets=[], endpoints={})
    assert notices_of(data) == []
    assert errors_of(base(mode="chat"))[0].startswith("cfg.yaml: mode: must be llm or prompt")


def test_deleting_a_pending_row_is_all_it_takes_to_stop_naming_a_key(monkeypatch):
    # A row as a feature has it until it lands (routing_budget had one).
    monkeypatch.setitem(plano_scope.GAPS, "routing.routing_budget", plano_scope.Gap(
        plano_scope.PENDING, "accepted, not yet applied: the switch budget",
        keys={"max_switch_spend_pct": None}))
    data = base(routing={"routing_budget": {"max_switch_spend_pct": 20}},
                model_metrics_sources=[{"type": "cost", "provider": "models.dev"}])
    assert notices_of(data) == [("pending", "cfg.yaml: routing.routing_budget: accepted, not "
                                            "yet applied: the switch budget")]
    monkeypatch.delitem(plano_scope.GAPS, "routing.routing_budget")
    assert notices_of(data) == []
    # ... and its keys are checked by the feature's own parser.
    data["routing"]["routing_budget"]["typo"] = 1
    assert any("typo" in e for e in errors_of(data))


def test_every_row_has_a_kind_and_says_what_happens():
    for row, gap in plano_scope.GAPS.items():
        assert gap.kind in (plano_scope.UNSUPPORTED, plano_scope.PENDING, plano_scope.IGNORED)
        prefix = {"unsupported": "not supported:", "pending": "accepted, not yet applied:",
                  "ignored": "ignored:"}[gap.kind]
        assert gap.says.startswith(prefix), row


# --- up / serve --------------------------------------------------------------------------

def test_up_and_serve_refuse_unsupported_features_unless_allowed(tmp_path, capsys):
    from switchyard.cli import main
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text("version: v0.4.0\nmodel_providers:\n  - {model: ollama/llama3.1}\n"
                   "prompt_guards:\n  input_guards: {jailbreak: {on_exception: {message: no}}}\n")
    assert main(["up", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}: prompt_guards: not supported" in err
    assert "pass --allow-unsupported" in err
    assert main(["serve", "router", "--config", str(cfg)]) == 2
    assert "switchyard router: not starting" in capsys.readouterr().err
    assert service_command("edge", str(cfg), True)[-1] == "--allow-unsupported"
    assert "--allow-unsupported" not in service_command("edge", str(cfg))
