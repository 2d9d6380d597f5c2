"""What the gateway knows of each provider prefix: its wire interface, default base URL,
the path prefix its API lives under, and how it takes a key. One table, used by config
validation, the router and the providers service."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderKind:
    interface: str          # "openai" (OpenAI-compatible chat) or "anthropic"
    base_url: str | None    # None: the config must give base_url
    path_prefix: str        # used when base_url carries no path
    auth: str               # "bearer", "api-key" (Azure), "x-api-key" (Anthropic), "none"
    needs_key: bool


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
    "gemini": ProviderKind("openai", "https://generativelanguage.googleapis.com",
                           "/v1beta/openai", "bearer", True),
    "openrouter": ProviderKind("openai", "https://openrouter.ai", "/api/v1", "bearer", True),
}

# provider_interface values a config may name, and the interface they mean.
INTERFACES: dict[str, str] = {"openai": "openai", "anthropic": "anthropic",
                              "azure_openai": "openai"}

# Operation path appended to the resolved prefix, per interface.
OPERATION_PATH: dict[str, str] = {"openai": "/chat/completions", "anthropic": "/messages"}

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

# Providers that speak OpenAI's own dialect: they accept the `developer` role, `file` content
# parts and `max_completion_tokens` (which reasoning models require instead of max_tokens).
OPENAI_NATIVE = frozenset({"openai", "azure_openai"})
# Known providers that reject `top_k`; self-hosted servers (vLLM, llama.cpp, ...), Together
# and OpenRouter accept it, so it is sent to every other provider.
REJECTS_TOP_K = frozenset({"openai", "azure_openai", "groq", "mistral", "deepseek", "xai",
                           "gemini"})
