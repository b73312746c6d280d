"""The level of a plain-text line, guessed only when the line starts with it unambiguously.

Recognised at the very start of the line (after an optional leading timestamp): ``ERROR msg``,
``[WARN] msg``, ``error: msg``, ``Warning: msg``, ``ERROR:root:msg`` (Python logging), ``level=info``
(logfmt) and klog's ``E1127 10:00:00.000000 ...``. An upper-case token counts bare; other spellings
only with a colon or brackets, because ``Error handling improved`` is a sentence, not a level.
A level word anywhere later in the line is never used.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parsers.timestamps import parse_time

_LEVELS = {
    "TRACE": "trace",
    "DEBUG": "debug",
    "DBG": "debug",
    "INFO": "info",
    "NOTICE": "notice",
    "WARN": "warn",
    "WARNING": "warn",
    "ERROR": "error",
    "ERR": "error",
    "CRITICAL": "critical",
    "CRIT": "critical",
    "FATAL": "fatal",
    "PANIC": "panic",
}
_KLOG = {"I": "info", "W": "warn", "E": "error", "F": "fatal"}


def _token_level(token: str) -> str | None:
    decorated = False
    if token.startswith("[") and token.endswith("]") and len(token) > 2:
        token, decorated = token[1:-1], True
    elif ":" in token:
        head, _, _ = token.partition(":")
        token, decorated = head, True
    if token.startswith("level=") or token.startswith("lvl="):
        value = token.partition("=")[2].strip('"')
        return _LEVELS.get(value.upper())
    level = _LEVELS.get(token.upper())
    if level is None:
        if len(token) == 5 and token[0] in _KLOG and token[1:].isdigit():
            return _KLOG[token[0]]
        return None
    if token.isupper() or decorated:
        return level
    return None


def leading_time(text: str) -> tuple[datetime, bool, str] | None:
    """A timestamp that opens the line (``2026-11-27T10:00:00Z ...`` or ``2026-11-27 10:00:00,123 ...``):
    ``(aware datetime, assumed_utc, rest of the line)``; ``assumed_utc`` when it had no offset."""
    if len(text) < 20 or not text[:4].isdigit() or text[4] != "-":
        return None
    first, _, rest = text.partition(" ")
    candidates = [(first, rest)]
    if len(first) == 10:  # date and time separated by a space
        second, _, rest2 = rest.partition(" ")
        candidates.insert(0, (first + "T" + second, rest2))
    for stamp, remainder in candidates:
        parsed = parse_time(stamp)
        if parsed is not None:
            return parsed[0], parsed[1], remainder
    return None


_NOT_GIVEN: Any = object()


def guess_level(text: str, lead: tuple[datetime, bool, str] | None = _NOT_GIVEN) -> str | None:
    """The level a plain line starts with, or None when it is not unambiguous; ``lead``: the
    caller's ``leading_time(text)`` of a line starting with a digit (not parsed twice)."""
    head = text[:64].lstrip()
    if not head:
        return None
    if head[0].isdigit():
        lt = leading_time(text.lstrip()) if lead is _NOT_GIVEN else lead
        if lt is None:
            return None
        head = lt[2][:64].lstrip()
    token = head.split(None, 1)[0] if head else ""
    return _token_level(token) if token else None
