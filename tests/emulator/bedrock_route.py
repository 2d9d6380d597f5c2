"""POST .../model/{modelId}/converse | /converse-stream (Amazon Bedrock Runtime).

Auth as Bedrock takes it: a Bedrock API key (`Authorization: Bearer`, `Emulator(
bedrock_api_keys=...)`) or a SigV4 signature (`bedrock_sigv4.py`; `bedrock_credentials`
maps access key ids to (secret, session token) and then every signature is recomputed;
`bedrock_region` is the region the credential scope must name). Errors are AWS's: status,
`x-amzn-ErrorType: <Name>:<namespace>`, body `{"message"}`; in a stream, an exception message.
"""
from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from aiohttp import web

from tests.emulator import bedrock_render
from tests.emulator.bedrock_check import check_converse, converse_info
from tests.emulator.bedrock_eventstream import exception
from tests.emulator.bedrock_sigv4 import aws_error, check_sigv4, presented_access_key
from tests.emulator.delivery import Renderer, deliver, json_response, open_exchange
from tests.emulator.errors import ApiError
from tests.emulator.plan import Plan, fast_plan, make_plan
from tests.emulator.state import EmulatorState
from tests.emulator.steps import with_key

PATH = re.compile(r"/model/([^/]+)/(converse|converse-stream)$")
_BEDROCK_NS = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_ID_HEADER = "x-amzn-RequestId"
_BAD_TOKEN = "The security token included in the request is invalid."
# The exception Bedrock names for a status, when a script gives only the status.
_NAMES = {400: "ValidationException", 403: "AccessDeniedException",
          404: "ResourceNotFoundException", 408: "ModelTimeoutException",
          424: "ModelErrorException", 429: "ThrottlingException",
          500: "InternalServerException", 503: "ServiceUnavailableException"}
_MESSAGES = {"ThrottlingException": "Too many requests, please wait before trying again.",
             "AccessDeniedException": "You don't have access to the model with the specified "
                                      "model ID.",
             "ServiceUnavailableException": "Bedrock is unable to process your request.",
             "ModelNotReadyException": "Model is not ready for inference. Wait and try your "
                                       "request again.",
             "InternalServerException": "The server encountered an internal error while "
                                        "processing the request.",
             "ValidationException": "The provided request is not valid"}


def _auth(request: web.Request, state: EmulatorState, raw: bytes) -> str:
    """Check the credentials; the key presented (an API key, or the access key id)."""
    cfg = state.config
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        key = auth[7:].strip()
        if not key or (cfg.bedrock_api_keys and key not in cfg.bedrock_api_keys):
            raise aws_error(403, "UnrecognizedClientException", _BAD_TOKEN)
        return key
    check_sigv4(request.method, request.raw_path, request.headers, raw, cfg.bedrock_region,
                dict((k, (s, t)) for k, s, t in cfg.bedrock_credentials))
    return presented_access_key(auth)


def _scripted_error(step: dict, status: int) -> ApiError:
    if "body" in step:
        return ApiError(status, step["body"])
    err = step.get("error") or {}
    name = err.get("type") or _NAMES.get(status, "InternalServerException")
    return aws_error(status, name, err.get("message") or _MESSAGES.get(name, "Error."),
                     _BEDROCK_NS)


def _error_frame(step: dict) -> bytes:
    """A failing stream ends with an exception message (lowerCamel name, as Bedrock sends)."""
    err = step.get("error") or {}
    name = err.get("type") or "ModelStreamErrorException"
    payload = {"message": err.get("message") or "The model stream failed."}
    return exception(name[:1].lower() + name[1:], orjson.dumps(payload))


async def handle_bedrock(request: web.Request, state: EmulatorState, raw: bytes, body: Any,
                         model_id: str, operation: str) -> web.StreamResponse:
    """One Converse or ConverseStream call."""
    cfg = state.config
    ex = open_exchange(request, state, body, "bedrock", model_id, _ID_HEADER)
    ex.stream = operation == "converse-stream"
    if ex.entry is not None:
        ex.entry["stream"] = ex.stream
    try:
        key = _auth(request, state, raw)
        checked = body if cfg.fast and isinstance(body, dict) else \
            check_converse(body, model_id, ex.stream)
        step = with_key(state.next_step(model_id) or {}, key)
        ctx = bedrock_render.BedrockContext(
            chunks=step.get("chunks", cfg.chunks),
            stop_sequence_field="/stop_sequence" in (
                checked.get("additionalModelResponseFieldPaths") or ()))

        def plan() -> Plan:
            if cfg.fast and not step:
                return fast_plan(cfg.chunks)
            return make_plan(converse_info(checked), step.get("reply"),
                             lambda: state.new_id("tooluse_"))

        renderer = Renderer(
            body=lambda p: bedrock_render.response_body(p, ctx),
            frames=lambda p: bedrock_render.stream_frames(p, ctx),
            error_frame=_error_frame, scripted_error=_scripted_error, stream_error_status=424,
            media_type="application/vnd.amazon.eventstream")
        return await deliver(ex, step, plan, renderer)
    except ApiError as e:
        return json_response(ex, e.status, e.body, e.headers)
    except asyncio.CancelledError:
        ex.client_gone()
        raise
