"""Email over SMTP against a local aiosmtpd server requiring STARTTLS and AUTH (self-signed cert)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY

from consumer.alerts.engine import AlertEngine
from tests.consumer.alerts.docs import ecs, rule_file


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the SMTP server accepted, and whether each session was TLS and authenticated."""

    messages: list[Message] = field(default_factory=list)
    sessions: list[tuple[bool, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd hook name
        self.messages.append(message_from_bytes(envelope.content))
        self.sessions.append((session.ssl is not None, session.auth_data))
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"alerts", b"pw-123")
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[tuple[Mailbox, int, Path]]:
    """An SMTP server on 127.0.0.1 that requires STARTTLS and AUTH: (mailbox, port, CA file)."""
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield box, port, cert
    finally:
        controller.stop()


def mail_engine(port: int, ca: Path, name: str, **extra: Any) -> AlertEngine:
    channel = {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "ca_file": str(ca),
        "username": "alerts",
        "password_env": "LOGPIPE_TEST_SMTP_PASSWORD",
        "from": "logpipe@example.invalid",
        "to": ["oncall@example.invalid", "pay@example.invalid"],
        "backoff": "10ms",
        **extra,
    }
    rf = rule_file(
        {
            "name": "pay-panic",
            "severity": "critical",
            "match": {"components": ["pay-gw"], "keywords": ["panic"]},
            "group_by": ["service.name"],
            "channels": [name],
        },
        channels={name: channel},
    )
    return AlertEngine(rf)


async def test_alert_mail_over_starttls_with_auth(
    smtp_server: tuple[Mailbox, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port, ca = smtp_server
    monkeypatch.setenv("LOGPIPE_TEST_SMTP_PASSWORD", "pw-123")
    name = f"mail-{uuid.uuid4().hex[:8]}"
    engine = mail_engine(port, ca, name)
    await engine.start()
    engine.observe(ecs("panic: ledger mismatch"))
    await engine.stop(flush_timeout=10)
    assert len(box.messages) == 1
    msg = box.messages[0]
    assert box.sessions == [(True, b"alerts")]  # delivered inside TLS, authenticated
    assert msg["Subject"] == "[FIRING] pay-panic critical pay-gw service_name=pay-gw"
    assert msg["To"] == "oncall@example.invalid, pay@example.invalid"
    body = msg.get_payload(decode=True).decode()
    assert "panic: ledger mismatch" in body
    assert "logpipe search panic --component pay-gw" in body
    assert (
        REGISTRY.get_sample_value("logpipe_alerts_notifications_sent_total", {"channel": name, "status": "firing"}) == 1
    )


async def test_wrong_password_is_a_counted_failure_not_retried(
    smtp_server: tuple[Mailbox, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port, ca = smtp_server
    monkeypatch.setenv("LOGPIPE_TEST_SMTP_PASSWORD", "wrong")
    name = f"mail-{uuid.uuid4().hex[:8]}"
    engine = mail_engine(port, ca, name, retries=3)
    await engine.start()
    engine.observe(ecs("panic: x"))
    await engine.stop(flush_timeout=10)
    assert box.messages == []
    assert REGISTRY.get_sample_value("logpipe_alerts_channel_failures_total", {"channel": name}) == 1
    dropped = REGISTRY.get_sample_value(
        "logpipe_alerts_notifications_dropped_total", {"channel": name, "reason": "retries_exhausted"}
    )
    assert dropped == 1


async def test_untrusted_certificate_is_refused(smtp_server: tuple[Mailbox, int, Path], tmp_path: Path) -> None:
    box, port, _ = smtp_server
    other_ca, _ = self_signed(tmp_path / "other" if (tmp_path / "other").mkdir() is None else tmp_path)
    name = f"mail-{uuid.uuid4().hex[:8]}"
    engine = mail_engine(port, other_ca, name, retries=0, password="pw-123", password_env=None)
    await engine.start()
    engine.observe(ecs("panic: x"))
    await engine.stop(flush_timeout=10)
    assert box.messages == []  # TLS verification failed before any credentials were sent
    assert REGISTRY.get_sample_value("logpipe_alerts_channel_failures_total", {"channel": name}) == 1
