"""Lines whose bytes are not UTF-8: decoded with U+FFFD, flagged, the original bytes kept.

nginx writes bytes >= 0x80 of a request (a Latin-1 ``User-Agent``, raw bytes in the path) as they
came, and ``escape=json`` escapes only quotes, backslashes and control characters, so a line can be
valid JSON except for its encoding. Such a line is indexed, not dead-lettered: invalid sequences
become U+FFFD (Python's ``"replace"`` error handler: one U+FFFD per maximal invalid subpart, the
same rule DuckDB and the WHATWG decoder use), the document gets the flag ``invalid_utf8``, and the
line's original bytes are kept base64-encoded in ``logpipe.original_base64`` (mapped ``binary``:
stored, not searchable; only on such lines). ``base64 -d`` of that field gives the bytes back.

Every parser goes through here: access lines (``access.py``), app and CRI content (``app.py``),
spans (``span.py``). The native access encoder declines such lines (it validates UTF-8 strictly),
so they always take this path.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from parsers.document import Draft

INVALID_UTF8 = "invalid_utf8"
ORIGINAL_FIELD = "original_base64"  # under ``logpipe``


def keep_original(value: bytes, draft: Draft) -> None:
    """Flag ``draft`` ``invalid_utf8`` and keep ``value`` base64 in ``logpipe.original_base64``."""
    draft.flag(INVALID_UTF8)
    draft.doc["logpipe"][ORIGINAL_FIELD] = base64.b64encode(value).decode("ascii")


def decode_text(value: bytes, draft: Draft) -> str:
    """The line as text; invalid UTF-8 is replaced, flagged and its bytes kept (see the module doc)."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        keep_original(value, draft)
        return value.decode("utf-8", "replace")


def loads(value: bytes, draft: Draft) -> tuple[Any, str | None]:
    """``orjson.loads(value)``, and for bytes that are not UTF-8 the same on the text decoded with
    replacement (then flagged and kept, see the module doc).

    Returns ``(object, text)``: ``text`` is the replaced text when that was needed, else None (the
    bytes are valid UTF-8). Raises :class:`orjson.JSONDecodeError` as ``orjson.loads`` would for a
    line that is not JSON whatever its encoding.
    """
    try:
        return orjson.loads(value), None
    except orjson.JSONDecodeError as exc:
        try:
            value.decode()
        except UnicodeDecodeError:
            text = value.decode("utf-8", "replace")
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise exc from None  # not JSON either way: report the original error
            keep_original(value, draft)
            return obj, text
        raise
