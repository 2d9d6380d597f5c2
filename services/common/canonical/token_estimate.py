"""A canonical request's input tokens, estimated without a tokenizer: what the edge reserves
against token limits and what count_tokens answers when the upstream cannot count."""
from __future__ import annotations

import math

from switchyard.common.proto import chat_pb2

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4        # role and framing tokens per message
IMAGE_TOKENS = 1600         # a typical image; exact counts need the pixels


def estimate_tokens(req: chat_pb2.ChatRequest) -> int:
    """About one token per four characters of the text the model reads."""
    chars, overhead = 0, 0
    for msg in req.messages:
        overhead += MESSAGE_OVERHEAD
        for part in msg.parts:
            c, o = _part_size(part)
            chars, overhead = chars + c, overhead + o
    for tool in req.tools:
        chars += len(tool.name) + len(tool.description) + len(tool.parameters_json)
    return math.ceil(chars / CHARS_PER_TOKEN) + overhead


def _part_size(part: chat_pb2.ContentPart) -> tuple[int, int]:
    kind = part.WhichOneof("kind")
    if kind == "text":
        return len(part.text.text), 0
    if kind == "tool_call":
        return len(part.tool_call.name) + len(part.tool_call.arguments_json), 0
    if kind == "tool_result":
        chars, overhead = 0, 0
        for inner in part.tool_result.content:
            c, o = _part_size(inner)
            chars, overhead = chars + c, overhead + o
        return chars, overhead
    if kind == "reasoning":
        return len(part.reasoning.text), 0
    if kind == "document":
        return len(part.document.text) or len(part.document.data_base64) * 3 // 4, 0
    if kind == "image":
        return 0, IMAGE_TOKENS
    return 0, 0
