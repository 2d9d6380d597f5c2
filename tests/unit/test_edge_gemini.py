"""The Gemini routes in-process with the fake backends of test_edge_app: paths, streaming
framings, countTokens, model listing, keys from x-goog-api-key or ?key=, Google's errors."""
from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from starlette.testclient import TestClient

from tests.unit.test_edge_app import AUTH, FakeBackends, make_client

BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
Client = tuple[TestClient, FakeBackends]


@pytest.fixture
def gw() -> Iterator[Client]:
    yield from make_client()


@pytest.fixture
def gw_auth() -> Iterator[Client]:
    yield from make_client(AUTH)


@pytest.mark.parametrize("version", ["v1beta", "v1"])
@pytest.mark.parametrize("model", ["gpt-4o-mini", "models/gpt-4o-mini"])
def test_generate_content_on_both_versions(gw, version, model):
    client, be = gw
    path_model = model if model.startswith("models/") else f"models/{model}"
    r = client.post(f"/{version}/{path_model}:generateContent", json=BODY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["candidates"][0]["content"]["parts"] == [{"text": "Hello there"}]
    assert body["modelVersion"] == "gpt-4o-mini" and body["responseId"]
    assert body["usageMetadata"]["totalTokenCount"] == 5
    (sent,) = be.mux.sent
    assert sent.request.model == "gpt-4o-mini" and not sent.request.stream
    assert be.state.rows == {}   # Gemini has no response ids: never stored


def test_stream_with_alt_sse_is_sse(gw):
    client, be = gw
    r = client.post("/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse", json=BODY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = [orjson.loads(line[6:]) for line in r.text.splitlines()
              if line.startswith("data: ")]
    assert "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"]) \
        == "Hello there"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert be.mux.sent[0].request.stream


def test_stream_without_alt_is_one_json_array(gw):
    client, _ = gw
    r = client.post("/v1beta/models/gpt-4o-mini:streamGenerateContent", json=BODY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    chunks = r.json()
    assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_the_path_model_wins_over_the_body(gw):
    client, be = gw
    r = client.post("/v1beta/models/gpt-4o-mini:generateContent",
                    json={**BODY, "model": "models/other", "\x00switchyard.stream": "sse"})
    assert r.status_code == 200 and be.mux.sent[0].request.model == "gpt-4o-mini"
    assert not be.mux.sent[0].request.stream


def test_count_tokens_takes_contents_or_a_whole_request(gw):
    client, be = gw
    r = client.post("/v1beta/models/gpt-4o-mini:countTokens", json=BODY)
    assert r.status_code == 200 and r.json() == {"totalTokens": 7}
    r = client.post("/v1beta/models/gpt-4o-mini:countTokens",
                    json={"generateContentRequest": {"model": "models/gpt-4o-mini", **BODY}})
    assert r.status_code == 200 and r.json() == {"totalTokens": 7}
    assert [c.request.model for c in be.counted] == ["gpt-4o-mini", "gpt-4o-mini"]


@pytest.mark.parametrize("method, path, status, name", [
    ("POST", "/v1beta/models/nope:generateContent", 404, "NOT_FOUND"),
    ("POST", "/v1beta/models/gpt-4o-mini:embedContent", 404, "NOT_FOUND"),
    ("POST", "/v1beta/tunedModels/t1:generateContent", 404, "NOT_FOUND"),
    ("GET", "/v1beta/cachedContents", 404, "NOT_FOUND"),
    ("GET", "/v1beta/models/nope", 404, "NOT_FOUND"),
    ("DELETE", "/v1beta/models", 405, None),
])
def test_unknown_paths_and_models_answer_in_googles_format(gw, method, path, status, name):
    client, _ = gw
    r = client.request(method, path, json=BODY if method == "POST" else None)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == status and err["message"]
    if name:
        assert err["status"] == name


@pytest.mark.parametrize("content", [b"{", b"[1]", b""])
def test_bad_bodies_are_400_invalid_argument(gw, content):
    client, _ = gw
    r = client.post("/v1beta/models/gpt-4o-mini:generateContent", content=content)
    assert r.status_code == 400
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_candidate_count_two_is_a_400_naming_it(gw):
    client, be = gw
    r = client.post("/v1beta/models/gpt-4o-mini:generateContent",
                    json={**BODY, "generationConfig": {"candidateCount": 2}})
    assert r.status_code == 400 and "candidate" in r.json()["error"]["message"]
    assert be.mux.sent == []


def test_model_listing_in_googles_shape(gw):
    client, _ = gw
    listed = client.get("/v1beta/models").json()["models"]
    assert listed[0]["name"] == "models/gpt-4o-mini"
    assert "generateContent" in listed[0]["supportedGenerationMethods"]
    # /v1/models is OpenAI's unless Google's SDK asks (it sends x-goog-api-key).
    assert client.get("/v1/models").json()["object"] == "list"
    assert "models" in client.get("/v1/models", headers={"x-goog-api-key": "k"}).json()
    one = client.get("/v1/models/gpt-4o-mini", params={"key": "k"}).json()
    assert one["name"] == "models/gpt-4o-mini"
    assert client.get("/v1beta/models/models/gpt-4o-mini").json()["displayName"] == \
        "gpt-4o-mini"


def test_gateway_key_from_x_goog_api_key_or_query(gw_auth):
    client, be = gw_auth
    path = "/v1beta/models/gpt-4o-mini:generateContent"
    r = client.post(path, json=BODY)
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = client.post(path, json=BODY, headers={"x-goog-api-key": "key-limited"})
    assert r.status_code == 200
    r = client.post(path, params={"key": "key-limited"}, json=BODY)
    assert r.status_code == 200
    r = client.post("/v1beta/models/claude-3-5-haiku-20241022:generateContent", json=BODY,
                    headers={"x-goog-api-key": "key-limited"})
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    r = client.post(path, params={"key": "wrong"}, json=BODY)
    assert r.status_code == 401 and "wrong" not in r.text


def test_upstream_errors_keep_their_status(gw):
    from switchyard.common.errors import GatewayError
    client, be = gw
    be.mux.fail = GatewayError(429, "slow down", type="rate_limit", retry_after=2)
    r = client.post("/v1beta/models/gpt-4o-mini:generateContent", json=BODY)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json() == {"error": {"code": 429, "message": "slow down",
                                  "status": "RESOURCE_EXHAUSTED"}}
