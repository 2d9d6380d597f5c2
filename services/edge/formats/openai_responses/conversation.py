"""A Responses turn that continues a Conversations API conversation: the state service keeps
the conversation's items as Responses items (JSON); this reads them back as history and
names what a finished turn appends (its input items, then the reply's output items)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from switchyard.common.errors import echo, invalid_request
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.openai_responses.request import items_to_history


@dataclass(frozen=True, slots=True)
class ItemsConversation:
    """`ConversationLink` of the Responses format."""
    id: str
    input_items: list[dict[str, Any]]   # this turn's normalised input items

    def history(self, items: Sequence[bytes], dropped: list[str]) -> list[chat_pb2.Message]:
        stored = [orjson.loads(i) for i in items]
        # An input item the conversation already holds could not be appended after the
        # turn: refuse it now, before the upstream is asked.
        known = {item["id"] for item in stored}
        for n, item in enumerate(self.input_items):
            if item["id"] in known:
                raise invalid_request(f"Item with id '{echo(item['id'])}' is already in "
                                      f"conversation '{echo(self.id)}'.", f"input[{n}].id")
        return items_to_history(stored, dropped)

    def turn_items(self, body: dict[str, Any]) -> list[tuple[str, bytes]]:
        # Output items come from the gateway's own encoder: already in the stored shape.
        output = body.get("output") or []
        return [(item["id"], orjson.dumps(item)) for item in (*self.input_items, *output)]
