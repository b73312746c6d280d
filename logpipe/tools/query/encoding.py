"""Input lines that are not UTF-8: copies decoded with replacement, so DuckDB reads them.

DuckDB's JSON readers reject a line whose bytes are not UTF-8 as if it were malformed; nginx
writes such lines (request bytes >= 0x80 as they came, see ``parsers/encoding.py``) and the
consumer indexes them. So that ``logpipe query`` counts what the consumer indexes, a file holding
malformed lines is checked once: when some of its lines are JSON objects once decoded with U+FFFD
(Python's ``"replace"``, the consumer's rule), the query reads a temporary copy where every line that
is not UTF-8 is so decoded, and reports how many lines were "decoded with replacement" on stderr.
Files without malformed lines are never copied (such a line always shows up as a malformed
candidate first, see ``engine.py``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from logpipe.tools.query.inputs import is_malformed, open_text_lines

_CHUNK = 8 << 20


def replaced_copy(path: Path) -> tuple[Path, int] | None:
    """A temporary copy of ``path`` (decompressed) with its lines that are not UTF-8 decoded with
    replacement, and how many of them are then JSON objects; None (no copy) when that is none."""
    fd, name = tempfile.mkstemp(prefix="logpipe-query-utf8-", suffix=".log")
    recovered = 0
    try:
        with open(fd, "wb") as out, open_text_lines(path) as src:
            tail = b""
            while chunk := src.read(_CHUNK):
                chunk = tail + chunk
                cut = chunk.rfind(b"\n") + 1
                body, tail = chunk[:cut], chunk[cut:]
                recovered += _write(out, body)
            recovered += _write(out, tail)
    except BaseException:
        os.unlink(name)
        raise
    if not recovered:
        os.unlink(name)
        return None
    return Path(name), recovered


def _write(out: BinaryIO, body: bytes) -> int:
    """Write ``body`` (whole lines) with replacement where needed; returns the lines recovered."""
    try:
        body.decode()
    except UnicodeDecodeError:
        pass
    else:
        out.write(body)  # the usual chunk: valid UTF-8, copied as is
        return 0
    recovered = 0
    lines = body.split(b"\n")
    for i, line in enumerate(lines):
        try:
            line.decode()
        except UnicodeDecodeError:
            line = lines[i] = line.decode("utf-8", "replace").encode()
            if is_malformed(line) is False:
                recovered += 1
    out.write(b"\n".join(lines))
    return recovered
