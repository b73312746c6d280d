"""Basic auth and TLS trust of HTTP clients (Alertmanager): checks, header per call, rotation."""

from __future__ import annotations

import base64
import os
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from logpipe.core.http_auth import ALERTMANAGER_PASSWORD_ENV, HttpClientAuth, auth_header, client_ssl


def decoded(headers: dict[str, str]) -> str:
    return base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode()


def test_no_user_no_header_and_default_trust() -> None:
    assert auth_header(HttpClientAuth(), "k", None) == {}
    assert client_ssl(HttpClientAuth()) is True
    assert client_ssl(HttpClientAuth(verify_tls=False)) is False


def test_the_password_file_is_read_at_each_call(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("first\n")
    auth = HttpClientAuth(username="logpipe", password_file=str(f))
    assert decoded(auth_header(auth, "k", None)) == "logpipe:first"
    new = tmp_path / "pw.new"
    new.write_text("second")
    os.replace(new, f)
    assert decoded(auth_header(auth, "k", None)) == "logpipe:second"


def test_the_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALERTMANAGER_PASSWORD_ENV, "from-env")
    assert decoded(auth_header(HttpClientAuth(username="u"), "k", ALERTMANAGER_PASSWORD_ENV)) == "u:from-env"


def test_a_password_needs_a_user_and_one_source() -> None:
    with pytest.raises(ValidationError, match="without username"):
        HttpClientAuth(password_file="/pw")
    with pytest.raises(ValidationError, match="both set"):
        HttpClientAuth.model_validate({"username": "u", "password": "x", "password_file": "/pw"})


def test_a_ca_file_makes_a_verifying_context(tmp_path: Path) -> None:
    from logpipe.dev.services.tls import ensure_ca

    ca, _ = ensure_ca(tmp_path)
    ctx = client_ssl(HttpClientAuth(ca_file=str(ca)))
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
