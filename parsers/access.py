"""Access logs (type ``access``): one JSON object per line -> an Elastic Common Schema document.

Fields come from the configured dialect (``logpipe/core/fields.py``, see ``fieldmap.py``); ``message``
is the original line; ``@timestamp`` is the line's own time (with its offset), else the shipper's
read time flagged ``timestamp_fallback``. A line that is not a JSON object is :class:`Unparseable`;
a line that is one except for its encoding (bytes that are not UTF-8) is indexed, flagged
``invalid_utf8`` (see ``encoding.py``).
"""

from __future__ import annotations

import orjson

from parsers.document import Draft
from parsers.encoding import loads
from parsers.fieldmap import FieldMap
from parsers.result import Parsed, Unparseable


def parse_access(value: bytes, draft: Draft, fieldmap: FieldMap) -> Parsed | Unparseable:
    """Map one access line; the reason of an :class:`Unparseable` names the byte and the problem."""
    try:
        obj, text = loads(value, draft)
    except orjson.JSONDecodeError as exc:
        hint = " (the shipper truncated this line)" if "truncated" in draft.flags else ""
        return Unparseable(f"invalid JSON at position {exc.pos}: {exc.msg}{hint}")
    if not isinstance(obj, dict):
        return Unparseable(f"expected a JSON object, got {type(obj).__name__}")
    if not fieldmap.apply(obj, draft, use_msg=False):
        draft.fallback_time()
    # orjson accepted the bytes (or their replaced text), so they decode.
    draft.doc["message"] = (text if text is not None else value.decode()).rstrip("\r\n")
    return Parsed(draft.finish(), "access")
