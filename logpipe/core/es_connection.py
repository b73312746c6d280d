"""How logpipe reaches a secured Elasticsearch: https with a CA file or a pinned fingerprint, basic
auth or an API key. One model for the consumer's ``elasticsearch:`` section and for ``logpipe
search``/``trace`` (flags and ``LOGPIPE_ES_*`` variables); one function to client settings.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator, model_validator

from logpipe.core.config_base import StrictModel, validate_mapping
from logpipe.core.secrets import Secret, SecretUnavailable, SecretValue, secret_value

PASSWORD_ENV = "LOGPIPE_ES_PASSWORD"
API_KEY_ENV = "LOGPIPE_ES_API_KEY"
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{64}$")


class EsConnectionError(Exception):
    """A credential of the Elasticsearch connection cannot be read (names the key, never a value)."""


class EsRefused(Exception):
    """Elasticsearch refused us for a security reason (credentials, TLS trust); ``str()`` is the one
    line to show: the URL, what was refused and the fix."""


class EsConnection(StrictModel):
    """Where Elasticsearch is and how to prove who we are to it."""

    url: str = "http://127.0.0.1:9200"
    """Base URL (several comma-separated URLs are nodes of one cluster); ``https://`` for TLS."""
    username: str | None = None
    """Basic auth user; its password from ``password_file``, ``password`` or ``LOGPIPE_ES_PASSWORD``."""
    password: Secret | None = None
    """Basic auth password inline (prefer ``password_file``)."""
    password_file: str | None = None
    """File holding the basic auth password (a mounted Secret)."""
    api_key: Secret | None = None
    """API key (the base64 ``id:key`` Elasticsearch returns as ``encoded``), instead of a user; prefer
    ``api_key_file`` or ``LOGPIPE_ES_API_KEY``."""
    api_key_file: str | None = None
    """File holding the API key."""
    ca_file: str | None = None
    """PEM file of the CA that signed the cluster's certificate (unset: the system trust store)."""
    ssl_fingerprint: str | None = None
    """SHA-256 fingerprint (hex, colons allowed) of the cluster's certificate, pinned instead of a CA;
    what Elasticsearch prints at its first start."""
    verify_certs: bool = True
    """Verify TLS certificates of https URLs (turn off only for a throwaway test cluster)."""

    @field_validator("ssl_fingerprint")
    @classmethod
    def _fingerprint_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        hexed = v.replace(":", "").strip()
        if not _FINGERPRINT.match(hexed):
            raise ValueError("must be a SHA-256 fingerprint, 64 hex digits (colons allowed) — fix: copy it from "
                             "`openssl x509 -noout -fingerprint -sha256 -in http_ca.crt`")
        return hexed.lower()

    @model_validator(mode="after")
    def _auth_consistent(self) -> EsConnection:
        if self.password is not None and self.password_file is not None:
            raise ValueError("password and password_file are both set — fix: keep one (the file)")
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("api_key and api_key_file are both set — fix: keep one (the file)")
        has_password = self.password is not None or self.password_file is not None
        if has_password and self.username is None:
            raise ValueError("a password without username — fix: set username too")
        if self.username is not None and (self.api_key is not None or self.api_key_file is not None):
            raise ValueError("username and api_key are both set — fix: use one way to authenticate")
        plain = [u for u in self.urls() if not u.startswith("https://")]
        if plain and (self.ca_file or self.ssl_fingerprint):
            raise ValueError(f"ca_file/ssl_fingerprint are set but {plain[0]} is not https — fix: use https:// URLs")
        return self

    def urls(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    def password_value(self) -> SecretValue:
        return secret_value("elasticsearch.password", self.password, self.password_file, PASSWORD_ENV)

    def api_key_value(self) -> SecretValue:
        return secret_value("elasticsearch.api_key", self.api_key, self.api_key_file, API_KEY_ENV)

    def secrets(self) -> list[str | None]:
        """The current secret values (for redacting text that might echo them)."""
        out: list[str | None] = []
        for v in (self.password_value(), self.api_key_value()):
            try:
                out.append(v.get())
            except SecretUnavailable:
                out.append(None)
        return out


def es_client_kwargs(conn: EsConnection) -> dict[str, Any]:
    """``AsyncElasticsearch`` keyword arguments for TLS and credentials (the URL list is separate).

    Raises :class:`EsConnectionError` when a credential file cannot be read.
    """
    kw: dict[str, Any] = {"verify_certs": conn.verify_certs}
    if conn.ca_file:
        kw["ca_certs"] = conn.ca_file
    if conn.ssl_fingerprint:
        kw["ssl_assert_fingerprint"] = conn.ssl_fingerprint
    return kw | es_auth_options(conn)


def es_auth_options(conn: EsConnection) -> dict[str, Any]:
    """The credentials alone, read now (``client.options(**...)`` per request picks up a rotated
    file); ``{}`` without credentials. Raises :class:`EsConnectionError` when a file is unreadable."""
    try:
        if conn.username is not None:
            return {"basic_auth": (conn.username, conn.password_value().require())}
        key = conn.api_key_value().get()
        return {"api_key": key} if key else {}
    except SecretUnavailable as exc:
        raise EsConnectionError(str(exc)) from None


def es_connection(url: str, **keys: Any) -> EsConnection:
    """The connection for the CLI tools from their flags (``None`` values left out); raises
    :class:`~logpipe.core.config_base.ConfigError` naming the flag's key. The secret values themselves
    come from files or ``LOGPIPE_ES_PASSWORD``/``LOGPIPE_ES_API_KEY``, never from a command line."""
    data = {"url": url, **{k: v for k, v in keys.items() if v is not None}}
    return validate_mapping(EsConnection, data, "command line")
