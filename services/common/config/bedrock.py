"""`amazon_bedrock/` entries: region, default endpoint and how the gateway authenticates.

Plano's form is `access_key: $AWS_BEARER_TOKEN_BEDROCK` (a Bedrock API key, sent as a bearer
token) with `base_url: https://bedrock-runtime.<region>.amazonaws.com`. Our extensions sign
with SigV4 instead: `access_key` + `secret_key` (+ `session_token`), `aws_profile` (a named
profile of the standard credential chain), or nothing at all (the chain's default: the
AWS_* variables, ~/.aws files, container and instance roles). The region comes from
`region`, else the base_url's host, else AWS_REGION / AWS_DEFAULT_REGION.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from switchyard.common.config.fields import Report, expand, expand_env
from switchyard.common.config.model import AwsSettings

BEDROCK_KEYS = frozenset({"region", "secret_key", "session_token", "aws_profile"})
BEARER_ENV = "AWS_BEARER_TOKEN_BEDROCK"   # Bedrock API keys' standard variable (AWS SDKs)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_HOST_REGION = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


@dataclass(frozen=True)
class BedrockAuth:
    """What `parse_bedrock` decided for one entry."""
    aws: AwsSettings
    auth: str                  # sigv4 | bearer
    access_key: str | None     # the API key (bearer) or the access key id (static SigV4)
    base_url: str              # the entry's, or the region's standard endpoint


def reject_bedrock_keys(rep: Report, where: str, item: Mapping[str, Any]) -> None:
    """The Bedrock keys mean nothing elsewhere: say so rather than ignore them."""
    for key in sorted(BEDROCK_KEYS & set(item)):
        rep.add(where, f"{key} applies only to amazon_bedrock/ entries; remove it")


def default_base_url(region: str) -> str:
    """Bedrock Runtime's endpoint for a region (China's regions live under amazonaws.com.cn)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://bedrock-runtime.{region}.{suffix}"


def region_of_host(base_url: str) -> str | None:
    """The region named by a `bedrock-runtime.<region>.amazonaws.com` base_url."""
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:
        return None
    m = _HOST_REGION.match(host)
    return m.group(1) if m else None


def parse_bedrock(rep: Report, where: str, item: Mapping[str, Any], access_key: str | None,
                  base_url: str | None, passthrough: bool) -> BedrockAuth | None:
    """Region, endpoint and auth of an `amazon_bedrock/` entry (None after reporting)."""
    n_before = len(rep.errors)
    region = _region(rep, where, item, base_url)
    secret = _secret(rep, where, item, "secret_key")
    token = _secret(rep, where, item, "session_token")
    profile = expand(rep, where, "aws_profile", item.get("aws_profile")) or None
    if profile is not None and not isinstance(profile, str):
        rep.add(where, "aws_profile must be the name of a profile in ~/.aws/config")
    raw_key = item.get("access_key")
    if isinstance(raw_key, str) and access_key is None and rep.reads("model_providers"):
        missing = expand_env(raw_key, rep.env)[1]
        if missing:   # Plano's demo writes $AWS_BEARER_TOKEN_BEDROCK: unset is a mistake
            rep.add(where, f"access_key uses ${missing[0]}, which is not set in the "
                           f"environment; export {missing[0]}=... before starting")
    if token and not secret:
        rep.add(where, "session_token needs secret_key and access_key (temporary credentials)")
    if secret and not access_key:
        rep.add(where, "secret_key needs access_key (the AWS access key id) beside it")
    if profile and (access_key or secret):
        rep.add(where, "aws_profile takes its credentials from the profile; remove "
                       "access_key/secret_key, or remove aws_profile")
    if passthrough and (secret or profile):
        rep.add(where, "passthrough_auth sends the client's key as a Bedrock API key; remove "
                       "secret_key/aws_profile, or passthrough_auth")
    if region is None or len(rep.errors) != n_before:
        return None
    if secret or profile:
        auth = "sigv4"
    elif access_key or passthrough:
        auth = "bearer"
    elif rep.env.get(BEARER_ENV) and rep.reads("model_providers"):
        auth, access_key = "bearer", rep.env[BEARER_ENV]
    else:
        auth = "sigv4"   # the standard credential chain, resolved by the providers service
    aws = AwsSettings(region=region, secret_key=secret, session_token=token,
                      profile=profile if isinstance(profile, str) else None)
    return BedrockAuth(aws, auth, access_key, base_url or default_base_url(region))


def _region(rep: Report, where: str, item: Mapping[str, Any], base_url: str | None) -> str | None:
    raw = expand(rep, where, "region", item.get("region"))
    host_region = region_of_host(base_url) if base_url else None
    if raw is not None and not isinstance(raw, str):
        rep.add(where, "region must be an AWS region name like us-east-1")
        return None
    region = raw or host_region or rep.env.get("AWS_REGION") \
        or rep.env.get("AWS_DEFAULT_REGION")
    if not region:
        rep.add(where, "region is missing; add region: us-east-1 (or a base_url of "
                       "https://bedrock-runtime.<region>.amazonaws.com, or set AWS_REGION)")
        return None
    if not _REGION.match(region):
        rep.add(where, f"region {region!r} is not an AWS region name like us-east-1")
        return None
    if raw and host_region and raw != host_region:
        rep.add(where, f"region {raw} does not match the base_url's region {host_region}; "
                       "requests are signed for one region")
        return None
    return region


def _secret(rep: Report, where: str, item: Mapping[str, Any], key: str) -> str | None:
    raw = item.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        rep.add(where, f"{key} must be a string, e.g. ${key.upper()}")
        return None
    if not rep.reads("model_providers"):
        return None   # read for another service: AWS keys stay with providers
    value, missing = expand_env(raw, rep.env)
    for var in missing:
        rep.add(where, f"{key} uses ${var}, which is not set in the environment; export "
                       f"{var}=... before starting")
    return value or None
