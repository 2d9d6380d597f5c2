"""SSE framing: line endings, comments, multi-line data, arbitrary chunk boundaries."""
from __future__ import annotations

from switchyard.common.sse_parser import SSEParser


def parse_all(raw: bytes, step: int | None = None) -> list[tuple[str, bytes]]:
    p = SSEParser()
    out: list[tuple[str, bytes]] = []
    if step is None:
        out += p.feed(raw)
    else:
        for i in range(0, len(raw), step):
            out += p.feed(raw[i:i + step])
    return out + p.close()


RAW = (b": keep-alive comment\r\n"
       b"event: message_start\r\n"
       b"data: {\"a\":1}\r\n"
       b"\r\n"
       b"data: line one\n"
       b"data:line two\n"
       b"id: 7\n"
       b"retry: 100\n"
       b"\n"
       b"event: ping\r"
       b"data: {}\r"
       b"\r"
       b"data: [DONE]\n\n")
EXPECTED = [("message_start", b'{"a":1}'), ("message", b"line one\nline two"),
            ("ping", b"{}"), ("message", b"[DONE]")]


def test_whole_buffer():
    assert parse_all(RAW) == EXPECTED


def test_every_chunk_boundary_gives_the_same_events():
    for step in (1, 2, 3, 5, 7, 13):
        assert parse_all(RAW, step) == EXPECTED, step


def test_crlf_split_across_chunks_is_one_line_break():
    p = SSEParser()
    assert p.feed(b"data: x\r") == []
    assert p.feed(b"\n\r") == [("message", b"x")]
    assert p.feed(b"\ndata: y\n\n") == [("message", b"y")]


def test_event_without_data_is_not_dispatched_and_fields_reset():
    p = SSEParser()
    assert p.feed(b"event: lonely\n\ndata: z\n\n") == [("message", b"z")]


def test_bom_and_unterminated_final_event():
    p = SSEParser()
    assert p.feed(b"\xef\xbb\xbfdata: a\n\ndata: tail") == [("message", b"a")]
    assert p.close() == [("message", b"tail")]


def test_data_keeps_inner_colons_and_only_one_leading_space():
    assert parse_all(b"data:  {\"u\": \"http://x\"}\n\n") == [("message", b' {"u": "http://x"}')]
