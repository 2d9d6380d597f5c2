"""Route resolution: exact names, provider/model, wildcards, families, aliases, defaults."""
from __future__ import annotations

import dataclasses

import pytest

from switchyard.common.config import parse_config
from switchyard.common.config.model import Alias, WeightedTarget
from switchyard.common.proto import chat_pb2
from switchyard.router.resolution import (
    AliasCycleError,
    build_route_table,
    model_list,
    resolve,
    suggestions,
)


def make(aliases: dict | None = None, extra: list | None = None, mini_group: str | None = None):
    """`mini_group`: the gpt-4o-mini entry's `group`, so `extra` may hold more of that model."""
    mini = {"group": mini_group} if mini_group else {}
    data = {
        "listeners": [{"type": "model", "port": 12000, "timeout": "45s", "max_retries": 3}],
        "model_providers": [
            {"model": "openai/gpt-4o-mini", "access_key": "k1", "default": True, **mini},
            {"model": "openai/gpt-4o", "access_key": "k1"},
            {"model": "anthropic/*", "access_key": "k2"},
            {"model": "ollama/llama3.1"},
            {"model": "vllm/qwen2.5", "base_url": "http://gpu:8000",
             "provider_interface": "openai"},
            *(extra or []),
        ],
        "model_aliases": aliases or {},
    }
    return parse_config(data, "cfg.yaml")


def targets(plan):
    return [(t.provider, t.model, t.weight) for t in plan.targets]


def test_exact_bare_and_provider_model():
    c = make()
    for name in ("gpt-4o", "openai/gpt-4o"):
        plan = resolve(c, name)
        assert plan.name == name
        assert targets(plan) == [("openai/gpt-4o", "gpt-4o", 1)]
        assert plan.weighted_count == 1
        assert plan.targets[0].wire == chat_pb2.WIRE_FORMAT_OPENAI_CHAT
        assert (plan.max_retries, plan.timeout_s) == (3, 45.0)
    assert targets(resolve(c, "qwen2.5")) == [("vllm/qwen2.5", "qwen2.5", 1)]


def test_wildcard_provider_model_and_family():
    c = make()
    plan = resolve(c, "anthropic/claude-3-5-haiku-latest")
    assert targets(plan) == [("anthropic/*", "claude-3-5-haiku-latest", 1)]
    assert plan.targets[0].wire == chat_pb2.WIRE_FORMAT_ANTHROPIC
    assert targets(resolve(c, "claude-sonnet-4-0")) == [("anthropic/*", "claude-sonnet-4-0", 1)]


def test_names_nothing_serves():
    c = make()
    assert resolve(c, "gpt-5") is None             # openai has no wildcard entry here
    assert resolve(c, "mistral-large") is None     # family of an unconfigured provider
    assert resolve(c, "openai/") is None
    assert resolve(c, "ollama/mistral") is None    # provider without wildcard


def test_exact_entry_beats_wildcard():
    c = make(extra=[{"model": "anthropic/claude-3-opus", "access_key": "k3", "name": "opus"}])
    assert targets(resolve(c, "claude-3-opus")) == [("opus", "claude-3-opus", 1)]
    assert targets(resolve(c, "anthropic/claude-3-opus")) == [("opus", "claude-3-opus", 1)]
    assert targets(resolve(c, "opus")) == [("opus", "claude-3-opus", 1)]


def test_same_model_on_several_entries_is_load_balanced():
    c = make(extra=[{"model": "openai/gpt-4o-mini", "access_key": "k9", "group": "mini"},
                    {"model": "azure_openai/gpt-4o-mini", "access_key": "k8",
                     "base_url": "https://r.openai.azure.com", "group": "mini"}],
             mini_group="mini")
    plan = resolve(c, "gpt-4o-mini")
    assert targets(plan) == [("openai/gpt-4o-mini", "gpt-4o-mini", 1),
                             ("openai/gpt-4o-mini#2", "gpt-4o-mini", 1),
                             ("azure_openai/gpt-4o-mini", "gpt-4o-mini", 1)]
    assert plan.weighted_count == 3
    assert resolve(c, "openai/gpt-4o-mini").weighted_count == 2
    assert targets(resolve(c, "openai/gpt-4o-mini#2")) == [
        ("openai/gpt-4o-mini#2", "gpt-4o-mini", 1)]


def test_default_entry_answers_empty_name():
    c = make()
    assert targets(resolve(c, "")) == [("openai/gpt-4o-mini", "gpt-4o-mini", 1)]
    no_default = dataclasses.replace(
        c, providers=tuple(dataclasses.replace(p, default=False) for p in c.providers))
    assert resolve(no_default, "") is None


def test_alias_target_and_fallbacks_in_order():
    c = make({"smart": {"target": "claude-3-5-sonnet-20241022",
                        "fallbacks": ["gpt-4o", "qwen2.5", "gpt-4o"]}})
    plan = resolve(c, "smart")
    assert plan.name == "smart" and plan.weighted_count == 1
    assert targets(plan) == [("anthropic/*", "claude-3-5-sonnet-20241022", 1),
                             ("openai/gpt-4o", "gpt-4o", 0), ("vllm/qwen2.5", "qwen2.5", 0)]


def test_alias_chain_is_flattened():
    c = make({"a": {"target": "b", "fallbacks": ["llama3.1"]},
              "b": {"target": "c", "fallbacks": ["gpt-4o"]},
              "c": {"target": "gpt-4o-mini"}})
    assert targets(resolve(c, "a")) == [("openai/gpt-4o-mini", "gpt-4o-mini", 1),
                                        ("openai/gpt-4o", "gpt-4o", 0),
                                        ("ollama/llama3.1", "llama3.1", 0)]


def test_weighted_targets_then_fallbacks():
    c = make({"mix": {"targets": [{"model": "gpt-4o", "weight": 3},
                                  {"model": "claude-3-7-sonnet-20250219", "weight": 1}],
                      "fallbacks": ["qwen2.5"]}})
    plan = resolve(c, "mix")
    assert plan.weighted_count == 2
    assert targets(plan) == [("openai/gpt-4o", "gpt-4o", 3),
                             ("anthropic/*", "claude-3-7-sonnet-20250219", 1),
                             ("vllm/qwen2.5", "qwen2.5", 0)]


def test_weighted_target_that_is_itself_a_group_splits_its_weight():
    c = make({"mix": {"targets": [{"model": "gpt-4o-mini", "weight": 1},
                                  {"model": "gpt-4o", "weight": 1}]}},
             extra=[{"model": "openai/gpt-4o-mini", "access_key": "k9", "group": "mini"}],
             mini_group="mini")
    # gpt-4o-mini is two entries (half each), gpt-4o one: shares 1:1:2
    assert targets(resolve(c, "mix")) == [("openai/gpt-4o-mini", "gpt-4o-mini", 1),
                                          ("openai/gpt-4o-mini#2", "gpt-4o-mini", 1),
                                          ("openai/gpt-4o", "gpt-4o", 2)]


def test_alias_beats_model_of_the_same_name():
    c = make({"gpt-4o": {"target": "claude-3-opus-latest"}})
    assert targets(resolve(c, "gpt-4o")) == [("anthropic/*", "claude-3-opus-latest", 1)]
    assert targets(resolve(c, "openai/gpt-4o")) == [("openai/gpt-4o", "gpt-4o", 1)]


def test_cycle_is_detected_even_without_the_loader():
    c = make()
    c.aliases["x"] = Alias("x", target="y")
    c.aliases["y"] = Alias("y", targets=(WeightedTarget("x", 1),))
    with pytest.raises(AliasCycleError):
        resolve(c, "x")


def test_route_table_holds_exact_names_only():
    c = make({"fast": {"target": "gpt-4o-mini"}})
    table = build_route_table(c, version=7)
    assert table.version == 7
    assert set(table.routes) == {
        "fast", "", "openai/gpt-4o-mini", "gpt-4o-mini", "openai/gpt-4o", "gpt-4o",
        "ollama/llama3.1", "llama3.1", "vllm/qwen2.5", "qwen2.5"}
    for name, plan in table.routes.items():
        assert plan == resolve(c, name)
    assert "anthropic/*" in table.known_names and "fast" in table.known_names
    assert [m.id for m in table.models.models] == \
        ["gpt-4o-mini", "gpt-4o", "llama3.1", "qwen2.5", "fast"]


def test_model_list_owners():
    models = {m.id: (m.owned_by, m.alias) for m in
              model_list(make({"fast": {"target": "gpt-4o-mini"}})).models}
    assert models["gpt-4o"] == ("openai", False)
    assert models["qwen2.5"] == ("vllm", False)
    assert models["fast"] == ("switchyard", True)
    assert not any("*" in m for m in models)


def test_suggestions_put_close_names_first():
    c = make({"fast-model": {"target": "gpt-4o-mini"}})
    assert suggestions(c, "gpt-4o-mni")[0] == "gpt-4o-mini"
    assert suggestions(c, "fast-modle")[0] == "fast-model"
    assert len(suggestions(c, "zzz", n=3)) == 3
    assert len(set(suggestions(c, "zzz", n=50))) == len(suggestions(c, "zzz", n=50))
