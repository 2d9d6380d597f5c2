"""Client wire formats, one package each; `FORMATS` is the table the edge routes from."""
from __future__ import annotations

from switchyard.edge.formats import anthropic_messages, gemini, openai_chat, openai_responses
from switchyard.edge.formats.base import ClientFormat

FORMATS: dict[str, ClientFormat] = {
    f.name: f for f in (openai_chat.FORMAT, anthropic_messages.FORMAT, openai_responses.FORMAT,
                        gemini.FORMAT)}


def format_for_path(path: str) -> ClientFormat:
    """The format whose error bodies a path's clients expect (unknown paths, the guard)."""
    if path.startswith("/v1/messages"):
        return anthropic_messages.FORMAT
    if path.startswith("/v1/responses"):
        return openai_responses.FORMAT
    if is_gemini_path(path):
        return gemini.FORMAT
    return openai_chat.FORMAT


def is_gemini_path(path: str) -> bool:
    """Google's paths: everything under /v1beta, and `/v1/models/{model}:{method}` (the SDK's
    default version; plain `/v1/models` stays OpenAI's)."""
    return path.startswith("/v1beta/") or path == "/v1beta" or (
        path.startswith("/v1/models/") and ":" in path)
