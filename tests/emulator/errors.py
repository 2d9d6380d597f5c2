"""Provider error bodies, exactly as OpenAI, Azure OpenAI, Anthropic and Google send them.

These tables describe what the *upstream* answers; they are deliberately independent of the
gateway's own mapping tables, so a wrong gateway table cannot hide behind a matching emulator.
"""
from __future__ import annotations

from typing import Any

# Status -> (type, code, message) of OpenAI's generic error for that status.
_OPENAI_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests per min (RPM). Please try again later."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
    504: ("server_error", None, "Gateway timeout."),
}

# Status -> (type, message) of Anthropic's error for that status.
_ANTHROPIC_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Bad request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


class ApiError(Exception):
    """An HTTP error reply in one provider's wire format (raised anywhere, rendered once)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


def openai_error_obj(status: int, message: str | None = None, *, type: str | None = None,
                     param: str | None = None, code: str | None = None,
                     use_default_code: bool = True) -> dict:
    """The inner `error` object of an OpenAI error (also used for mid-stream error chunks)."""
    d_type, d_code, d_msg = _OPENAI_DEFAULTS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error."))
    return {"message": message if message is not None else d_msg, "type": type or d_type,
            "param": param, "code": code if code is not None else (d_code if use_default_code else None)}


def openai_error(status: int, message: str | None = None, *, type: str | None = None,
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> ApiError:
    """An OpenAI error: `{"error": {"message", "type", "param", "code"}}`."""
    return ApiError(status, {"error": openai_error_obj(status, message, type=type, param=param,
                                                       code=code)}, headers)


def openai_invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 invalid_request_error as OpenAI words request validation failures."""
    return ApiError(400, {"error": {"message": message, "type": "invalid_request_error",
                                    "param": param, "code": code}})


def azure_error(status: int, message: str) -> ApiError:
    """Azure's gateway-level error shape: `{"error": {"code": "<status>", "message"}}`."""
    return ApiError(status, {"error": {"code": str(status), "message": message}})


def anthropic_error_obj(status: int, message: str | None = None, *, type: str | None = None) -> dict:
    """The inner `error` object of an Anthropic error (also used for `event: error`)."""
    d_type, d_msg = _ANTHROPIC_DEFAULTS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", "Error."))
    return {"type": type or d_type, "message": message if message is not None else d_msg}


def anthropic_error(status: int, message: str | None = None, *, type: str | None = None,
                    headers: dict[str, str] | None = None) -> ApiError:
    """An Anthropic error: `{"type": "error", "error": {"type", "message"}}` (+ request_id later)."""
    return ApiError(status, {"type": "error",
                             "error": anthropic_error_obj(status, message, type=type)}, headers)


def anthropic_invalid(message: str) -> ApiError:
    """A 400 invalid_request_error as Anthropic words request validation failures."""
    return anthropic_error(400, message, type="invalid_request_error")


# Status -> (google.rpc.Code name, message) of Google's generic error for that status.
_GEMINI_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def gemini_error_obj(status: int, message: str | None = None, *, name: str | None = None,
                     retry_delay: str | None = None, details: list[dict] | None = None) -> dict:
    """The inner `error` of a Google API error: code, message, status, optional details
    (a 429's `retryDelay` rides in a RetryInfo entry, as Google sends it)."""
    d_name, d_msg = _GEMINI_DEFAULTS.get(status, ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT",
                                                  "Error."))
    err: dict = {"code": status, "message": message if message is not None else d_msg,
                 "status": name or d_name}
    entries = list(details or [])
    if retry_delay is not None:
        entries.append({"@type": _RETRY_INFO, "retryDelay": retry_delay})
    if entries:
        err["details"] = entries
    return err


def gemini_error(status: int, message: str | None = None, *, name: str | None = None,
                 retry_delay: str | None = None, details: list[dict] | None = None,
                 headers: dict[str, str] | None = None) -> ApiError:
    """A Google API error: `{"error": {"code", "message", "status"[, "details"]}}`."""
    return ApiError(status, {"error": gemini_error_obj(status, message, name=name,
                                                       retry_delay=retry_delay, details=details)},
                    headers)


def gemini_invalid(message: str) -> ApiError:
    """A 400 INVALID_ARGUMENT as the Gemini API words request validation failures."""
    return gemini_error(400, message)


def gemini_unknown_field(name: str, where: str = "") -> ApiError:
    """Google's JSON parser on a field the message does not define (with a BadRequest detail)."""
    at = f" at '{where}'" if where else ""
    msg = f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    detail = {"@type": "type.googleapis.com/google.rpc.BadRequest",
              "fieldViolations": [{"field": where, "description": msg}]}
    return gemini_error(400, msg, details=[detail])
