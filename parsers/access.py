"""Access logs (type ``access``): one JSON object per line, or a text line of a known nginx format.

Fields come from the configured dialect (``logpipe/core/fields.py``, see ``fieldmap.py``); ``message``
is the original line; ``@timestamp`` is the line's own time (with its offset), else the shipper's
read time flagged ``timestamp_fallback``. A line starting with ``{`` or ``[`` that is not a JSON
object is :class:`Unparseable`; a line that is one except for its encoding (bytes that are not
UTF-8) is indexed, flagged ``invalid_utf8`` (see ``encoding.py``). Any other line is text: nginx
``combined`` or ingress-nginx ``upstreaminfo`` (``access_text.py``) mapped by the same dialect, else
kept as ``message`` and flagged ``unknown_format`` — unless it holds raw control bytes (nginx escapes
them in text logs): such a line is garbage, :class:`Unparseable`. A shipper rule may choose the
format instead (``format:`` → header ``lp.format``): ``json``, or one text format, then the only one tried.
"""

from __future__ import annotations

import re

import orjson

from parsers.access_text import FORMAT_NAMES, as_object, split_text
from parsers.document import Draft
from parsers.encoding import decode_text, keep_original, loads
from parsers.fieldmap import FieldMap
from parsers.result import Parsed, Unparseable

_JSON_START = (b"{", b"[", b"")
# nginx writes control bytes of a text line as \xHH: a line holding raw ones is no text access line.
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


def parse_access(value: bytes, draft: Draft, fieldmap: FieldMap, chosen: str | None = None) -> Parsed | Unparseable:
    """Map one access line; the reason of an :class:`Unparseable` names the byte and the problem.

    ``chosen`` is the format the shipper's rule chose (header ``lp.format``): ``json`` reads every line
    as JSON, ``combined``/``upstreaminfo`` every line as that text format; None, "" or ``auto``
    (or a name this version does not know, which is flagged ``unknown_access_format``) detect it.
    """
    if chosen:
        if chosen in FORMAT_NAMES:
            return parse_text_access(value, draft, fieldmap, chosen)
        if chosen not in ("json", "auto"):
            draft.flag("unknown_access_format")
            chosen = None
    if (chosen != "json" and value[:1] not in _JSON_START and value.lstrip()[:1] not in _JSON_START
            and not _CONTROL.search(value)):
        return parse_text_access(value, draft, fieldmap)
    try:
        obj, text = loads(value, draft)
    except orjson.JSONDecodeError as exc:
        hint = " (the shipper truncated this line)" if "truncated" in draft.flags else ""
        if chosen == "json":
            hint += " (the shipper's rule says this file is JSON: format json)"
        return Unparseable(f"invalid JSON at position {exc.pos}: {exc.msg}{hint}")
    if not isinstance(obj, dict):
        return Unparseable(f"expected a JSON object, got {type(obj).__name__}")
    if not fieldmap.apply(obj, draft, use_msg=False):
        draft.fallback_time()
    # orjson accepted the bytes (or their replaced text), so they decode.
    draft.doc["message"] = (text if text is not None else value.decode()).rstrip("\r\n")
    return Parsed(draft.finish(), "access")


def parse_text_access(value: bytes, draft: Draft, fieldmap: FieldMap, only: str | None = None) -> Parsed:
    """A text access line (never fails: a line of no known format is at least a message); ``only``:
    the one format to try."""
    line = value.rstrip(b"\r\n")
    split = split_text(line, only)
    if split is None:
        draft.flag("unknown_format")
        draft.doc["message"] = decode_text(line, draft)
        draft.fallback_time()
        return Parsed(draft.finish(), "access")
    bad_utf8 = [False]
    obj = as_object(split[1], bad_utf8)
    if bad_utf8[0]:
        keep_original(value, draft)
    if not fieldmap.apply(obj, draft, use_msg=False):
        draft.fallback_time()
    draft.doc["message"] = decode_text(line, draft)
    return Parsed(draft.finish(), "access")
