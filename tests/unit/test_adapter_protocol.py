"""Every codec in the adapters table offers the whole `UpstreamCodec` interface at runtime
(mypy checks the signatures; this catches a missing member in a module it cannot see)."""
from __future__ import annotations

import pytest

from switchyard.common.proto import chat_pb2
from switchyard.providers import adapters
from switchyard.providers.adapters.base import StreamDecoder, UpstreamCodec

MEMBERS = {"WIRE", "StreamDecoder", "encode_request", "build_headers", "endpoint_url",
           "decode_response", "decode_error", "decode_stream_error"}


def test_member_list_matches_the_protocol():
    assert {name for name in vars(UpstreamCodec) if not name.startswith("_")} == MEMBERS


@pytest.mark.parametrize("interface", sorted(adapters.BY_INTERFACE))
def test_codec_satisfies_the_protocol(interface):
    codec = adapters.for_interface(interface)
    assert isinstance(codec, UpstreamCodec)
    for name in MEMBERS - {"WIRE"}:
        assert callable(getattr(codec, name)), name
    assert codec.WIRE in chat_pb2.WireFormat.values()
    assert isinstance(codec.StreamDecoder(), StreamDecoder)


def test_table_holds_one_codec_per_wire():
    wires = [codec.WIRE for codec in adapters.BY_INTERFACE.values()]
    assert sorted(adapters.BY_INTERFACE) == ["anthropic", "bedrock", "gemini", "openai",
                                             "openai_responses"]
    assert len(set(wires)) == len(wires)


def test_unknown_interface_is_refused():
    with pytest.raises(ValueError):
        adapters.for_interface("carrier-pigeon")
