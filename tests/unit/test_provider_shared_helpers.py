"""The helpers with one home in services/common that the providers service shares: data URLs,
retry-after parsing, lenient JSON objects; and the call sites that keep their own conventions."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from switchyard.common.data_urls import data_url, is_data_url, split_data_url
from switchyard.common.errors import GatewayError
from switchyard.common.http_headers import header, retry_after_seconds
from switchyard.common.json_object import parse_json_object
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import fields
from switchyard.edge.formats.openai_responses import request as responses_request
from switchyard.providers.adapters.common import http_error, load_chunk


# ---- data URLs ---------------------------------------------------------------------------
def test_data_url_builds_base64_urls():
    assert data_url("image/png", "iVBORw0KGgo=") == "data:image/png;base64,iVBORw0KGgo="
    assert data_url("", "AAAA") == "data:application/octet-stream;base64,AAAA"


def test_split_data_url_returns_media_type_and_data():
    assert split_data_url("data:image/png;base64,iVBORw0KGgo=") == ("image/png", "iVBORw0KGgo=")
    assert split_data_url("data:text/plain;charset=utf-8;base64,aGk=") == (
        "text/plain;charset=utf-8", "aGk=")
    assert split_data_url("data:;base64,AAAA") == ("", "AAAA")
    assert split_data_url(data_url("application/pdf", "JVBERi0=")) == ("application/pdf",
                                                                       "JVBERi0=")


@pytest.mark.parametrize("url", ["https://example.test/cat.png", "data:image/png,raw",
                                 "data:image/png;base64", "data:image/png;base64;x,AAAA", ""])
def test_split_data_url_is_none_for_anything_but_a_base64_data_url(url):
    assert split_data_url(url) is None


def test_is_data_url_names_the_scheme_only():
    assert is_data_url("data:image/png,raw") and is_data_url("data:image/png;base64,AA")
    assert not is_data_url("https://example.test/x")


def test_chat_completions_splitter_keeps_its_conventions():
    assert fields.split_data_url("data:image/png;base64,AAAA") == ("image/png", "AAAA")
    # media parameters are dropped on this route
    assert fields.split_data_url("data:text/plain;charset=utf-8;base64,aGk=") == (
        "text/plain", "aGk=")
    assert fields.split_data_url("https://example.test/x") == ("", "")
    assert fields.split_data_url("data:image/png,raw") == ("", "")


def test_responses_splitter_keeps_its_conventions():
    split = responses_request._split_data_url
    assert split("data:image/png;base64,AAAA") == ("image/png", "AAAA")
    assert split("https://example.test/x") == ("", None)
    with pytest.raises(GatewayError) as info:
        split("data:image/png,raw")
    assert info.value.http_status == 400


# ---- retry-after -------------------------------------------------------------------------
def test_retry_after_in_seconds():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "0.5"}) == 0.5
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0


def test_retry_after_ms_wins_and_falls_back_when_unreadable():
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25


def test_retry_after_as_an_http_date():
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15 < retry_after_seconds({"retry-after": later}) <= 20
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=20), usegmt=True)
    assert retry_after_seconds({"retry-after": earlier}) == 0.0


@pytest.mark.parametrize("headers", [{}, {"retry-after": ""}, {"retry-after": "soon"},
                                     {"retry-after": "Mon, 99 Foo 2024 99:99:99 GMT"},
                                     {"retry-after-ms": "x"}])
def test_retry_after_garbage_or_absent_is_none(headers):
    assert retry_after_seconds(headers) is None


def test_retry_after_header_names_are_case_insensitive():
    assert retry_after_seconds({"Retry-After": "4"}) == 4.0
    assert retry_after_seconds({"Retry-After-Ms": "100"}) == 0.1
    assert header({"X-Thing": "v"}, "x-thing") == "v" and header({}, "x-thing") is None


def test_codec_errors_carry_retry_after_as_zero_when_absent():
    assert http_error(429, "slow", {"retry-after": "3"}).retry_after == 3.0
    assert http_error(429, "slow", {"retry-after": "soon"}).retry_after == 0.0
    assert http_error(429, "slow", None).retry_after == 0.0


# ---- JSON objects ------------------------------------------------------------------------
@pytest.mark.parametrize("raw,expected", [("", {}), (b"", {}), ("{}", {}), ('{"a": 1}', {"a": 1}),
                                          (b'{"a": [1]}', {"a": [1]}), ("[1, 2]", {}),
                                          ('"text"', {}), ("{not json", {})])
def test_parse_json_object(raw, expected):
    assert parse_json_object(raw) == expected


def test_load_chunk_names_what_is_wrong():
    assert load_chunk(b'{"type": "ping"}') == {"type": "ping"}
    not_json = load_chunk(b"{oops")
    assert isinstance(not_json, chat_pb2.Error) and not_json.message.endswith("not JSON")
    not_object = load_chunk(b"[1]")
    assert isinstance(not_object, chat_pb2.Error) and not_object.message.endswith("not an object")
    assert not_object.http_status == 502
