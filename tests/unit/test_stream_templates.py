"""Per-token frames from templates (formats/sse.py Template) are byte for byte the frames the
encoders build whole: every client format, text/reasoning/tool deltas, values that need
escaping, and a placeholder arriving inside an upstream value (then no template is used)."""
from __future__ import annotations

import orjson
import pytest

from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import sse
from switchyard.edge.formats.anthropic_messages import codec as anthropic
from switchyard.edge.formats.base import Reply
from switchyard.edge.formats.gemini import codec as gemini
from switchyard.edge.formats.openai_chat import codec as chat
from switchyard.edge.formats.openai_responses import codec as responses
from tests.unit.fixtures.client.codec_helpers import events

TRICKY = ["plain", ' "quoted" ', "back\\slash", "new\nline\ttab", "é ü 中文 🚀", "\u2028\u2029",
          "\x00\x01 control", sse.SLOTS[0], sse.SLOTS[1], "x" * 5000, "</script>"]

BODIES = {
    "chat": (chat.FORMAT, {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                           "stream": True, "stream_options": {"include_usage": True}}),
    "messages": (anthropic.FORMAT, {"model": "m", "max_tokens": 64, "stream": True,
                                    "messages": [{"role": "user", "content": "hi"}]}),
    "responses": (responses.FORMAT, {"model": "m", "input": "hi", "stream": True}),
    "gemini": (gemini.FORMAT, {"model": "m", "stream": True, "sse": True,
                               "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
}

IDS = {name: fmt.new_id() for name, (fmt, _) in BODIES.items()}


def encoder(name: str):
    fmt, body = BODIES[name]
    decoded = fmt.decode(dict(body))
    reply = Reply(model="gpt-4o-mini", response_id=IDS[name], created=1700000000,
                  decoded=decoded)
    reply.upstream_model = "gpt-4o-mini-2024"
    return fmt.stream_encoder(reply)


def stream(fixture: str, fingerprint: str = "fp_1") -> list[chat_pb2.StreamEvent]:
    """A fixture's events with every delta repeated once per tricky value."""
    out = []
    for ev in events(fixture):
        if ev.HasField("start"):
            ev.start.extra_json = orjson.dumps({"system_fingerprint": fingerprint})
        if ev.HasField("delta"):
            which = ev.delta.WhichOneof("delta")
            for value in TRICKY:
                d = chat_pb2.StreamEvent()
                d.CopyFrom(ev)
                setattr(d.delta, which, value)
                out.append(d)
            continue
        out.append(ev)
    return out


def encode(name: str, evs: list[chat_pb2.StreamEvent]) -> bytes:
    enc = encoder(name)
    # uneven batches, as the providers service delivers them
    return enc.encode(evs[:1]) + enc.encode(evs[1:5]) + b"".join(
        enc.encode([e]) for e in evs[5:]) + enc.done()


@pytest.mark.parametrize("name", list(BODIES))
@pytest.mark.parametrize("fixture", ["events_text.json", "events_parallel_tools.json",
                                     "events_thinking.json"])
@pytest.mark.parametrize("fingerprint", ["fp_1", sse.SLOTS[0]])
def test_templated_frames_equal_whole_frames(name, fixture, fingerprint, monkeypatch):
    evs = stream(fixture, fingerprint)
    templated = encode(name, evs)
    monkeypatch.setattr(sse, "template", lambda build, slots=1: None)   # whole frames only
    whole = encode(name, evs)
    assert templated == whole
    for value in TRICKY[:5]:   # the values really went through, escaped as JSON
        assert orjson.dumps(value)[1:-1] in templated or name == "gemini"


def test_template_refuses_a_frame_where_a_placeholder_is_not_the_slot():
    frame = sse.data_frame({"model": sse.SLOT, "delta": sse.SLOT})
    with pytest.raises(ValueError):
        sse.Template(frame)
    assert sse.template(lambda: frame) is None
    tpl = sse.Template(sse.data_frame({"a": 1, "delta": sse.SLOT, "b": [None]}))
    assert tpl.fill(orjson.dumps('x"y')) == sse.data_frame({"a": 1, "delta": 'x"y', "b": [None]})


def text_frames(name: str) -> list[bytes]:
    """The frames the encoder writes for two text deltas after the block opened."""
    enc = encoder(name)
    evs = events("events_text.json")
    evs[0].start.extra_json = orjson.dumps({"system_fingerprint": "fp_1"})
    opened = [i for i, e in enumerate(evs) if e.HasField("block_start")][0]
    enc.encode(evs[:opened + 1])
    first = chat_pb2.StreamEvent()
    first.delta.index, first.delta.text = evs[opened].block_start.index, 'a "b"'
    return [enc.encode([first]), enc.encode([first])]


def test_token_frames_are_the_apis_shape_in_its_key_order():
    """What each format's per-token frame is, written out: a template that drifted from
    the API's shape (a field, its value, the key order) fails here."""
    rid, v = IDS["chat"], 'a "b"'
    want = {"id": rid, "object": "chat.completion.chunk", "created": 1700000000,
            "model": "gpt-4o-mini-2024", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": {"content": v}, "logprobs": None,
                         "finish_reason": None}], "usage": None}
    assert text_frames("chat") == [sse.data_frame(want)] * 2
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": v}}
    # (Anthropic's text block opens with its first character: the first frame has the start)
    assert text_frames("messages")[1] == sse.event_frame("content_block_delta", delta)
    got = text_frames("responses")
    seq = orjson.loads(got[0].split(b"data: ", 1)[1])["sequence_number"]
    item = orjson.loads(got[0].split(b"data: ", 1)[1])["item_id"]
    kind = "response.output_text.delta"
    assert got == [sse.event_frame(kind, {
        "type": kind, "sequence_number": n, "item_id": item, "output_index": 0,
        "content_index": 0, "delta": v, "logprobs": []}) for n in (seq, seq + 1)]
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": v}]}, "index": 0}],
             "modelVersion": "gpt-4o-mini-2024", "responseId": IDS["gemini"]}
    assert text_frames("gemini") == [sse.data_frame(chunk)] * 2
