"""Plano's upstream settings honoured by the real upstream client (providers/http.py):
`overrides.upstream_tls_ca_path` and `upstream_connect_timeout`, a provider's `http_host`,
and the listener timeout bounding the time to the first byte, not the whole answer."""
from __future__ import annotations

import datetime
import ipaddress
import ssl
import time

import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from switchyard.common.config import parse_config
from switchyard.providers.adapters import openai_compat
from switchyard.providers.breaker import BreakerBoard
from switchyard.providers.execution import Executor
from switchyard.providers.http import ClientPool, Timeouts
from switchyard.providers.http_client import ConnectFailed
from switchyard.providers.retry import RetryPolicy
from tests.integration.test_providers_support import (
    FakeAdapter,
    FakeSSEParser,
    FakeUpstream,
    Step,
    entry,
    gen_request,
    kinds,
    plan,
)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(tmp_path):
    """A CA (its PEM written to ca.pem) and a server certificate for 127.0.0.1 it signed."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("test CA")).issuer_name(_name("test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tmp_path / "ca.pem"


@pytest.fixture
async def tls_upstream(tmp_path):
    ca = make_pki(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    async def answer(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]   # type: ignore[union-attr]
    yield ca, f"https://127.0.0.1:{port}"
    await runner.cleanup()


def config_with(overrides: dict, base_url: str = "https://127.0.0.1:1", **entry_keys):
    return parse_config({
        "version": "v0.4.0", "listeners": [{"type": "model", "name": "l", "port": 12000}],
        "model_providers": [{"model": "openai/gpt-4o", "access_key": "sk-t", "default": True,
                             "base_url": base_url, **entry_keys}],
        "overrides": overrides}, "cfg.yaml")


async def test_upstream_tls_ca_path_is_the_only_trust(tls_upstream):
    ca, url = tls_upstream
    trusting = config_with({"upstream_tls_ca_path": str(ca)}, url)
    pool = ClientPool.for_config(trusting)
    try:
        e = trusting.providers[0]
        for _ in range(2):
            reply = await pool.client(e).post(e.endpoint, b"{}", {})
            assert reply.status == 200 and orjson.loads(await reply.read()) == {"ok": True}
            reply.release()
        assert len(pool.client(e)._open) == 1   # the TLS connection was kept and reused
    finally:
        await pool.close()
    # Without the override the system store is used, which does not know this CA.
    plain = config_with({}, url)
    pool = ClientPool.for_config(plain)
    try:
        e = plain.providers[0]
        with pytest.raises(ConnectFailed) as failed:
            await pool.client(e).post(e.endpoint, b"{}", {})
        assert isinstance(failed.value.os_error, ssl.SSLCertVerificationError)
    finally:
        await pool.close()


async def test_upstream_connect_timeout_bounds_the_connect():
    config = config_with({"upstream_connect_timeout": "2500ms"})
    pool = ClientPool.for_config(config)
    try:
        assert pool.defaults.connect_s == 2.5
        client = pool.client(config.providers[0])
        assert client.connect_s == 2.5
    finally:
        await pool.close()
    pool = ClientPool.for_config(config_with({}))
    assert (pool.defaults.connect_s, pool.defaults.first_byte_s) == (10.0, 300.0)
    await pool.close()


async def test_http_host_is_sent_as_the_host_header():
    async with FakeUpstream() as up:
        config = config_with({}, up.url("v1").rsplit("/", 1)[0], http_host="api.example.com")
        e = config.providers[0]
        pool = ClientPool.for_config(config)
        try:
            reply = await pool.client(e).post(up.url("chat"), b"{}",
                                               openai_compat.build_headers(e, "", {}))
            reply.close()
        finally:
            await pool.close()
        assert up.headers["chat"][0]["host"] == "api.example.com"


@pytest.fixture
async def executor():
    pool = ClientPool(Timeouts(1.0, 5.0, 5.0))
    made: list[Executor] = []

    def make(entries):
        table = {x.name: x for x in entries}
        ex = Executor(table.get, pool, breakers=BreakerBoard(),
                      retry=RetryPolicy(base_s=0.01, cap_s=0.05),
                      adapters=lambda _: FakeAdapter, sse_parser=FakeSSEParser)
        made.append(ex)
        return ex
    yield make
    await pool.close()


async def test_listener_timeout_bounds_the_first_byte_not_the_whole_answer(executor):
    """Headers within the 0.5 s budget, then a body that takes 1.5 s: answered, not a 504."""
    async with FakeUpstream() as up:
        up.script("slow-body", Step(chunks=[b'{"id": "r1", ', b'"text": ', b'"whole"}'],
                                    chunk_gap_s=0.75,
                                    headers={"content-type": "application/json"}))
        ex = executor([entry("slow-body", up.url("slow-body"))])
        t0 = time.monotonic()
        batches = [b async for b in ex.generate(gen_request(plan("slow-body", timeout_s=0.5),
                                                            stream=False))]
        assert time.monotonic() - t0 >= 1.5
        assert "error" not in kinds(batches)
        texts = [ev.block_start.part.text.text for b in batches for ev in b.events
                 if ev.HasField("block_start")]
        assert texts == ["whole"]


async def test_no_first_byte_within_the_listener_timeout_is_a_504(executor):
    async with FakeUpstream() as up:
        up.script("silent", Step(delay_s=2.0, body=b"{}"))
        ex = executor([entry("silent", up.url("silent"))])
        t0 = time.monotonic()
        batches = [b async for b in ex.generate(gen_request(plan("silent", timeout_s=0.5),
                                                            stream=False))]
        assert time.monotonic() - t0 < 1.5
        (err,) = [ev.error for b in batches for ev in b.events if ev.HasField("error")]
        assert (err.http_status, err.type) == (504, "timeout")
