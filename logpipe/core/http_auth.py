"""Basic auth and TLS of an HTTP client (Alertmanager's channel, restore and ``logpipe alerts list``).

:class:`HttpClientAuth` is mixed into a config model; :func:`auth_header` reads the password at each
call (a rotated file is used at once) and :func:`client_ssl` gives the TLS context for https URLs.
"""

from __future__ import annotations

import base64
import ssl

from pydantic import model_validator

from logpipe.core.config_base import StrictModel
from logpipe.core.secrets import Secret, SecretValue, secret_value


class HttpClientAuth(StrictModel):
    """Credentials and TLS trust for an HTTP server that asks for them."""

    username: str | None = None
    """Basic auth user; the password from ``password_file``, ``password`` or the service's variable."""
    password: Secret | None = None
    """Basic auth password inline (prefer ``password_file``)."""
    password_file: str | None = None
    """File holding the basic auth password (a mounted Secret); read again when it changes."""
    ca_file: str | None = None
    """PEM CA of the server's certificate for https URLs (unset: the system trust store)."""
    verify_tls: bool = True
    """Verify the server's certificate and host name (turn off only for a lab server)."""

    @model_validator(mode="after")
    def _auth_consistent(self) -> HttpClientAuth:
        if self.password is not None and self.password_file is not None:
            raise ValueError("password and password_file are both set — fix: keep one (the file)")
        if (self.password is not None or self.password_file is not None) and self.username is None:
            raise ValueError("a password without username — fix: set username too")
        return self

    def password_value(self, key: str, env: str | None) -> SecretValue:
        return secret_value(key, self.password, self.password_file, env)


ALERTMANAGER_PASSWORD_ENV = "LOGPIPE_ALERTMANAGER_PASSWORD"


def auth_header(auth: HttpClientAuth, key: str, env: str | None) -> dict[str, str]:
    """``{"Authorization": "Basic ..."}`` when a user is set, else ``{}``; raises
    :class:`~logpipe.core.secrets.SecretUnavailable` when the password cannot be read."""
    if auth.username is None:
        return {}
    pw = auth.password_value(key, env).require()
    token = base64.b64encode(f"{auth.username}:{pw}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def client_ssl(auth: HttpClientAuth) -> ssl.SSLContext | bool:
    """What aiohttp's ``ssl=`` takes: a context trusting ``ca_file``, ``False`` when not verifying,
    ``True`` (the default trust) otherwise."""
    if not auth.verify_tls:
        return False
    if auth.ca_file:
        return ssl.create_default_context(cafile=auth.ca_file)
    return True
