"""Alibaba Cloud credentials for SLS: an AccessKey pair and an optional STS token, from files or the environment.

Shared by the shipper's SLS sink and the consumer's SLS source. Every part can come from a file
(``*_file``: a mounted Kubernetes Secret), the config itself, or an environment variable
(``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` /
``ALIBABA_CLOUD_SECURITY_TOKEN`` by default, the names Alibaba Cloud's own tools read). The SDK
asks :func:`credentials_provider` for the credentials before signing each request and files are
re-read when they change, so a rotated STS token is used without a restart. With nothing
configured the local dev server's key is used, so a local run needs no configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from logpipe.core.config_base import StrictModel
from logpipe.core.secrets import Secret, SecretValue, secret_value

DEV_ACCESS_KEY_ID = "logpipe-dev"
DEV_ACCESS_KEY_SECRET = "logpipe-dev-secret"  # the local dev server's key: not a credential


class SlsCredentials(StrictModel):
    """Who logpipe is to SLS."""

    access_key_id: str | None = None
    """AccessKey id (not secret by itself); else ``access_key_id_file``, else ``access_key_id_env``."""
    access_key_id_file: str | None = None
    """File holding the AccessKey id."""
    access_key_id_env: str = "ALIBABA_CLOUD_ACCESS_KEY_ID"
    """Environment variable holding the AccessKey id."""
    access_key_secret: Secret | None = None
    """AccessKey secret; prefer ``access_key_secret_file`` or ``access_key_secret_env``."""
    access_key_secret_file: str | None = None
    """File holding the AccessKey secret (re-read when it changes)."""
    access_key_secret_env: str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
    """Environment variable holding the AccessKey secret."""
    security_token: Secret | None = None
    """STS token of temporary credentials; prefer ``security_token_file``."""
    security_token_file: str | None = None
    """File holding the STS token; a rotated token is picked up on the next request."""
    security_token_env: str = "ALIBABA_CLOUD_SECURITY_TOKEN"
    """Environment variable holding the STS token."""

    def values(self) -> tuple[SecretValue, SecretValue, SecretValue]:
        """Where the id, the secret and the token are read from."""
        key_id = SecretValue(
            key="access_key_id",
            inline=Secret(self.access_key_id) if self.access_key_id is not None else None,
            file=None,
            env=self.access_key_id_env,
        )
        if self.access_key_id_file is not None:
            key_id = secret_value("access_key_id", None, self.access_key_id_file, self.access_key_id_env)
        secret = secret_value(
            "access_key_secret", self.access_key_secret, self.access_key_secret_file, self.access_key_secret_env
        )
        token = secret_value("security_token", self.security_token, self.security_token_file, self.security_token_env)
        return key_id, secret, token


@dataclass(frozen=True, slots=True)
class CurrentCredentials:
    """The SDK's ``Credentials`` interface (the three getters its signers call), without the SDK."""

    access_key_id: str
    access_key_secret: str
    security_token: str

    def get_access_key_id(self) -> str:
        return self.access_key_id

    def get_access_key_secret(self) -> str:
        return self.access_key_secret

    def get_security_token(self) -> str:
        return self.security_token

    def __repr__(self) -> str:
        return f"CurrentCredentials(access_key_id={self.access_key_id!r}, access_key_secret='**********')"


class FileCredentialsProvider:
    """The SDK's ``CredentialsProvider`` interface (``get_credentials()``, asked before signing each
    request) over :class:`SlsCredentials`, files re-read on change. Duck-typed, so the core does not
    depend on the SDK."""

    def __init__(self, creds: SlsCredentials) -> None:
        self._key_id, self._secret, self._token = creds.values()

    def get_credentials(self) -> CurrentCredentials:
        key_id = self._key_id.get()
        secret = self._secret.get()
        if key_id is None and secret is None:
            key_id, secret = DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET
        if key_id is None:
            key_id = self._key_id.require()  # raises, naming the key and how to set it
        if secret is None:
            secret = self._secret.require()
        return CurrentCredentials(key_id, secret, self._token.get() or "")

    def secrets(self) -> list[str | None]:
        """The current secret values, for :func:`logpipe.core.secrets.redact` of error texts."""
        return [self._secret.get(), self._token.get()]


def credentials_provider(creds: SlsCredentials) -> FileCredentialsProvider:
    return FileCredentialsProvider(creds)
