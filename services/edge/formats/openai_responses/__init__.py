"""Client codec for the OpenAI Responses API (POST /v1/responses): request decoding
(request.py), response encoding, error bodies and input_items pages (response.py), SSE
encoding (stream.py), the Responses-only request context (context.py). Pure functions; the
edge app does the I/O and the state service the storing. `FORMAT` is all of it as a
`ClientFormat` (codec.py)."""
from switchyard.edge.formats.openai_responses.codec import FORMAT
from switchyard.edge.formats.openai_responses.context import ResponsesContext
from switchyard.edge.formats.openai_responses.request import decode_request
from switchyard.edge.formats.openai_responses.response import (
    encode_response,
    error_body,
    input_items_page,
)
from switchyard.edge.formats.openai_responses.stream import StreamEncoder

__all__ = ["FORMAT", "decode_request", "encode_response", "error_body", "input_items_page",
           "ResponsesContext", "StreamEncoder"]
