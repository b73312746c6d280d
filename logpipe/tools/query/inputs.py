"""The files a query reads: paths, globs, rotated sets in order, stdin, and ``.gz``/``.zst``.

DuckDB reads the files itself (decompressing by extension); Python only orders them, spools
stdin to a temporary file (DuckDB needs to read it twice when there are malformed lines), peeks
at the first lines for unknown keys, and finds the first malformed line when there is one.
"""

from __future__ import annotations

import glob
import gzip
import io
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson
import zstandard

SAMPLE_LINES = 1000
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ROTATED = re.compile(r"^(?P<base>.*?)(?:[.-](?P<suffix>\d+))?(?P<ext>\.gz|\.zst)?$")


class InputError(ValueError):
    """A path that does not exist or a glob that matches nothing."""


@dataclass
class Inputs:
    """Resolved input files in read order; ``names`` are what messages show (``-`` for stdin)."""

    paths: list[Path]
    names: list[str]
    _tmp: list[Path] = field(default_factory=list)

    def display(self, index: int) -> str:
        return self.names[index]

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)

    def replace(self, index: int, path: Path) -> None:
        """Read the temporary file ``path`` in place of input ``index`` (same name in messages)."""
        self.paths[index] = path
        self._tmp.append(path)

    def cleanup(self) -> None:
        for p in self._tmp:
            p.unlink(missing_ok=True)


def rotation_key(path: str) -> tuple[str, int, str]:
    """Oldest first within a rotated set: ``a.log.3.gz``, ``a.log.2``, ``a.log.1``, ``a.log``.

    Date suffixes (``a.log-20261126.gz``) sort ascending, also before the live file.
    """
    m = _ROTATED.match(path)
    assert m is not None  # the pattern matches every string
    suffix = m.group("suffix")
    if suffix is None:
        return (m.group("base"), 1, "")
    if len(suffix) >= 8:  # a date: older is smaller
        return (m.group("base"), 0, suffix)
    return (m.group("base"), 0, f"{10**9 - int(suffix):010d}")


def resolve(args: list[str], stdin: BinaryIO | None = None) -> Inputs:
    """Expand globs, order rotated sets, spool stdin (``-`` or no args) to a temporary file."""
    if not args:
        args = ["-"]
    paths: list[Path] = []
    names: list[str] = []
    tmp: list[Path] = []
    for arg in args:
        if arg == "-":
            spooled = _spool(stdin if stdin is not None else sys.stdin.buffer)
            tmp.append(spooled)
            paths.append(spooled)
            names.append("-")
            continue
        if glob.has_magic(arg):
            matches = sorted((m for m in glob.glob(arg) if Path(m).is_file()), key=rotation_key)
            if not matches:
                raise InputError(f"{arg}: no file matches — fix: check the pattern (quote it for the shell)")
        else:
            if not Path(arg).is_file():
                raise InputError(f"{arg}: no such file")
            matches = [arg]
        for m in matches:
            paths.append(Path(m))
            names.append(m)
    return Inputs(paths, names, tmp)


def _spool(src: BinaryIO) -> Path:
    head = src.read(4)
    suffix = ".gz" if head.startswith(_GZIP_MAGIC) else ".zst" if head.startswith(_ZSTD_MAGIC) else ".log"
    fd, name = tempfile.mkstemp(prefix="logpipe-query-", suffix=suffix)
    with open(fd, "wb") as out:
        out.write(head)
        shutil.copyfileobj(src, out, 1 << 20)
    return Path(name)


@contextmanager
def open_text_lines(path: Path) -> Iterator[IO[bytes]]:
    """A binary line reader that decompresses ``.gz`` and ``.zst`` (by extension, as DuckDB does)."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as gz:
            yield gz  # type: ignore[misc]
    elif path.suffix == ".zst":
        with open(path, "rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            yield io.BufferedReader(reader, 1 << 20)  # type: ignore[arg-type]
    else:
        with open(path, "rb") as f:
            yield f


def sample(inputs: Inputs, lines: int = SAMPLE_LINES) -> list[dict[str, Any]]:
    """The JSON objects among the first ``lines`` lines of each input (a small, cheap read)."""
    docs: list[dict[str, Any]] = []
    for path in inputs.paths:
        with open_text_lines(path) as f:
            for _, line in zip(range(lines), f, strict=False):
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    docs.append(obj)
    return docs


def is_malformed(line: bytes) -> bool | None:
    """True for a line that is not one JSON object; None for a blank line (skipped, not malformed)."""
    text = line.strip()
    if not text:
        return None
    if not text.startswith(b"{"):
        return True
    try:
        return not isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return True


def first_malformed(path: Path, expected: int | None = None) -> int | None:
    """The 1-based line number of the first malformed line of ``path``.

    With ``expected`` (how many malformed lines the file has, as DuckDB counted them) a fast scan
    runs first: whole chunks are skipped when every line starts with ``{`` and ends with ``}``
    (one byte count per chunk, no per-line Python), and the lines of the other chunks are only
    checked for that shape. If exactly ``expected`` lines fail the shape check, the first of them is the answer;
    otherwise (a malformed line can look well-shaped, like ``{"a":1}{"b":2}``) every line is
    parsed up to the first malformed one.
    """
    if expected:
        failing, first = _shape_scan(path)
        if failing == expected:
            return first
    with open_text_lines(path) as f:
        for number, line in enumerate(f, 1):
            if is_malformed(line):
                return number
    return None


def _shape_scan(path: Path, chunk_size: int = 32 << 20) -> tuple[int, int | None]:
    """How many non-blank lines do not look like ``{...}``, and the first of them.

    Works on the chunks as read (no joining or slicing of clean chunks): the complete lines between
    a chunk's first and last newline are clean when every newline among them sits between ``}``
    and ``{``, which one ``bytes.count`` tells.
    """
    failing = 0
    first: int | None = None
    line_no = 0  # lines completed before the current position
    tail = b""  # the unfinished last line of the previous chunk

    def check(lines: list[bytes]) -> None:
        nonlocal failing, first, line_no
        for line in lines:
            line_no += 1
            text = line.strip()
            if text and not (text.startswith(b"{") and text.endswith(b"}")):
                failing += 1
                first = first or line_no

    with open_text_lines(path) as f:
        while chunk := f.read(chunk_size):
            lo = chunk.find(b"\n")
            if lo < 0:
                tail += chunk
                continue
            hi = chunk.rfind(b"\n")
            check([tail + chunk[:lo]])
            middle = chunk.count(b"\n", lo + 1, hi + 1)  # complete lines after the first newline
            if middle:
                clean = (
                    chunk[lo + 1 : lo + 2] == b"{"
                    and chunk[hi - 1 : hi] == b"}"
                    and chunk.count(b"}\n{", lo + 1, hi) == middle - 1
                )
                if clean:
                    line_no += middle
                else:
                    check(chunk[lo + 1 : hi].split(b"\n"))
            tail = chunk[hi + 1 :]
    if tail:
        check([tail])
    return failing, first
