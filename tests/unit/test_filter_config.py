"""Plano's `filters` and the model listener's filter keys: what they parse to, and every
error, each naming the file, the place and the fix."""
from __future__ import annotations

import pytest
import yaml

from switchyard.common.config import ConfigError, load_config, parse_config
from switchyard.common.config.model import FilterChains


def config(filters=None, **listener) -> dict:
    data: dict = {
        "version": "v0.3.0",
        "listeners": [{"type": "model", "name": "llm_gateway", "port": 12000, **listener}],
        "model_providers": [{"model": "openai/gpt-4o-mini", "access_key": "k",
                             "default": True}],
    }
    if filters is not None:
        data["filters"] = filters
    return data


def errors_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.yaml")
    return info.value.errors


GUARD = {"id": "guard", "url": "http://127.0.0.1:10500", "type": "http"}
PII = {"id": "pii", "url": "http://127.0.0.1:10501/anonymize", "type": "http"}
OUT = {"id": "out", "url": "http://127.0.0.1:10501/deanonymize", "type": "http"}


def test_no_filters_is_an_empty_falsy_chain():
    chains = parse_config(config()).filters
    assert chains == FilterChains() and not chains


def test_chains_in_order_filter_chain_before_input_filters():
    chains = parse_config(config([GUARD, PII, OUT], filter_chain=["guard"],
                                 input_filters=["pii"], output_filters=["out", "guard"])).filters
    assert [f.id for f in chains.input] == ["guard", "pii"]
    assert [f.id for f in chains.output] == ["out", "guard"]   # a filter may serve both
    guard = chains.input[0]
    assert (guard.url, guard.type, guard.timeout_s, guard.fail_open) == \
        ("http://127.0.0.1:10500", "http", 30.0, False)


def test_defaults_are_plano_s_mcp_and_extensions_are_read():
    chains = parse_config(config([{"id": "rewriter", "url": "http://h:1"},
                                  {"id": "t", "url": "https://h/f", "type": "mcp",
                                   "transport": "streamable-http", "tool": "check",
                                   "timeout": "250ms", "fail_open": True}],
                                 input_filters=["rewriter", "t"])).filters
    rewriter, t = chains.input
    assert rewriter.type == "mcp" and rewriter.tool == ""   # Plano's default type
    assert (t.tool, t.timeout_s, t.fail_open) == ("check", 0.25, True)


def test_filters_no_listener_names_are_accepted_unused():
    assert not parse_config(config([GUARD])).filters


def test_url_expands_variables_and_errors_show_it_as_written(monkeypatch):
    monkeypatch.setenv("FILTER_HOST", "guard.internal")
    monkeypatch.setenv("FILTER_TOKEN", "tok-secret-9")
    chains = parse_config(config([{**GUARD, "url": "http://$FILTER_HOST:10500"}],
                                 input_filters=["guard"])).filters
    assert chains.input[0].url == "http://guard.internal:10500"
    errors = errors_of(config([{**GUARD, "url": "ftp://x/${FILTER_TOKEN}"}]))
    assert errors == ["cfg.yaml: filters[0] (guard): url must be http://host[:port][/path] or "
                      "https://..., got 'ftp://x/${FILTER_TOKEN}'"]
    assert "tok-secret-9" not in "".join(errors)
    assert "tok-secret-9" not in repr(parse_config(config(
        [{**GUARD, "url": "http://h/${FILTER_TOKEN}"}], input_filters=["guard"])).filters)


def test_every_filter_entry_error_at_once():
    errors = errors_of(config([
        {"id": "a", "url": "http://h:1", "type": "htp", "fail_opn": True},
        {"id": "b", "url": "http://h:99999"},
        {"url": "http://h:1"},
        {"id": "c", "url": "http://h:1", "transport": "sse", "tool": 3},
        {"id": "d", "url": "http://h:1", "timeout": "soon", "fail_open": "yes"},
        {"id": "e"},
        "just-a-string",
        {**GUARD}, {**GUARD},
    ]))
    assert errors == [
        "cfg.yaml: filters[0]: unknown filter key 'fail_opn'; did you mean 'fail_open'?",
        "cfg.yaml: filters[0] (a): type must be http (a plain HTTP filter) or mcp (an MCP "
        "tool; the default), got 'htp'",
        "cfg.yaml: filters[1] (b): url must be http://host[:port][/path] or https://..., got "
        "'http://h:99999'",
        "cfg.yaml: filters[2]: needs an id (a name the listener refers to), e.g. {id: "
        "content_guard, url: http://127.0.0.1:10500, type: http}",
        "cfg.yaml: filters[3] (c): transport must be streamable-http (the only one Plano "
        "defines), got 'sse'",
        "cfg.yaml: filters[3] (c): tool must be the MCP tool's name, got 3",
        "cfg.yaml: filters[4] (d): timeout must be a positive duration like 30s, 500ms, 2m or "
        "a number of seconds, got 'soon'",
        "cfg.yaml: filters[4] (d): fail_open must be true or false, got 'yes'",
        "cfg.yaml: filters[5] (e): needs a url, e.g. url: http://127.0.0.1:10500",
        "cfg.yaml: filters[6]: must be a mapping like {id: content_guard, url: "
        "http://127.0.0.1:10500, type: http}",
        "cfg.yaml: filters[8]: id 'guard' is defined twice; give each filter its own id",
    ]


def test_filters_must_be_a_list():
    assert errors_of(config({"guard": GUARD})) == [
        "cfg.yaml: filters: must be a list of filters like [{id: content_guard, url: "
        "http://127.0.0.1:10500, type: http}]"]


def test_listener_references():
    errors = errors_of(config([GUARD, PII], filter_chain=["gaurd"], input_filters=["guard"],
                              output_filters="pii"))
    assert errors == [
        "cfg.yaml: listeners[0]: filter_chain names filter 'gaurd', which filters does not "
        "define; did you mean 'guard'?",
        "cfg.yaml: listeners[0]: output_filters must be a list of filter ids, e.g. "
        "output_filters: [content_guard]",
    ]
    assert errors_of(config(None, input_filters=["guard"])) == [
        "cfg.yaml: listeners[0]: input_filters names filter 'guard', which filters does not "
        "define; add it under the top-level filters: [{id: content_guard, url: "
        "http://127.0.0.1:10500, type: http}]"]
    assert errors_of(config([GUARD, PII], input_filters=["nope"])) == [
        "cfg.yaml: listeners[0]: input_filters names filter 'nope', which filters does not "
        "define; defined: guard, pii"]


def test_a_filter_named_twice_in_one_chain():
    assert errors_of(config([GUARD, PII], filter_chain=["guard"],
                            input_filters=["pii", "guard"], output_filters=["pii", "pii"])) == [
        "cfg.yaml: listeners[0]: input_filters names filter 'guard' twice (filter_chain and "
        "input_filters both name it); name it once",
        "cfg.yaml: listeners[0]: output_filters names filter 'pii' twice; name it once"]


def test_a_broken_entry_is_reported_once_not_again_where_it_is_named():
    assert errors_of(config([{"id": "guard", "url": "nope"}], input_filters=["guard"])) == [
        "cfg.yaml: filters[0] (guard): url must be http://host[:port][/path] or https://..., "
        "got 'nope'"]


def test_the_served_listener_is_the_first_model_listener():
    data = config([GUARD])
    data["listeners"] = [{"type": "agent", "name": "a", "port": 8001, "input_filters": ["x"]},
                         {"type": "model", "name": "m", "port": 12000,
                          "input_filters": ["guard"]}]
    chains = parse_config(data).filters
    assert [f.id for f in chains.input] == ["guard"]   # the agent listener's are not ours


# The two model-listener demos' configs, in Plano's format.
MODEL_LISTENER_DEMO = """
version: v0.3.0
filters:
  - {id: content_guard, url: "http://content-guard:10500", type: http}
  - {id: output_redactor, url: "http://output-filter:10502", type: http}
model_providers:
  - {model: openai/gpt-4o-mini, access_key: local-demo-key,
     base_url: "http://fake-provider:10501/v1", default: true}
listeners:
  - {type: model, name: llm_gateway, port: 12000, input_filters: [content_guard],
     output_filters: [output_redactor]}
tracing: {random_sampling: 100}
"""
PII_DEMO = """
version: v0.3.0
filters:
  - {id: pii_anonymizer, url: "http://localhost:10501/anonymize", type: http}
  - {id: pii_deanonymizer, url: "http://localhost:10501/deanonymize", type: http}
model_providers:
  - {model: openai/gpt-4o-mini, access_key: $OPENAI_API_KEY, default: true}
  - {model: anthropic/claude-sonnet-4-6, access_key: $ANTHROPIC_API_KEY}
listeners:
  - {type: model, name: llm_gateway, port: 12000, input_filters: [pii_anonymizer],
     output_filters: [pii_deanonymizer]}
tracing: {random_sampling: 100}
"""


@pytest.mark.parametrize("text", [MODEL_LISTENER_DEMO, PII_DEMO])
def test_plano_s_filter_demos_load_with_their_chains(text, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    path = tmp_path / "config.yaml"
    path.write_text(text)
    chains = load_config(path).filters
    listener = yaml.safe_load(text)["listeners"][0]
    assert [f.id for f in chains.input] == listener["input_filters"]
    assert [f.id for f in chains.output] == listener["output_filters"]
    assert all(f.type == "http" for f in (*chains.input, *chains.output))
