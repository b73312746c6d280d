"""The Kafka security model: consistent keys, and the client settings and messages derived from it."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from logpipe.core.kafka_security import (
    KafkaSecurity,
    KafkaSecurityError,
    aiokafka_kwargs,
    diagnose,
    librdkafka_settings,
    probe,
    ssl_context,
)
from logpipe.dev.services.tls import ensure_ca, issue


def scram(tmp_path: Path, **over: object) -> KafkaSecurity:
    pw = tmp_path / "pw"
    pw.write_text("hunter22\n")
    ca, _ = ensure_ca(tmp_path / "ca")
    data: dict[str, object] = {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "logpipe",
        "sasl_password_file": str(pw), "ssl_cafile": str(ca),
    }
    data.update(over)
    return KafkaSecurity.model_validate(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_username": "u"}, "needs sasl_mechanism"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"}, "needs sasl_username"),
        ({"sasl_username": "u"}, "sasl_\\* keys are set but security_protocol is PLAINTEXT"),
        ({"ssl_cafile": "/ca.pem"}, "ssl_\\* keys are set but security_protocol is PLAINTEXT"),
        ({"security_protocol": "SSL", "ssl_certfile": "/c.pem"}, "ssl_certfile and ssl_keyfile go together"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u",
          "sasl_password": "x", "sasl_password_file": "/f"}, "both set"),
        ({"sasl_mechanism": "GSSAPI"}, "PLAIN"),
    ],
)
def test_inconsistent_keys_are_rejected_with_the_fix(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSecurity.model_validate(data)


def test_plaintext_needs_nothing() -> None:
    sec = KafkaSecurity()
    assert aiokafka_kwargs(sec) == {"security_protocol": "PLAINTEXT"}
    assert librdkafka_settings(sec) == {"security.protocol": "plaintext"}
    assert ssl_context(sec) is None


def test_sasl_ssl_maps_to_aiokafka_and_librdkafka(tmp_path: Path) -> None:
    sec = scram(tmp_path)
    kw = aiokafka_kwargs(sec)
    assert kw["sasl_mechanism"] == "SCRAM-SHA-512" and kw["sasl_plain_password"] == "hunter22"
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    rd = librdkafka_settings(sec)
    assert rd["security.protocol"] == "sasl_ssl" and rd["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert rd["ssl.ca.location"] == sec.ssl_cafile and rd["ssl.endpoint.identification.algorithm"] == "https"
    assert "hunter22" not in repr(sec)


def test_the_password_file_is_read_again_for_the_next_client(tmp_path: Path) -> None:
    sec = scram(tmp_path)
    (tmp_path / "pw").write_text("rotated-pw")
    assert aiokafka_kwargs(sec)["sasl_plain_password"] == "rotated-pw"


def test_mutual_tls_loads_the_client_certificate(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "ca")
    client = issue(tmp_path / "ca", "client", ["c"], ca, client=True)
    sec = KafkaSecurity(security_protocol="SSL", ssl_cafile=str(ca[0]), ssl_certfile=str(client.cert),
                        ssl_keyfile=str(client.key), ssl_check_hostname=False)
    ctx = ssl_context(sec)
    assert ctx is not None and not ctx.check_hostname
    bad = KafkaSecurity(security_protocol="SSL", ssl_certfile=str(client.key), ssl_keyfile=str(client.key))
    with pytest.raises(KafkaSecurityError, match=r"ssl_certfile/ssl_keyfile .* cannot load them"):
        ssl_context(bad)


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    sec = KafkaSecurity(security_protocol="SSL", ssl_cafile=str(tmp_path / "nope.pem"))
    with pytest.raises(KafkaSecurityError, match=r"kafka\.ssl_cafile .*nope\.pem: cannot load it"):
        ssl_context(sec)


def test_diagnose_turns_a_logged_sasl_failure_into_one_line_without_the_password(tmp_path: Path) -> None:
    sec = scram(tmp_path)
    logged = ['Unable connect to "b:9093": [Error 58] SaslAuthenticationFailed: Authentication failed hunter22']
    line = diagnose(ConnectionError("Unable to bootstrap"), sec, "b:9093", logged)
    assert line.startswith("kafka: broker b:9093 (SASL_SSL/SCRAM-SHA-512): authentication failed for user")
    assert "fix:" in line and "\n" not in line and "hunter22" not in line


async def test_probe_detects_a_plaintext_client_on_a_tls_port(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "ca")
    server_cert = issue(tmp_path / "ca", "srv", ["localhost"], ca)
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(server_cert.cert, server_cert.key)

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read(100)
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(KafkaSecurityError, match="expects TLS"):
            await probe(KafkaSecurity(), f"127.0.0.1:{port}", timeout=3)
        with pytest.raises(KafkaSecurityError, match="not trusted"):
            await probe(KafkaSecurity(security_protocol="SSL"), f"localhost:{port}", timeout=3)
        with pytest.raises(KafkaSecurityError, match=r"not for host .127\.0\.0\.1."):
            await probe(KafkaSecurity(security_protocol="SSL", ssl_cafile=str(ca[0])), f"127.0.0.1:{port}", 3)
        await probe(KafkaSecurity(security_protocol="SSL", ssl_cafile=str(ca[0])), f"localhost:{port}", 3)
    finally:
        server.close()
        await server.wait_closed()
