"""Access logs (type ``access``): one JSON object per line -> an Elastic Common Schema document.

Fields come from the configured dialect (``logpipe/core/fields.py``, see ``fieldmap.py``); ``message``
is the original line; ``@timestamp`` is the line's own time (with its offset), else the shipper's
read time flagged ``timestamp_fallback``. A line that is not a JSON object is :class:`Unparseable`.
"""

from __future__ import annotations

import orjson

from parsers.document import Draft
from parsers.fieldmap import FieldMap
from parsers.result import Parsed, Unparseable


def parse_access(value: bytes, draft: Draft, fieldmap: FieldMap) -> Parsed | Unparseable:
    """Map one access line; the reason of an :class:`Unparseable` names the byte and the problem."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        hint = " (the shipper truncated this line)" if "truncated" in draft.flags else ""
        return Unparseable(f"invalid JSON at position {exc.pos}: {exc.msg}{hint}")
    if not isinstance(obj, dict):
        return Unparseable(f"expected a JSON object, got {type(obj).__name__}")
    if not fieldmap.apply(obj, draft, use_msg=False):
        draft.fallback_time()
    # orjson accepted the bytes, so they are valid UTF-8.
    draft.doc["message"] = value.decode().rstrip("\r\n")
    return Parsed(draft.finish(), "access")
