"""How hits are printed: one line each, coloured per pod on a terminal, plain when piped, or JSON lines.

Text lines read ``<time> <pod> <level> <message>`` (time in UTC, millisecond precision). Access-log
documents show ``METHOD path status duration`` when they carry HTTP fields, spans show their name and
duration. With ``--context`` a ``:`` after the pod marks a hit and ``-`` a context line, as ``grep -C``
does, and ``--`` separates blocks that are not contiguous in their file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, TextIO

import orjson

from logpipe.tools.search import docfields as F
from logpipe.tools.search.hits import LogDoc
from logpipe.tools.timerange import iso_ms

RESET = "\x1b[0m"
DIM = "\x1b[2m"
BOLD = "\x1b[1m"
# Bright, distinguishable foregrounds (stern's idea: one colour per pod, stable across runs).
POD_COLOURS = (31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96)
LEVEL_COLOURS = {"ERROR": 31, "FATAL": 31, "CRITICAL": 31, "WARN": 33, "WARNING": 33, "DEBUG": 2}
SEPARATOR = "--"


def pod_colour(pod: str) -> int:
    """The ANSI colour of a pod: a stable hash of its name (not Python's salted ``hash``)."""
    digest = hashlib.blake2b(pod.encode(), digest_size=2).digest()
    return POD_COLOURS[int.from_bytes(digest, "big") % len(POD_COLOURS)]


def format_duration_ns(ns: Any) -> str:
    """``850µs``, ``12.3ms``, ``1.42s`` from nanoseconds; empty when absent."""
    try:
        n = float(ns)
    except (TypeError, ValueError):
        return ""
    if n < 1_000_000:
        return f"{n / 1000:.0f}µs"
    if n < 1_000_000_000:
        return f"{n / 1_000_000:.1f}ms"
    return f"{n / 1_000_000_000:.2f}s"


def summary(doc: LogDoc) -> str:
    """The human part of a line: the message, or the request/span it describes."""
    if doc.log_type == "trace" or doc.get(F.SPAN_NAME) is not None:
        parts = [doc.text(F.SPAN_NAME) or doc.text(F.MESSAGE), format_duration_ns(doc.get(F.DURATION))]
        if doc.text(F.TRACE_ID):
            parts.append(f"trace={doc.text(F.TRACE_ID)}")
        return " ".join(p for p in parts if p)
    if doc.get(F.METHOD) is not None or doc.get(F.STATUS) is not None:
        parts = [
            doc.text(F.METHOD),
            doc.text(F.PATH),
            doc.text(F.STATUS),
            format_duration_ns(doc.get(F.DURATION)),
        ]
        return " ".join(p for p in parts if p)
    return doc.text(F.MESSAGE).rstrip("\n")


def json_line(doc: LogDoc) -> bytes:
    """One JSON object: ``_id``, ``_index``, the document, and ``_context`` for a context line."""
    obj: dict[str, Any] = {"_id": doc.id, "_index": doc.index}
    obj.update(doc.source)
    if doc.context is not None:
        obj["_context"] = doc.context
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def text_line(doc: LogDoc, *, colour: bool, marks: bool = False) -> str:
    """``<time> <pod> <level> <message>``; ``marks``: grep -C style ``:``/``-`` after the pod."""
    t = doc.timestamp
    ts = iso_ms(t) if t is not None else "-"
    pod = doc.text(F.POD) or doc.text(F.COMPONENT) or "-"
    level = doc.text(F.LEVEL).upper()
    mark = ("-" if doc.context else ":") if marks else ""
    body = summary(doc)
    if not colour:
        return " ".join(p for p in (ts, pod + mark, level, body) if p)
    pod_txt = f"\x1b[{pod_colour(pod)}m{pod}{RESET}{mark}"
    level_txt = f"\x1b[{LEVEL_COLOURS[level]}m{level}{RESET}" if level in LEVEL_COLOURS else level
    if doc.context:
        body = f"{DIM}{body}{RESET}"
    return " ".join(p for p in (f"{DIM}{ts}{RESET}", pod_txt, level_txt, body) if p)


class Renderer:
    """Writes documents to ``out`` as text (coloured when ``colour``) or as JSON lines."""

    def __init__(self, out: TextIO, *, colour: bool, as_json: bool, marks: bool = False) -> None:
        self.out = out
        self.colour = colour and not as_json
        self.as_json = as_json
        self.marks = marks  # grep -C style ':'/'-' after the pod
        self.printed = 0

    def text_line(self, doc: LogDoc) -> str:
        return text_line(doc, colour=self.colour, marks=self.marks)

    def write(self, doc: LogDoc) -> None:
        """Print one document."""
        if self.as_json:
            self.out.write(json_line(doc).decode() + "\n")
        else:
            self.out.write(self.text_line(doc) + "\n")
        if doc.context is None:
            self.printed += 1

    def write_all(self, docs: Iterable[LogDoc]) -> None:
        for doc in docs:
            self.write(doc)
        self.out.flush()

    def separator(self) -> None:
        """The ``--`` between context blocks (text only: JSON lines carry ``_context`` instead)."""
        if not self.as_json:
            self.out.write((f"{DIM}{SEPARATOR}{RESET}" if self.colour else SEPARATOR) + "\n")
