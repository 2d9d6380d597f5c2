"""What the gateway knows of each provider prefix: its wire interface, default base URL,
the path prefix its API lives under, and how it takes a key. One table, used by config
validation, the router and the providers service."""
from __future__ import annotations

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
}

# provider_interface values a config may name, and the interface they mean.
INTERFACES: dict[str, str] = {"openai": "openai", "anthropic": "anthropic",
                              "azure_openai": "openai", "gemini": "gemini"}

# Operation path appended to the resolved prefix, per interface.
# Gemini names the model in the path; its codec swaps in :streamGenerateContent for streams.
OPERATION_PATH: dict[str, str] = {"openai": "/chat/completions", "anthropic": "/messages",
                                  "gemini": "/models/{model}:generateContent"}
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

# Providers that speak OpenAI's own dialect: they accept the `developer` role, `file` content
# parts and `max_completion_tokens` (which reasoning models require instead of max_tokens).
OPENAI_NATIVE = frozenset({"openai", "azure_openai"})
# Known providers that reject `top_k`; self-hosted servers (vLLM, llama.cpp, ...), Together
# and OpenRouter accept it, so it is sent to every other provider.
REJECTS_TOP_K = frozenset({"openai", "azure_openai", "groq", "mistral", "deepseek", "xai",
                           "gemini"})
