"""Check a request's AWS Signature Version 4 the way AWS's front door does, with AWS's
error names and wording: the Authorization header's shape, the credential scope (date,
region, service `bedrock`), X-Amz-Date within 15 minutes, and — for access keys the
emulator knows — the signature itself, recomputed independently of the gateway's signer.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

from tests.emulator.errors import ApiError

SERVICE = "bedrock"
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 (.*)$")
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")
_CORAL = "http://internal.amazon.com/coral/com.amazon.coral.service/"
_SKEW = dt.timedelta(minutes=15)
_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
             "Check your AWS Secret Access Key and signing method. Consult the service "
             "documentation for details.")
_BAD_TOKEN = "The security token included in the request is invalid."


def aws_error(status: int, name: str, message: str, namespace: str = _CORAL) -> ApiError:
    """An AWS JSON error: `{"message"}` with the name in `x-amzn-ErrorType`."""
    return ApiError(status, {"message": message},
                    {"x-amzn-ErrorType": f"{name}:{namespace}"})


def _params(rest: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for piece in rest.split(","):
        key, sep, value = piece.strip().partition("=")
        if sep:
            out[key] = value
    return out


def presented_access_key(authorization: str) -> str:
    m = _AUTH.match(authorization)
    cred = _params(m.group(1)).get("Credential", "") if m else ""
    return cred.split("/", 1)[0]


def check_sigv4(method: str, raw_path: str, headers: Mapping[str, str], body: bytes,
                region: str, credentials: Mapping[str, tuple[str, str | None]],
                now: dt.datetime | None = None) -> str:
    """Raise the ApiError AWS would send for a badly signed request; the access key id."""
    auth = headers.get("Authorization", "")
    if not auth:
        raise aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    m = _AUTH.match(auth)
    if m is None:
        raise aws_error(403, "IncompleteSignatureException",
                        "Authorization header requires 'Credential' parameter. Authorization "
                        "header requires 'Signature' parameter. Authorization header requires "
                        "'SignedHeaders' parameter. Authorization=" + auth.split(" ", 1)[0])
    params = _params(m.group(1))
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in params]
    if missing:
        raise aws_error(403, "IncompleteSignatureException",
                        " ".join(f"Authorization header requires '{k}' parameter." for k in missing))
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise aws_error(403, "IncompleteSignatureException",
                        "Credential should be scoped to a valid region. "
                        "Credential=" + params["Credential"])
    akid, date, scope_region, service, _ = scope
    amz_date = headers.get("X-Amz-Date", "")
    if not _AMZ_DATE.match(amz_date):
        raise aws_error(403, "IncompleteSignatureException",
                        "Authorization header requires existence of either a 'X-Amz-Date' or a "
                        "'Date' header.")
    if date != amz_date[:8]:
        raise aws_error(403, "InvalidSignatureException",
                        f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                        f"of date from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'.")
    if scope_region != region:
        raise aws_error(403, "InvalidSignatureException",
                        f"Credential should be scoped to a valid region, not '{scope_region}'.")
    if service != SERVICE:
        raise aws_error(403, "InvalidSignatureException",
                        f"Credential should be scoped to correct service: '{SERVICE}'.")
    signed = params["SignedHeaders"].split(";")
    if "host" not in signed or "x-amz-date" not in signed or signed != sorted(signed):
        raise aws_error(403, "InvalidSignatureException", _MISMATCH)
    when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    if abs(now - when) > _SKEW:
        raise aws_error(403, "InvalidSignatureException",
                        f"Signature expired: {amz_date} is now earlier than "
                        f"{(now - _SKEW).strftime('%Y%m%dT%H%M%SZ')} "
                        f"({now.strftime('%Y%m%dT%H%M%SZ')} - 15 min.)")
    if not re.fullmatch(r"[0-9a-f]{64}", params["Signature"]):
        raise aws_error(403, "InvalidSignatureException", _MISMATCH)
    if not credentials:
        return akid   # no keys configured: any well-formed signature passes
    known = credentials.get(akid)
    if known is None:
        raise aws_error(403, "UnrecognizedClientException", _BAD_TOKEN)
    secret, token = known
    if token is not None and headers.get("X-Amz-Security-Token") != token:
        raise aws_error(403, "UnrecognizedClientException", _BAD_TOKEN)
    expected = signature(secret, method, raw_path, headers, signed, body, amz_date,
                         f"{date}/{region}/{SERVICE}/aws4_request")
    if not hmac.compare_digest(expected, params["Signature"]):
        raise aws_error(403, "InvalidSignatureException", _MISMATCH)
    return akid


def signature(secret: str, method: str, raw_path: str, headers: Mapping[str, str],
              signed: list[str], body: bytes, amz_date: str, scope: str) -> str:
    """The SigV4 signature of the request as received (path segments encoded again, as every
    service but S3 does)."""
    path, _, query = raw_path.partition("?")
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, v in parse_qsl(query, keep_blank_values=True))
    canonical = "\n".join([
        method.upper(), quote(path or "/", safe="/~"), "&".join(f"{k}={v}" for k, v in pairs),
        "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed),
        ";".join(signed), hashlib.sha256(body).hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
