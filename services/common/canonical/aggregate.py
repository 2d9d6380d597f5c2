"""Fold a canonical event stream into whole assistant turns (for non-streaming replies and
for what the state service stores)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from switchyard.common.proto import chat_pb2


@dataclass
class Choice:
    """One assistant turn: its content parts in block order, and how it ended."""
    index: int = 0
    parts: list[chat_pb2.ContentPart] = field(default_factory=list)
    stop_reason: int = chat_pb2.STOP_REASON_UNSPECIFIED
    stop_sequence: str = ""


@dataclass
class Turn:
    """Everything a non-streaming reply needs."""
    start: chat_pb2.StreamStart = field(default_factory=chat_pb2.StreamStart)
    choices: list[Choice] = field(default_factory=list)
    usage: chat_pb2.Usage = field(default_factory=chat_pb2.Usage)
    error: chat_pb2.Error | None = None

    def choice(self, index: int = 0) -> Choice:
        for c in self.choices:
            if c.index == index:
                return c
        c = Choice(index=index)
        self.choices.append(c)
        self.choices.sort(key=lambda x: x.index)
        return c


class TurnBuilder:
    """Accumulates events; `turn` is complete once `finish` (or `error`) was fed."""

    def __init__(self) -> None:
        self._turn = Turn()
        self._blocks: dict[int, tuple[Choice, chat_pb2.ContentPart]] = {}
        # Delta text per (block, field), joined into the part when `turn` is read: `+=` on a
        # protobuf string copies the whole text both ways on every token (quadratic).
        self._pieces: dict[tuple[int, str], list[str]] = {}

    @property
    def turn(self) -> Turn:
        """The turn so far, every delta fed folded into its part."""
        if self._pieces:
            for (index, which), pieces in self._pieces.items():
                part = self._blocks[index][1]
                holder = part.reasoning if which in ("reasoning", "signature") else (
                    part.tool_call if which == "arguments_json" else part.text)
                target = "text" if which == "reasoning" else which
                setattr(holder, target, getattr(holder, target) + "".join(pieces))
            self._pieces.clear()
        return self._turn

    def feed(self, ev: chat_pb2.StreamEvent) -> None:
        kind = ev.WhichOneof("event")
        if kind == "delta":
            self._delta(ev.delta)
        elif kind == "block_start":
            if self._pieces and ev.block_start.index in self._blocks:
                self.turn   # noqa: B018 - an index used again: fold its deltas in first
            choice = self._turn.choice(ev.block_start.choice)
            part = chat_pb2.ContentPart()
            part.CopyFrom(ev.block_start.part)
            choice.parts.append(part)
            self._blocks[ev.block_start.index] = (choice, part)
        elif kind == "start":
            self._turn.start.CopyFrom(ev.start)
            self._turn.usage.MergeFrom(ev.start.usage)
        elif kind == "finish":
            f = ev.finish
            choice = self._turn.choice(f.choice)
            choice.stop_reason = f.stop_reason
            choice.stop_sequence = f.stop_sequence
            if f.HasField("usage"):
                merge_usage(self._turn.usage, f.usage)
        elif kind == "error":
            self._turn.error = ev.error

    def feed_all(self, events: Iterable[chat_pb2.StreamEvent]) -> Turn:
        for ev in events:
            self.feed(ev)
        return self.turn

    def _delta(self, d: chat_pb2.BlockDelta) -> None:
        if d.index not in self._blocks:
            return
        which = d.WhichOneof("delta")
        if which is None:
            return
        pieces = self._pieces.get((d.index, which))
        if pieces is None:
            pieces = self._pieces[(d.index, which)] = []
        pieces.append(getattr(d, which))


def merge_usage(into: chat_pb2.Usage, final: chat_pb2.Usage) -> None:
    """Final usage is cumulative; a zero field keeps what `start` reported."""
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
                 "reasoning_tokens"):
        value = getattr(final, name)
        if value:
            setattr(into, name, value)


def aggregate(events: Iterable[chat_pb2.StreamEvent]) -> Turn:
    """Fold a whole event stream into a Turn."""
    return TurnBuilder().feed_all(events)


def turn_message(choice: Choice) -> chat_pb2.Message:
    """The assistant message of one choice, as history for the next turn."""
    return chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=choice.parts)
