"""Client codec for Anthropic Messages (POST /v1/messages): request decoding (request.py),
response encoding and error bodies (response.py), SSE encoding (stream.py); `FORMAT` is
all of it as a `ClientFormat` (codec.py)."""
from switchyard.edge.formats.anthropic_messages.codec import FORMAT
from switchyard.edge.formats.anthropic_messages.request import decode_request
from switchyard.edge.formats.anthropic_messages.response import encode_response, error_body
from switchyard.edge.formats.anthropic_messages.stream import StreamEncoder

__all__ = ["FORMAT", "decode_request", "encode_response", "error_body", "StreamEncoder"]
