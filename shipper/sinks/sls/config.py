"""Configuration of the SLS sink (``sink: {type: sls, ...}`` in the shipper config).

Credentials are the shared :class:`~logpipe.core.sls_credentials.SlsCredentials` keys (the SLS
source's too): an AccessKey id and secret and an optional STS token, each from a ``*_file`` (a
mounted Secret, re-read when it changes: a rotated STS token is used on the next request), the
file itself or an environment variable. With none, the dev server's key (``logpipe dev`` /
``logpipe/dev/services/sls/``) is used, so a local run needs no configuration.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from logpipe.core.durations import Duration
from logpipe.core.sls_credentials import DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET, SlsCredentials

__all__ = ["DEV_ACCESS_KEY_ID", "DEV_ACCESS_KEY_SECRET", "SlsSinkConfig"]


class SlsSinkConfig(SlsCredentials):
    """Where lines go in SLS, how they are grouped, and how many requests run at once."""

    type: Literal["sls"] = "sls"
    """Selects this sink in the shipper config."""
    endpoint: str = "http://127.0.0.1:17010"
    """Service endpoint, e.g. ``https://cn-hangzhou.log.aliyuncs.com`` (the default is the dev server)."""
    project: str = "logpipe"
    """SLS project."""
    logstore: str = "logpipe-{log_type}"
    """Logstore per line; ``{log_type}`` (access, app, stdout, trace) and ``{namespace}`` are filled in."""
    dead_letter_logstore: str = "logpipe-deadletter"
    """Logstore of dead-lettered lines (over-long with ``long_lines: dead_letter``, or refused by SLS
    and cut to ``pipeline.dead_letter_max_bytes``); the reason is in their ``flags`` content."""
    topic: Literal["component", "log_type", "namespace", "none"] = "component"
    """What ``__topic__`` holds."""
    compression: Literal["lz4", "none"] = "lz4"
    """Body compression of PutLogs (``x-log-compresstype``)."""
    max_in_flight: int = Field(default=4, ge=1, le=64)
    """PutLogs requests running at once (each holds one worker thread: the SDK is synchronous)."""
    max_group_lines: int = Field(default=4096, ge=1, le=40960)
    """Most lines per LogGroup (one PutLogs request); a batch is split beyond it."""
    max_group_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024, le=9 * 1024 * 1024)
    """Most line bytes per LogGroup (SLS refuses bodies over 10 MB)."""
    request_timeout: Duration = 30.0
    """How long one PutLogs request may take, e.g. ``30s``."""

    @field_validator("endpoint")
    @classmethod
    def _endpoint_ok(cls, v: str) -> str:
        rest = v.split("://", 1)[1] if "://" in v else v
        if not rest or rest.startswith((":", "/")) or (v.split("://")[0] not in ("http", "https") and "://" in v):
            raise ValueError(f"invalid endpoint {v!r} — fix: use e.g. https://cn-hangzhou.log.aliyuncs.com")
        return v.rstrip("/")

    @field_validator("logstore")
    @classmethod
    def _logstore_ok(cls, v: str) -> str:
        try:
            v.format(log_type="access", namespace="default")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                f"invalid logstore template {v!r} — fix: use only {{log_type}} and {{namespace}}"
            ) from None
        return v

    def secret(self) -> str:
        """The current AccessKey secret (a file, the config, the environment, else the dev server's)."""
        return self.values()[1].get() or DEV_ACCESS_KEY_SECRET

    def logstore_for(self, log_type: str, namespace: str) -> str:
        return self.logstore.format(log_type=log_type, namespace=namespace)
