"""Text access logs for ``logpipe query``: nginx ``combined`` and ingress-nginx ``upstreaminfo`` files.

DuckDB reads JSON lines; a file whose first lines are text in a known nginx format is read from a
temporary JSON-lines copy instead, each line cut by the consumer's own patterns
(``parsers/access_text.py``) into the nginx variables it holds, with ``$request`` split into
``request_method`` and ``request_uri`` as the consumer maps it (method, path up to ``?``). So the
same field names work (``status``, ``path``, ``request_time``, ``time`` from ``$time_local``) and the
counts equal what the consumer indexes. A line of no known format is copied as it is and counted
as malformed, like any line that is not JSON. ``--access-format`` chooses the format instead of
sniffing it, as a shipper rule's ``format`` does for the consumer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson

from logpipe.tools.query.inputs import Inputs, open_text_lines
from parsers.access_text import as_object, split_text

SNIFF_LINES = 20


def looks_like_text(path: Path) -> bool:
    """Whether most of the first non-blank lines of ``path`` are text lines of a known format."""
    seen = matched = 0
    with open_text_lines(path) as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            seen += 1
            matched += split_text(line) is not None
            if seen >= SNIFF_LINES:
                break
    return seen > 0 and matched * 2 > seen


def json_line(line: bytes, only: str | None = None) -> bytes:
    """One text line as the JSON object of its variables (the line itself when no format matches);
    ``only``: the one format to try."""
    split = split_text(line, only)
    if split is None:
        return line
    obj = as_object(split[1], [False])
    parts = obj.get("request", "").split(" ")
    if len(parts) == 3 and parts[0].isalpha() and parts[2].startswith("HTTP/"):
        obj["request_method"], obj["request_uri"] = parts[0], parts[1]
    return orjson.dumps(obj)


def convert_text_inputs(inputs: Inputs, chosen: str = "auto") -> int:
    """Swap each text input for its JSON-lines copy; returns how many inputs were converted.

    ``chosen`` is ``--access-format``: ``auto`` sniffs each file, ``json`` converts none, and
    ``combined``/``upstreaminfo`` read every file as that one format (as a shipper rule's ``format``
    makes the consumer do).
    """
    if chosen == "json":
        return 0
    only = None if chosen == "auto" else chosen
    converted = 0
    for index, path in enumerate(list(inputs.paths)):
        if only is None and not looks_like_text(path):
            continue
        fd, name = tempfile.mkstemp(prefix="logpipe-query-text-", suffix=".log")
        try:
            with open(fd, "wb") as out, open_text_lines(path) as src:
                for line in src:
                    body = line.rstrip(b"\r\n")
                    out.write((json_line(body, only) if body.strip() else body) + b"\n")
        except BaseException:
            os.unlink(name)
            raise
        inputs.replace(index, Path(name))
        converted += 1
    return converted
