"""`amazon_bedrock/` entries and Responses-only OpenAI models in the config."""
from __future__ import annotations

import pytest

from switchyard.common.config import ConfigError, parse_config

ENV = {"AWS_BEARER_TOKEN_BEDROCK": "ABSK-config-test-key", "AWS_REGION": "eu-central-1",
       "SECRET": "config/secret/0001", "OPENAI_API_KEY": "sk-config-0001"}


def config(*entries: dict, environ: dict | None = None):
    data = {"version": "v0.3.0",
            "listeners": [{"type": "model", "name": "model_listener", "port": 12000}],
            "model_providers": list(entries)}
    return parse_config(data, "cfg.yaml", environ=ENV if environ is None else environ)


def errors(*entries: dict, environ: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config(*entries, environ=environ)
    return info.value.errors


def test_plano_form_a_bedrock_api_key_and_the_regional_url():
    (e,) = config({"model": "amazon_bedrock/us.amazon.nova-pro-v1:0",
                   "access_key": "$AWS_BEARER_TOKEN_BEDROCK",
                   "base_url": "https://bedrock-runtime.us-west-2.amazonaws.com"}).providers
    assert (e.interface, e.auth, e.access_key, e.aws.region) == (
        "bedrock", "bearer", "ABSK-config-test-key", "us-west-2")
    assert e.endpoint == "https://bedrock-runtime.us-west-2.amazonaws.com/model/{model}/converse"


def test_sigv4_with_static_keys_and_the_region_from_the_environment():
    (e,) = config({"model": "amazon_bedrock/anthropic.claude-3-haiku", "access_key": "AKIACONFIG",
                   "secret_key": "$SECRET", "session_token": "tok"}).providers
    assert (e.auth, e.access_key, e.aws.secret_key, e.aws.session_token, e.aws.region) == (
        "sigv4", "AKIACONFIG", "config/secret/0001", "tok", "eu-central-1")
    assert e.endpoint.startswith("https://bedrock-runtime.eu-central-1.amazonaws.com/model/")
    assert "config/secret/0001" not in repr(e)


def test_no_keys_means_the_standard_chain_unless_a_bearer_token_is_set():
    entry = {"model": "amazon_bedrock/*", "region": "ap-southeast-2"}
    (chain,) = config(entry, environ={}).providers
    assert (chain.auth, chain.access_key, chain.aws.profile) == ("sigv4", None, None)
    (bearer,) = config(entry).providers
    assert (bearer.auth, bearer.access_key) == ("bearer", "ABSK-config-test-key")
    (profile,) = config({**entry, "aws_profile": "team"}).providers
    assert (profile.auth, profile.aws.profile) == ("sigv4", "team")
    (china,) = config({"model": "amazon_bedrock/m", "region": "cn-north-1"}, environ={}).providers
    assert china.endpoint.startswith("https://bedrock-runtime.cn-north-1.amazonaws.com.cn/")


@pytest.mark.parametrize(("entry", "environ", "message"), [
    ({"model": "amazon_bedrock/m"}, {}, "region is missing; add region: us-east-1"),
    ({"model": "amazon_bedrock/m", "region": "mars"}, {}, "'mars' is not an AWS region name"),
    ({"model": "amazon_bedrock/m", "region": "us-east-1",
      "base_url": "https://bedrock-runtime.us-west-2.amazonaws.com"}, {},
     "region us-east-1 does not match the base_url's region us-west-2"),
    ({"model": "amazon_bedrock/m", "access_key": "$AWS_BEARER_TOKEN_BEDROCK",
      "region": "us-east-1"}, {}, "access_key uses $AWS_BEARER_TOKEN_BEDROCK, which is not set"),
    ({"model": "amazon_bedrock/m", "secret_key": "s", "region": "us-east-1"}, {},
     "secret_key needs access_key"),
    ({"model": "amazon_bedrock/m", "session_token": "t", "region": "us-east-1"}, {},
     "session_token needs secret_key"),
    ({"model": "amazon_bedrock/m", "aws_profile": "p", "access_key": "AKIA",
      "region": "us-east-1"}, {}, "aws_profile takes its credentials from the profile"),
    ({"model": "openai/gpt-4o", "access_key": "k", "region": "us-east-1"}, {},
     "region applies only to amazon_bedrock/ entries")])
def test_mistakes_are_named(entry, environ, message):
    found = errors(entry, environ=environ)
    assert any(message in line for line in found), found


def test_responses_only_models_speak_the_responses_api():
    providers = config({"model": "openai/gpt-5-codex", "access_key": "$OPENAI_API_KEY"},
                       {"model": "openai/gpt-4o", "access_key": "$OPENAI_API_KEY"},
                       {"model": "vllm/gpt-5-pro", "base_url": "http://gpu:8000",
                        "provider_interface": "openai_responses"}).providers
    codex, chat, vllm = providers
    assert (codex.interface, codex.endpoint) == ("openai_responses",
                                                 "https://api.openai.com/v1/responses")
    assert chat.interface == "openai"
    assert (vllm.interface, vllm.endpoint) == ("openai_responses", "http://gpu:8000/v1/responses")


def test_azure_entries_cannot_use_the_responses_interface():
    found = errors({"model": "azure_openai/gpt-5", "access_key": "k",
                    "base_url": "https://x.openai.azure.com",
                    "provider_interface": "openai_responses"})
    assert any("not supported for Azure OpenAI" in line for line in found), found
