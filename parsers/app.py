"""Application lines (type ``app``, and the content of CRI lines): a JSON object or plain text.

A JSON object is mapped with the dialect like an access line, except that its ``msg``/``message``
becomes ``message`` (the whole line when it has none). Anything else is plain text: ``message`` is
the line, ``log.level`` is guessed only when the line starts with a level (see ``levels.py``), and
``@timestamp`` comes from a leading timestamp with an explicit offset when there is one.
A line that starts with ``{`` but is not valid JSON is kept as text and flagged ``invalid_json``.
Bytes that are not UTF-8 are decoded with replacement and flagged ``invalid_utf8`` (``encoding.py``).
"""

from __future__ import annotations

import orjson

from parsers.document import Draft
from parsers.encoding import decode_text, loads
from parsers.fieldmap import FieldMap
from parsers.levels import guess_level, leading_time
from parsers.result import Parsed


def map_content(value: bytes, draft: Draft, fieldmap: FieldMap) -> bool:
    """Map a JSON-object-or-text line into ``draft``; returns whether it set ``@timestamp``."""
    if value[:1] == b"{" or value.lstrip()[:1] == b"{":
        try:
            obj, text = loads(value, draft)
        except orjson.JSONDecodeError:
            draft.flag("invalid_json")
        else:
            if isinstance(obj, dict):
                has_time = fieldmap.apply(obj, draft, use_msg=True)
                if "message" not in draft.doc:
                    draft.doc["message"] = (text if text is not None else value.decode()).rstrip("\r")
                return has_time
    text = decode_text(value, draft).rstrip("\r")
    draft.doc["message"] = text
    if not text[:1].isdigit():
        level = guess_level(text)
        if level is not None:
            draft.put(("log", "level"), level)
        return False
    lt = leading_time(text)  # parsed once, for the level after it and for the time
    level = guess_level(text, lt)
    if level is not None:
        draft.put(("log", "level"), level)
    if lt is not None and not lt[1]:  # a time without offset would be a guess
        return draft.event_time(lt[0])
    return False


def parse_app(value: bytes, draft: Draft, fieldmap: FieldMap) -> Parsed:
    """An ``app`` line as a document (never fails: any bytes are at least a message)."""
    if not map_content(value, draft, fieldmap):
        draft.fallback_time()
    return Parsed(draft.finish(), "app")
