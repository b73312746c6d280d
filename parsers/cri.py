"""Container stdout/stderr as kubelet writes it (CRI): ``<RFC3339Nano> <stdout|stderr> <P|F> <content>``.

A long line is split by the runtime into ``P`` (partial) records ended by one ``F`` record; the
:class:`Reassembler` joins them per file and stream (stdout and stderr fragments may interleave in
one file). The document's ``log.offset`` is the FIRST fragment's offset, so the deterministic id of
a reassembled line is the same on every replay. A line longer than ``max_bytes`` (or any fragment
that would take all buffered lines over ``max_total_bytes``) is emitted when it passes the bound,
flagged ``partial_overflow``, and the rest continues as a new document; fragments
whose ``F`` never comes are emitted by :meth:`Reassembler.expire`, flagged ``partial_incomplete``.

The stream (``stdout``/``stderr``) is kept as ``logpipe.stream``: ECS has no field for it
(``log.origin`` means the source code location), and our own namespace cannot collide with ECS.
The content is mapped like an ``app`` line (JSON object or text, see ``app.py``); ``@timestamp`` is
the content's own time field when it has one, else the runtime's timestamp.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from parsers.app import map_content
from parsers.document import DEFAULT_WINDOW, Draft, TimeWindow
from parsers.fieldmap import FieldMap
from parsers.result import Parsed, Partial, Unparseable, fragment_key
from parsers.timestamps import parse_time, utc_rfc3339

_STREAMS = (b"stdout", b"stderr")


@dataclass(frozen=True, slots=True)
class CriLine:
    """One CRI record split into its parts (the timestamp still as text)."""

    timestamp: str
    stream: str
    partial: bool
    content: bytes


def split_cri(value: bytes) -> CriLine | str:
    """The parts of a CRI record, or the reason it is not one."""
    parts = value.split(b" ", 3)
    if len(parts) < 3:
        return "not a CRI line: expected '<time> <stdout|stderr> <P|F> <content>'"
    stamp, stream, tag = parts[0], parts[1], parts[2]
    if stream not in _STREAMS:
        return f"not a CRI line: stream {stream[:16]!r} is neither stdout nor stderr"
    # The tag is a ':'-separated list whose first item is P (partial) or F (full).
    kind = tag.split(b":", 1)[0]
    if kind not in (b"P", b"F"):
        return f"not a CRI line: tag {tag[:16]!r} is neither P nor F"
    if not stamp.isascii():
        return "not a CRI line: the timestamp is not ASCII"
    return CriLine(stamp.decode(), stream.decode(), kind == b"P", parts[3] if len(parts) == 4 else b"")


@dataclass(slots=True)
class _Pending:
    headers: dict[str, str]  # of the first fragment: its offset and read time are the line's
    timestamp: str
    started: float
    last_offset: int | None
    parts: list[bytes] = field(default_factory=list)
    size: int = 0


class Reassembler:
    """CRI records -> documents, holding ``P`` fragments per (file, stream) until their ``F``."""

    def __init__(
        self,
        fieldmap: FieldMap,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
        max_total_bytes: int = 64 << 20,
        window: TimeWindow = DEFAULT_WINDOW,
    ) -> None:
        self.fieldmap = fieldmap
        self.window = window
        self.max_bytes = max_bytes
        self.max_total_bytes = max_total_bytes
        self.clock = clock
        self.pending: dict[tuple[str, str], _Pending] = {}
        self.total = 0  # bytes buffered over all files

    def parse(self, value: bytes, headers: Mapping[str, str], draft: Draft) -> Parsed | Unparseable | Partial:
        """One CRI record; ``draft`` was built from this record's headers."""
        line = split_cri(value)
        if isinstance(line, str):
            return Unparseable(line)
        key = (draft.file_id, line.stream)
        offset = draft.offset
        pend = self.pending.get(key)
        if pend is not None and offset is not None and pend.last_offset is not None and offset <= pend.last_offset:
            # The same records again (a replay after a rebalance): start over from this one.
            self._drop(key)
            pend = None
        if line.partial:
            if pend is None:
                pend = _Pending(dict(headers), line.timestamp, self.clock(), offset)
                self.pending[key] = pend
            pend.parts.append(line.content)
            pend.size += len(line.content)
            self.total += len(line.content)
            pend.last_offset = offset
            if pend.size < self.max_bytes and self.total <= self.max_total_bytes:
                return Partial(draft.file_id, offset, line.stream)
            self._drop(key)
            absorbed = len(pend.parts) - 1
            doc = self._document(pend, b"".join(pend.parts), line.stream, "partial_overflow", draft)
            return Parsed(doc, "stdout", absorbed, fragments=fragment_key(*key))
        if pend is None:
            return Parsed(self._build(draft, line.timestamp, line.content, line.stream), "stdout")
        self._drop(key)
        pend.parts.append(line.content)
        content = b"".join(pend.parts)
        doc = self._document(pend, content, line.stream, None, draft)
        return Parsed(doc, "stdout", len(pend.parts) - 1, fragments=fragment_key(*key))

    def expire(self, older_than_s: float) -> list[Parsed]:
        """Emit the fragments buffered for longer than ``older_than_s`` whose ``F`` never came."""
        limit = self.clock() - older_than_s
        out: list[Parsed] = []
        for key, pend in list(self.pending.items()):
            if pend.started <= limit:
                self._drop(key)
                draft = Draft(pend.headers, "stdout", self.window)
                doc = self._build(draft, pend.timestamp, b"".join(pend.parts), key[1], "partial_incomplete")
                out.append(Parsed(doc, "stdout", len(pend.parts), fragments=fragment_key(*key)))
        return out

    def clear(self) -> None:
        """Forget every buffered fragment (the consumer lost its partitions: they will be re-read)."""
        self.pending.clear()
        self.total = 0

    def _drop(self, key: tuple[str, str]) -> None:
        self.total -= self.pending.pop(key).size

    def _document(
        self, pend: _Pending, content: bytes, stream: str, flag: str | None, current: Draft
    ) -> dict[str, Any]:
        draft = Draft(pend.headers, "stdout", current.window)
        for f in current.flags:  # e.g. "truncated" set by the shipper on the last fragment
            draft.flag(f)
        return self._build(draft, pend.timestamp, content, stream, flag)

    def _build(self, draft: Draft, stamp: str, content: bytes, stream: str, flag: str | None = None) -> dict[str, Any]:
        if flag is not None:
            draft.flag(flag)
        draft.doc["logpipe"]["stream"] = stream
        if not map_content(content, draft, self.fieldmap):
            fast = utc_rfc3339(stamp)  # the runtime's own form: no datetime needed
            if fast is not None:
                if not draft.event_time_at(*fast):
                    draft.fallback_time()
                return draft.finish()
            parsed = parse_time(stamp)
            if parsed is None or parsed[1] or not draft.event_time(parsed[0]):
                draft.fallback_time()
        return draft.finish()
