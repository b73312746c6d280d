"""What the parser says about one Kafka record: a document, a reason to dead-letter it, "wait", or several documents."""

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
    ``absorbed`` earlier records only (no current record). ``fragments`` names those records: the
    :attr:`Partial.key` of their (file, stream).

    ``doc_id``: when set, the document's ``_id`` (e.g. a span's id from its trace and span ids);
    otherwise the consumer derives it from the source position (``document_id(file_id, offset)``).
    ``index``: when set, the exact index to write to (e.g. ``<prefix>-jaeger-span-YYYY-MM-DD``);
    otherwise the consumer's daily ``<prefix>-<log_type>-YYYY.MM.DD``.
    """

    doc: dict[str, Any]
    log_type: str  # access | app | stdout | trace
    absorbed: int = 0
    doc_id: str | None = None
    index: str | None = None
    fragments: str = ""


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

    @property
    def key(self) -> str:
        """Which line this fragment belongs to: its (file, stream), as :attr:`Parsed.fragments` names it."""
        return fragment_key(self.file_id, self.stream)


def fragment_key(file_id: str, stream: str) -> str:
    """The key of the CRI line being reassembled from ``file_id``'s ``stream``."""
    return f"{file_id}\x00{stream}"


@dataclass(frozen=True, slots=True)
class Many:
    """One record carrying several documents (e.g. an OTLP request with twenty spans).

    The parts share the record's offset (STYLE.md #15): it is committed only when the last part is
    indexed or dead-lettered. An :class:`Unparseable` part is dead-lettered alone (the record's raw
    bytes with that part's reason); the other parts are indexed. A :class:`Parsed` part without
    ``doc_id`` gets ``document_id(file_id, "<offset>/<part number>")``, deterministic on replay.
    No parts: nothing to index, the record is resolved at once.
    """

    parts: tuple[Parsed | Unparseable, ...]


ParseResult = Parsed | Unparseable | Partial | Many
