"""Constructors for canonical stream events, so decoders read as the grammar they emit."""
from __future__ import annotations

from switchyard.common.proto import chat_pb2

Ev = chat_pb2.StreamEvent


def start(id: str, model: str, usage: chat_pb2.Usage | None = None,
          extra_json: bytes = b"") -> Ev:
    s = chat_pb2.StreamStart(id=id, model=model, extra_json=extra_json)
    if usage is not None:
        s.usage.CopyFrom(usage)
    return Ev(start=s)


def block_start(index: int, part: chat_pb2.ContentPart, choice: int = 0) -> Ev:
    return Ev(block_start=chat_pb2.BlockStart(index=index, part=part, choice=choice))


def text_part(extra_json: bytes = b"") -> chat_pb2.ContentPart:
    return chat_pb2.ContentPart(text=chat_pb2.TextPart(), extra_json=extra_json)


def reasoning_part(redacted_data: str | None = None,
                   extra_json: bytes = b"") -> chat_pb2.ContentPart:
    if redacted_data is not None:
        r = chat_pb2.ReasoningPart(redacted=True, redacted_data=redacted_data)
    else:
        r = chat_pb2.ReasoningPart()
    return chat_pb2.ContentPart(reasoning=r, extra_json=extra_json)


def tool_part(id: str, name: str, extra_json: bytes = b"") -> chat_pb2.ContentPart:
    return chat_pb2.ContentPart(tool_call=chat_pb2.ToolCallPart(id=id, name=name),
                                extra_json=extra_json)


# The per-token events are filled in place: `Ev(delta=BlockDelta(...))` builds the inner
# message and then copies it into the outer one, at twice the cost on every chunk.
def text(index: int, value: str) -> Ev:
    ev = Ev()
    d = ev.delta
    d.index = index
    d.text = value
    return ev


def arguments(index: int, value: str) -> Ev:
    ev = Ev()
    d = ev.delta
    d.index = index
    d.arguments_json = value
    return ev


def reasoning(index: int, value: str) -> Ev:
    ev = Ev()
    d = ev.delta
    d.index = index
    d.reasoning = value
    return ev


def signature(index: int, value: str) -> Ev:
    ev = Ev()
    d = ev.delta
    d.index = index
    d.signature = value
    return ev


def block_stop(index: int) -> Ev:
    ev = Ev()
    ev.block_stop.index = index
    return ev


def finish(stop_reason: chat_pb2.StopReason, usage: chat_pb2.Usage | None = None,
           stop_sequence: str = "", choice: int = 0) -> Ev:
    f = chat_pb2.StreamFinish(stop_reason=stop_reason, stop_sequence=stop_sequence, choice=choice)
    if usage is not None:
        f.usage.CopyFrom(usage)
    return Ev(finish=f)


def error(err: chat_pb2.Error) -> Ev:
    return Ev(error=err)
