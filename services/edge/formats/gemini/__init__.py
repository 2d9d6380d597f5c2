"""Client codec for Google's generateContent (Gemini API): request decoding (request.py,
schema.py), response encoding and error bodies (response.py), streaming (stream.py);
`FORMAT` is all of it as a `ClientFormat` (codec.py)."""
from switchyard.edge.formats.gemini.codec import FORMAT
from switchyard.edge.formats.gemini.request import (
    MODEL_PREFIX,
    STREAM_KEY,
    GeminiContext,
    decode_request,
    model_name,
)
from switchyard.edge.formats.gemini.response import encode_response, error_body, error_json
from switchyard.edge.formats.gemini.stream import StreamEncoder

__all__ = ["FORMAT", "MODEL_PREFIX", "STREAM_KEY", "GeminiContext", "StreamEncoder",
           "decode_request", "encode_response", "error_body", "error_json", "model_name"]
