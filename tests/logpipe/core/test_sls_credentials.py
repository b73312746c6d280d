"""SLS credentials: files re-read when rotated, the dev key when nothing is set, errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logpipe.core.secrets import SecretUnavailable
from logpipe.core.sls_credentials import DEV_ACCESS_KEY_ID, SlsCredentials, credentials_provider


def test_a_rotated_sts_token_file_is_used_on_the_next_request(tmp_path: Path) -> None:
    secret, token = tmp_path / "secret", tmp_path / "token"
    secret.write_text("s3cr3t-value\n")
    token.write_text("token-one")
    creds = SlsCredentials(
        access_key_id="STS.id", access_key_secret_file=str(secret), security_token_file=str(token)
    )
    provider = credentials_provider(creds)
    first = provider.get_credentials()
    assert (first.get_access_key_id(), first.get_access_key_secret(), first.get_security_token()) == (
        "STS.id", "s3cr3t-value", "token-one"
    )
    token.write_text("token-two, longer")  # Kubernetes swaps the mounted file
    os.utime(token, ns=(1, 1))
    assert provider.get_credentials().get_security_token() == "token-two, longer"
    assert "s3cr3t-value" not in repr(first) and "s3cr3t-value" not in repr(creds)


def test_nothing_configured_means_the_local_dev_servers_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert credentials_provider(SlsCredentials()).get_credentials().get_access_key_id() == DEV_ACCESS_KEY_ID


def test_an_id_without_its_secret_is_an_error_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-id")
    with pytest.raises(SecretUnavailable, match="access_key_secret"):
        credentials_provider(SlsCredentials()).get_credentials()
