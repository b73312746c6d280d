"""Secrets: values that come from a file or the environment and never appear in any output.

:class:`Secret` is the type of every secret config value: its ``repr``, ``str`` and JSON form are
``**********`` (pydantic's ``SecretStr`` underneath, so ``model_dump_json`` and validation errors
hide it too); only :meth:`Secret.reveal` gives the value, at the one place a client is built.

:class:`SecretValue` is where a secret is read from, in this order: a file (``*_file`` keys: a
Kubernetes Secret volume), the inline value, an environment variable. A file is re-read whenever
its identity, size or modification time changes (Kubernetes rotates a mounted Secret by swapping a
symlink), so a rotated token is used on the next call without a restart.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

MASK = "**********"


class Secret(SecretStr):
    """A secret string: shown as ``**********`` everywhere; :meth:`reveal` returns the value."""

    def reveal(self) -> str:
        return self.get_secret_value()

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"


class SecretUnavailable(Exception):
    """A secret's file cannot be read (the message names the key and the path, never the value)."""


@dataclass
class SecretValue:
    """A secret read from ``file``, else ``inline``, else the environment variable ``env``.

    ``key`` is the config key it belongs to (``kafka.sasl_password``), used in messages.
    """

    key: str
    inline: Secret | None = None
    file: Path | None = None
    env: str | None = None
    _stamp: tuple[int, int, int, int] | None = field(default=None, repr=False)
    _cached: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def configured(self) -> bool:
        """True when any source is set (for an env var: when it is present)."""
        return self.file is not None or self.inline is not None or bool(self.env and self.env in os.environ)

    def source(self) -> str:
        """Where the value comes from, for messages: ``file /run/secrets/x``, ``env X``, ``config``."""
        if self.file is not None:
            return f"file {self.file}"
        if self.inline is not None:
            return f"config key {self.key}"
        if self.env and self.env in os.environ:
            return f"environment variable {self.env}"
        return "nowhere (not set)"

    def get(self) -> str | None:
        """The current value (None when no source is set); a changed file is read again.

        Raises :class:`SecretUnavailable` when the file cannot be read.
        """
        if self.file is not None:
            return self._from_file(self.file)
        if self.inline is not None:
            return self.inline.reveal()
        if self.env:
            return os.environ.get(self.env)
        return None

    def require(self) -> str:
        """Like :meth:`get` but a missing value is an error naming the key and how to set it."""
        v = self.get()
        if v is None:
            hint = f"{self.key}_file, {self.key}" + (f" or the environment variable {self.env}" if self.env else "")
            raise SecretUnavailable(f"{self.key} is not set — fix: set {hint}")
        return v

    def _from_file(self, path: Path) -> str:
        try:
            st = path.stat()
        except OSError as exc:
            raise SecretUnavailable(
                f"{self.key}_file {path}: cannot read it ({exc.strerror}) — fix: mount the Secret or correct the path"
            ) from None
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if stamp == self._stamp and self._cached is not None:
                return self._cached
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise SecretUnavailable(f"{self.key}_file {path}: cannot read it ({why})") from None
            # A trailing newline is an artefact of `echo x > file`, never part of a password.
            self._cached = text.rstrip("\r\n")
            self._stamp = stamp
            return self._cached


def secret_value(key: str, inline: Secret | None, file: str | Path | None, env: str | None = None) -> SecretValue:
    """A :class:`SecretValue` from the config's ``<key>`` / ``<key>_file`` pair and an env var name."""
    return SecretValue(key=key, inline=inline, file=Path(file) if file is not None else None, env=env)


def redact(text: str, secrets: list[str | None] | tuple[str | None, ...]) -> str:
    """``text`` with every occurrence of the given secret values replaced by the mask."""
    for s in secrets:
        if s and len(s) >= 3:
            text = text.replace(s, MASK)
    return text


# Query parameters that carry credentials in the URLs of alert channels and tools (WeCom's robot
# `key=`, webhook tokens, signatures), and user:password@ in the authority.
_SECRET_PARAM = re.compile(
    r"(?i)([?&](?:key|token|access_token|secret|password|passwd|sign|signature|apikey|api_key|auth)=)[^&#\s'\"]+"
)
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")


def redact_urls(text: str) -> str:
    """``text`` with credentials in URLs masked: ``...send?key=**********``, ``https://**********@host``."""
    if "=" not in text and "@" not in text:
        return text
    text = _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, text)
    return _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)


def reveal(v: Any) -> Any:
    """The value of a :class:`Secret` (or of pydantic's ``SecretStr``), anything else unchanged."""
    return v.get_secret_value() if isinstance(v, SecretStr) else v
