"""Amazon's event-stream framing (`application/vnd.amazon.eventstream`), written the way AWS
writes it, so the gateway's parser (botocore's) is tested against real frames.

A message is: total length (uint32), headers length (uint32), CRC32 of those 8 bytes; the
headers (name length uint8, name, value type 7 = string, value length uint16, value); the
payload; a CRC32 of everything before it. All integers big-endian.
"""
from __future__ import annotations

import struct
import zlib

_STRING = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with both CRCs."""
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(name: str, payload: bytes) -> bytes:
    """An event message (`:message-type` event) as Bedrock sends one."""
    return message({":event-type": name, ":content-type": "application/json",
                    ":message-type": "event"}, payload)


def exception(name: str, payload: bytes) -> bytes:
    """An exception message (`:message-type` exception), e.g. `throttlingException`."""
    return message({":exception-type": name, ":content-type": "application/json",
                    ":message-type": "exception"}, payload)
