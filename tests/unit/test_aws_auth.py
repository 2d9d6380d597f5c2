"""Bedrock credentials: static keys, the standard chain, profiles, refresh, bearer keys.
Every signature is checked by the emulator's independent SigV4 verifier."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from botocore.credentials import RefreshableCredentials
from multidict import CIMultiDict
from yarl import URL

from switchyard.common.config.model import AwsSettings, ProviderEntry
from switchyard.providers import aws_auth
from switchyard.providers.secrets import entry_secrets
from tests.emulator.bedrock_sigv4 import check_sigv4

URL_ = str(URL("https://bedrock-runtime.eu-west-1.amazonaws.com/model/m%3A0/converse"))
BODY = b'{"messages": []}'


def entry(name: str, **aws) -> ProviderEntry:
    access = aws.pop("access_key", None)
    auth = aws.pop("auth", "sigv4")
    return ProviderEntry(name=name, provider="amazon_bedrock", model="m:0", interface="bedrock",
                         endpoint="x", auth=auth, access_key=access,
                         aws=AwsSettings(region="eu-west-1", **aws))


def verified(headers: dict[str, str], creds: dict[str, tuple[str, str | None]]) -> str:
    h = CIMultiDict({"Content-Type": "application/json", "Host": URL(URL_).host, **headers})
    return check_sigv4("POST", URL(URL_).raw_path, h, BODY, "eu-west-1", creds)


def sign(e: ProviderEntry, client_key: str = "") -> dict[str, str]:
    return aws_auth.auth_headers(e, URL_, BODY, {"Content-Type": "application/json"}, client_key)


def test_static_keys_sign_and_are_secrets():
    e = entry("static", access_key="AKIASTATIC0000000001", secret_key="static/secret/key01",
              session_token="static-session-token")
    headers = sign(e)
    assert verified(headers, {"AKIASTATIC0000000001": ("static/secret/key01",
                                                       "static-session-token")}) == \
        "AKIASTATIC0000000001"
    assert {"static/secret/key01", "static-session-token"} <= set(entry_secrets(e))


@pytest.fixture
def chain_env(monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return tmp_path


def test_the_default_chain_reads_the_environment(chain_env, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV000000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env/secret/key/0001")
    e = entry("chain-env")
    assert verified(sign(e), {"AKIAFROMENV000000001": ("env/secret/key/0001", None)})
    assert "env/secret/key/0001" in entry_secrets(e)   # scrubbed from errors once resolved


def test_a_named_profile(chain_env):
    (chain_env / "credentials").write_text(
        "[team]\naws_access_key_id = AKIAPROFILE000000001\n"
        "aws_secret_access_key = profile/secret/0001\n")
    e = entry("chain-profile", profile="team")
    assert verified(sign(e), {"AKIAPROFILE000000001": ("profile/secret/0001", None)})


def test_no_credentials_anywhere_sends_the_request_unsigned(chain_env, caplog):
    e = entry("chain-none")
    assert sign(e) == {} and sign(e) == {}   # the second ask is answered from the cache
    assert sum("no AWS credentials found" in r.getMessage() for r in caplog.records) == 1


def test_bearer_keys_and_passthrough():
    e = entry("bearer", auth="bearer", access_key="ABSKbearer0001")
    assert sign(e) == {"Authorization": "Bearer ABSKbearer0001"}
    p = ProviderEntry(name="pass", provider="amazon_bedrock", model="m", interface="bedrock",
                      endpoint="x", auth="bearer", passthrough_auth=True,
                      aws=AwsSettings(region="eu-west-1"))
    assert aws_auth.auth_headers(p, URL_, BODY, {}, "client-key") == {
        "Authorization": "Bearer client-key"}


def test_refreshable_credentials_refresh_off_the_event_loop(chain_env, monkeypatch):
    """In botocore's advisory window the current keys still sign while a worker thread
    fetches new ones; the caller never waits on the refresh."""
    released, calls = threading.Event(), []
    start = dt.datetime.now(dt.UTC)
    clock = [start]

    def refresh() -> dict:
        calls.append(threading.current_thread().name)
        released.wait(5)
        return {"access_key": "AKIAROLE000000000002", "secret_key": "role/secret/2",
                "token": "role-token-2",
                "expiry_time": (start + dt.timedelta(hours=2)).isoformat()}

    creds = RefreshableCredentials("AKIAROLE000000000001", "role/secret/1", "role-token-1",
                                   start + dt.timedelta(hours=1), refresh, "test",
                                   time_fetcher=lambda: clock[0])
    monkeypatch.setattr("botocore.session.Session.get_credentials", lambda self: creds)
    e = entry("chain-refresh")
    one = {"AKIAROLE000000000001": ("role/secret/1", "role-token-1")}
    assert verified(sign(e), one) and calls == []
    clock[0] = start + dt.timedelta(minutes=48)   # 12 minutes left: botocore's advisory window
    assert verified(sign(e), one)   # signed at once with the current keys ...
    workers = [t for t in threading.enumerate() if t.name == "aws-credentials-refresh"]
    assert len(workers) == 1 and workers[0].is_alive()   # ... while the refresh waits
    released.set()
    workers[0].join(5)
    assert calls == ["aws-credentials-refresh"] and not workers[0].is_alive()
    assert verified(sign(e), {"AKIAROLE000000000002": ("role/secret/2", "role-token-2")})
