"""Client wire formats, one package each; `FORMATS` is the table the edge routes from."""
from __future__ import annotations

from switchyard.edge.formats import anthropic_messages, openai_chat, openai_responses
from switchyard.edge.formats.base import ClientFormat

FORMATS: dict[str, ClientFormat] = {
    f.name: f for f in (openai_chat.FORMAT, anthropic_messages.FORMAT, openai_responses.FORMAT)}


def format_for_path(path: str) -> ClientFormat:
    """The format whose error bodies a path's clients expect (unknown paths, the guard)."""
    if path.startswith("/v1/messages"):
        return anthropic_messages.FORMAT
    if path.startswith("/v1/responses"):
        return openai_responses.FORMAT
    return openai_chat.FORMAT
