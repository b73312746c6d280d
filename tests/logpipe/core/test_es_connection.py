"""The Elasticsearch connection model: consistent keys, client settings, secrets from files or env."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from logpipe.core.config_base import ConfigError
from logpipe.core.es_connection import EsConnection, EsConnectionError, es_client_kwargs, es_connection

FP = "AB:" * 31 + "CD"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"password_file": "/pw"}, "a password without username"),
        ({"username": "u", "password": "x", "password_file": "/pw"}, "both set"),
        ({"username": "u", "api_key": "k"}, "username and api_key are both set"),
        ({"ca_file": "/ca.pem"}, "is not https"),
        ({"url": "https://es:9200", "ssl_fingerprint": "abc"}, "64 hex digits"),
    ],
)
def test_inconsistent_keys_are_rejected(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EsConnection.model_validate(data)


def test_basic_auth_from_a_file_with_a_ca_and_a_pinned_fingerprint(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    conn = EsConnection(url="https://es:9200", username="logpipe", password_file=str(pw), ca_file="/ca.pem",
                        ssl_fingerprint=FP)
    kw = es_client_kwargs(conn)
    assert kw["basic_auth"] == ("logpipe", "s3cret") and kw["ca_certs"] == "/ca.pem"
    assert kw["ssl_assert_fingerprint"] == FP.replace(":", "").lower()
    assert "s3cret" not in repr(conn) and "s3cret" not in conn.model_dump_json()


def test_password_and_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPIPE_ES_PASSWORD", "env-pw")
    assert es_client_kwargs(EsConnection(username="u"))["basic_auth"] == ("u", "env-pw")
    monkeypatch.setenv("LOGPIPE_ES_API_KEY", "env-key")
    assert es_client_kwargs(EsConnection())["api_key"] == "env-key"


def test_a_missing_password_is_named() -> None:
    with pytest.raises(EsConnectionError, match=r"elasticsearch\.password is not set"):
        es_client_kwargs(EsConnection(username="u"))


def test_cli_flags_become_a_connection_and_bad_ones_a_config_error() -> None:
    conn = es_connection("https://es:9200", username="u", password_file="/pw", api_key_file=None)
    assert conn.username == "u" and conn.api_key_file is None
    with pytest.raises(ConfigError, match="is not https"):
        es_connection("http://es:9200", ca_file="/ca.pem")
