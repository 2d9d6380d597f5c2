"""What the gateway knows of each provider prefix: its wire interface, default base URL,
the path prefix its API lives under, and how it takes a key. One table, used by config
validation, the router and the providers service."""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderKind:
    interface: str          # "openai" (OpenAI-compatible chat), "anthropic" or "gemini"
    base_url: str | None    # None: the config must give base_url
    path_prefix: str        # used when base_url carries no path
    auth: str               # "bearer", "api-key" (Azure), "x-api-key" (Anthropic),
                            # "x-goog-api-key" (Gemini), "none"
    needs_key: bool
    # Path prefix of the provider's OpenAI-compatible API, used instead of path_prefix when
    # `provider_interface: openai` overrides a native interface ("" when it has none).
    openai_path_prefix: str = ""


KNOWN_PROVIDERS: dict[str, ProviderKind] = {
    "openai": ProviderKind("openai", "https://api.openai.com", "/v1", "bearer", True),
    "azure_openai": ProviderKind("openai", None, "/openai", "api-key", True),
    "anthropic": ProviderKind("anthropic", "https://api.anthropic.com", "/v1", "x-api-key", True),
    "ollama": ProviderKind("openai", "http://localhost:11434", "/v1", "none", False),
    "groq": ProviderKind("openai", "https://api.groq.com", "/openai/v1", "bearer", True),
    "mistral": ProviderKind("openai", "https://api.mistral.ai", "/v1", "bearer", True),
    "deepseek": ProviderKind("openai", "https://api.deepseek.com", "/v1", "bearer", True),
    "together_ai": ProviderKind("openai", "https://api.together.xyz", "/v1", "bearer", True),
    "xai": ProviderKind("openai", "https://api.x.ai", "/v1", "bearer", True),
    "gemini": ProviderKind("gemini", "https://generativelanguage.googleapis.com",
                           "/v1beta", "x-goog-api-key", True, openai_path_prefix="/v1beta/openai"),
    "openrouter": ProviderKind("openai", "https://openrouter.ai", "/api/v1", "bearer", True),
    # Plano's other OpenAI-compatible prefixes (its config schema and CLI, release 0.4.36).
    "moonshotai": ProviderKind("openai", "https://api.moonshot.ai", "/v1", "bearer", True),
    "xiaomi": ProviderKind("openai", "https://api.xiaomimimo.com", "/v1", "bearer", True),
    "zhipu": ProviderKind("openai", "https://open.bigmodel.cn", "/api/paas/v4", "bearer", True),
    "digitalocean": ProviderKind("openai", "https://inference.do-ai.run", "/v1", "bearer", True),
    "qwen": ProviderKind("openai", None, "/compatible-mode/v1", "bearer", True),
    "vercel": ProviderKind("openai", None, "/v1", "bearer", True),
    "edenai": ProviderKind("openai", None, "/v1", "bearer", True),
    # Plano's routing models (Arch-Router, Plano-Orchestrator) served by Ollama or vLLM.
    "plano": ProviderKind("openai", None, "/v1", "none", False),
    # Bedrock's base URL depends on the region (config/bedrock.py makes it); the auth is
    # decided there too: SigV4, or a Bedrock API key as a bearer token.
    "amazon_bedrock": ProviderKind("bedrock", None, "", "sigv4", False),
}

# Prefixes Plano knows that Switchyard refuses, and the line that says what to do instead.
REFUSED_PROVIDERS: dict[str, str] = {
    "chatgpt": "chatgpt/ is Plano's ChatGPT-subscription provider (the Codex backend at "
               "chatgpt.com, signed in with `planoai chatgpt login`), which Switchyard does not "
               "reach; use openai/<model> with access_key: $OPENAI_API_KEY instead",
}
# Why a prefix needs base_url, where "base_url is required" alone would not say enough.
BASE_URL_REASONS: dict[str, str] = {
    "plano": "plano/ names Plano's routing models (Arch-Router, Plano-Orchestrator), which "
             "Plano calls at its hosted endpoint and Switchyard does not; serve the model "
             "yourself (Ollama or vLLM) and add base_url: http://host:port",
}

# provider_interface values a config may name, and the interface they mean (Plano's
# OpenAI-compatible ones included; `chatgpt` is in REFUSED_PROVIDERS).
INTERFACES: dict[str, str] = {"openai": "openai", "anthropic": "anthropic",
                              "azure_openai": "openai", "gemini": "gemini",
                              "bedrock": "bedrock", "openai_responses": "openai_responses"}
INTERFACES.update(dict.fromkeys(("plano", "deepseek", "groq", "mistral", "xiaomi",
                                 "digitalocean", "vercel", "openrouter", "edenai",
                                 "moonshotai"), "openai"))

# Operation path appended to the resolved prefix, per interface.
# Gemini names the model in the path; its codec swaps in :streamGenerateContent for streams.
OPERATION_PATH: dict[str, str] = {"openai": "/chat/completions", "anthropic": "/messages",
                                  "gemini": "/models/{model}:generateContent",
                                  "bedrock": "/model/{model}/converse",
                                  "openai_responses": "/responses"}
# The credential header of an interface, for entries that do not use a known provider's own.
INTERFACE_AUTH: dict[str, str] = {"anthropic": "x-api-key", "gemini": "x-goog-api-key"}

# Bare model names a wildcard entry (`provider/*`) answers for, by name prefix.
MODEL_FAMILIES: dict[str, tuple[str, ...]] = {
    "openai": ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-"),
    "anthropic": ("claude-",),
    "mistral": ("mistral-", "codestral-", "ministral-", "pixtral-", "magistral-"),
    "deepseek": ("deepseek-",),
    "xai": ("grok-",),
    "gemini": ("gemini-",),
}

AZURE_DEFAULT_API_VERSION = "2024-10-21"

# OpenAI models served only on the Responses API (the pro, codex and deep-research models,
# computer use): an `openai/` entry for one of them, or a name an `openai/*` entry answers,
# speaks `openai_responses` without the config saying so.
RESPONSES_ONLY = re.compile(r"^(o1-pro|o3-pro|codex-mini|computer-use-preview"
                            r"|o[34](-mini)?-deep-research|gpt-5(\.\d+)?(-codex|-pro)(\b|-))")


def responses_only(provider: str, model: str) -> bool:
    """Whether `provider/model` can only be reached through OpenAI's Responses API."""
    return provider == "openai" and RESPONSES_ONLY.match(model) is not None

# Providers that speak OpenAI's own dialect: they accept the `developer` role, `file` content
# parts and `max_completion_tokens` (which reasoning models require instead of max_tokens).
OPENAI_NATIVE = frozenset({"openai", "azure_openai"})
# Known providers that reject `top_k`; self-hosted servers (vLLM, llama.cpp, ...), Together
# and OpenRouter accept it, so it is sent to every other provider.
REJECTS_TOP_K = frozenset({"openai", "azure_openai", "groq", "mistral", "deepseek", "xai",
                           "gemini"})
