"""Gateway keys, rate limiting and the auth/limits config extensions."""
import hashlib

import pytest

from switchyard.common.config.model import ApiKey, Security
from switchyard.common.config.security import parse_security
from switchyard.common.errors import GatewayError
from switchyard.edge.guard import RateLimiter, authorize_model, find_key, presented_key


def expand(where, field, value):
    return {"$TEAM_A_KEY": "secret-a"}.get(value, value)


def test_keys_from_env_and_digest():
    errors = []
    digest = hashlib.sha256(b"secret-b").hexdigest()
    sec = parse_security({"keys": [
        {"key": "$TEAM_A_KEY", "tenant": "team-a", "models": ["gpt-4o-mini"]},
        {"key_sha256": digest, "tenant": "team-b"}]}, None, errors, expand)
    assert errors == []
    assert sec.auth_enabled
    assert find_key(sec.keys, "secret-a").tenant == "team-a"
    assert find_key(sec.keys, "secret-b").tenant == "team-b"
    assert find_key(sec.keys, "secret-c") is None
    assert "secret-a" not in repr(sec)


@pytest.mark.parametrize("auth, fragment", [
    ({"keys": [{"tenant": "t"}]}, "exactly one of `key`"),
    ({"keys": [{"key": "k"}]}, "`tenant` is required"),
    ({"keys": [{"key_sha256": "abc", "tenant": "t"}]}, "64 hex digits"),
    ({"keys": [{"key": "", "tenant": "t"}]}, "`key` is empty"),
    ({"keys": [{"key": "k", "tenant": "t", "models": "gpt"}]}, "list of model names"),
    ({"keys": [{"key": "k", "tenant": "t", "colour": 1}]}, "unknown field"),
    ([], "must be a mapping with a `keys:` list"),
])
def test_auth_errors_say_what_to_fix(auth, fragment):
    errors = []
    parse_security(auth, None, errors, expand)
    assert any(fragment in e for e in errors), errors


def test_limits():
    errors = []
    sec = parse_security(None, {"max_body_bytes": 1000, "requests_per_minute": 60,
                                "max_concurrent_requests": 4}, errors, expand)
    assert errors == [] and not sec.auth_enabled
    assert (sec.max_body_bytes, sec.requests_per_minute, sec.max_concurrent_requests) == \
        (1000, 60, 4)
    errors = []
    parse_security(None, {"max_body_bytes": -1, "burst": 3}, errors, expand)
    assert len(errors) == 2


def test_rate_limiter_refills_over_time():
    now = [0.0]
    rl = RateLimiter(60, clock=lambda: now[0])
    assert all(rl.take("k") == 0 for _ in range(60))
    wait = rl.take("k")
    assert 0.9 < wait <= 1.0
    assert rl.take("other") == 0
    now[0] += 1.0
    assert rl.take("k") == 0


def test_presented_key_from_either_sdk_header():
    assert presented_key({b"authorization": b"Bearer abc"}) == "abc"
    assert presented_key({b"x-api-key": b"xyz"}) == "xyz"
    assert presented_key({}) == ""


def test_model_allow_list():
    state = {"api_key": ApiKey(sha256=b"x" * 32, tenant="t", models=frozenset({"fast-model"}))}
    authorize_model(state, "fast-model")
    with pytest.raises(GatewayError) as info:
        authorize_model(state, "gpt-4o")
    assert info.value.http_status == 403
    authorize_model({}, "anything")  # no auth: everything allowed
    assert Security().max_concurrent_requests > 0


def test_per_key_rate_overrides_the_default():
    now = [0.0]
    rl = RateLimiter(10**9, clock=lambda: now[0])
    assert rl.take("k", 2) == 0 and rl.take("k", 2) == 0
    assert rl.take("k", 2) > 0
    assert rl.take("j") == 0

