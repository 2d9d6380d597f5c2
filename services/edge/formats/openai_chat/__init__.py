"""Client codec for OpenAI Chat Completions (POST /v1/chat/completions): request decoding
(request.py), response encoding and error bodies (response.py), SSE encoding (stream.py);
`FORMAT` is all of it as a `ClientFormat` (codec.py)."""
from switchyard.edge.formats.openai_chat.codec import FORMAT
from switchyard.edge.formats.openai_chat.request import decode_request
from switchyard.edge.formats.openai_chat.response import encode_response, error_body
from switchyard.edge.formats.openai_chat.stream import StreamEncoder

__all__ = ["FORMAT", "decode_request", "encode_response", "error_body", "StreamEncoder"]
