"""What the parser says about one Kafka record: a document, a reason to dead-letter it, or "wait"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Parsed:
    """An Elastic Common Schema document, as nested objects (``{"http": {"response": {...}}}``).

    ``doc`` always holds ``log.offset`` (when the record carried a valid ``lp.offset`` header),
    ``logpipe.file_id`` and ``logpipe.type``, so the consumer can derive the deterministic ``_id``.

    ``absorbed`` (CRI only): how many earlier records of the same file were :class:`Partial`
    fragments folded into this document. From :meth:`LineParser.parse` the document stands for the
    current record plus ``absorbed`` earlier ones; from :meth:`LineParser.expire` it stands for
    ``absorbed`` earlier records only (no current record).
    """

    doc: dict[str, Any]
    log_type: str  # access | app | stdout | trace
    absorbed: int = 0


@dataclass(frozen=True, slots=True)
class Unparseable:
    """The record cannot become a document; ``reason`` goes to the dead-letter topic with the raw bytes."""

    reason: str


@dataclass(frozen=True, slots=True)
class Partial:
    """A CRI ``P`` fragment now buffered in the parser; nothing to index for this record yet.

    Its Kafka record is completed by a later :class:`Parsed` with ``absorbed > 0`` for the same
    ``file_id`` and ``stream`` (from ``parse`` or ``expire``; the document's ``logpipe.file_id`` and
    ``logpipe.stream``): fragments are reassembled per file AND stream, since stdout and stderr
    fragments may interleave in one file. ``offset`` is the fragment's ``lp.offset``.
    """

    file_id: str = ""
    offset: int | None = None
    stream: str = ""


ParseResult = Parsed | Unparseable | Partial
