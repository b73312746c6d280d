"""One file stream being read: complete lines from an fd, with partial and over-long lines handled.

A :class:`Tailer` owns the read position of one stream (see ``shipper/identity.py``) and, while its
file is open, the fd. :meth:`Tailer.read` is the read path (Filebeat's ``readFromSource``): read
the next chunk, cut it into lines, advance the position, return the lines with their offsets.
Nothing else happens there; rotation, truncation and deletion are decided in ``shipper/streams.py``.

- Only newline-terminated lines are returned. A partial last line is read again next time; after
  ``partial_line_timeout`` without its newline (or once the file is deleted) it is sent as is,
  flagged ``partial``.
- A line longer than ``max_line_bytes`` is cut to that length and flagged ``truncated``, or
  dead-lettered (flags ``deadletter``, ``reason:line_too_long``), by configuration; the rest of the
  line is skipped without being held in memory, so a newline-less 10 GB file never stalls a stream.
- Values are bytes, never decoded: invalid UTF-8 passes through.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Literal

from logpipe.acks import OrderedAcks
from logpipe.envelope import LineRecord, SourceMeta
from shipper import telemetry
from shipper.identity import Fingerprint
from shipper.target import FileTarget

LongLines = Literal["truncate", "dead_letter"]

FLAG_TRUNCATED = "truncated"
FLAG_PARTIAL = "partial"
FLAG_DEADLETTER = "deadletter"


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How lines are cut."""

    max_line_bytes: int = 256 * 1024
    partial_line_timeout: float = 5.0
    long_lines: LongLines = "truncate"
    read_chunk_bytes: int = 512 * 1024

    @property
    def chunk(self) -> int:
        # A line of max_line_bytes plus its newline always fits in one read from its start.
        return max(self.read_chunk_bytes, self.max_line_bytes + 1)


@dataclass(slots=True)
class Chunk:
    """What one read produced: bytes ``[start, end)`` of the stream and the lines within them.

    ``records`` may be empty (the rest of an over-long line skipped): the range must still be
    acknowledged so the checkpoint can move over it.
    """

    start: int
    end: int
    records: list[LineRecord]
    nbytes: int  # sum of the values' lengths


def dead_letter_flags(reason: str) -> tuple[str, ...]:
    return (FLAG_DEADLETTER, f"reason:{reason}")


@dataclass(eq=False)
class Tailer:
    """One stream: identity, read position, acknowledgements and (while open) its fd."""

    id: str
    target: FileTarget
    meta: SourceMeta
    fp: Fingerprint
    offset: int  # where the next read starts (everything before was handed to the pipeline)
    dev: int = 0
    ino: int = 0
    fd: int | None = None
    size: int = 0  # file size at the last look
    mtime_ns: int = 0  # and its modification time
    acks: OrderedAcks = field(default_factory=OrderedAcks)
    state: str = "live"  # live | draining (deleted or rotated away: read to EOF, then release) | detached
    partial_since: float | None = None
    skipping: bool = False  # inside an over-long line: drop bytes up to its newline
    last_change: float = field(default_factory=time.monotonic)
    detached_at: float = 0.0

    @property
    def scope(self) -> str:
        return scope_of(self.target)

    @property
    def lag(self) -> int:
        return max(0, self.size - self.offset)

    def read(self, limits: ReadLimits, now: float, flush_partial: bool = False) -> Chunk | None:
        """Read the next lines; None when there is nothing new. Requires an open fd."""
        assert self.fd is not None
        data = os.pread(self.fd, limits.chunk, self.offset)
        if not data:
            return None
        start = self.offset
        at_eof = len(data) < limits.chunk
        records: list[LineRecord] = []
        nbytes = 0
        if self.skipping:
            nl = data.find(b"\n")
            if nl < 0:
                self.offset += len(data)
                return Chunk(start, self.offset, records, 0)
            self.skipping = False
            self.offset += nl + 1
            data = data[nl + 1 :]
        last = data.rfind(b"\n")
        if last >= 0:
            pos = self.offset
            meta = self.meta
            topic = self.target.topic
            ts = int(time.time() * 1000)
            max_line = limits.max_line_bytes
            append = records.append
            for line in data[:last].split(b"\n"):
                n = len(line)
                if n > max_line:
                    append(self._long_line(line, pos, ts, limits))
                    nbytes += max_line
                else:
                    append(LineRecord(meta, pos, line, ts, (), topic))
                    nbytes += n
                pos += n + 1
            self.offset = pos
            tail = len(data) - last - 1
        else:
            tail = len(data)
        if tail:
            if tail > limits.max_line_bytes:
                # No newline within the limit: cut the line here and skip the rest of it.
                line = data[last + 1 : last + 1 + limits.max_line_bytes + 1]
                records.append(self._long_line(line, self.offset, int(time.time() * 1000), limits))
                nbytes += limits.max_line_bytes
                self.offset += len(data) - last - 1
                self.skipping = True
                self.partial_since = None
            elif at_eof:
                if self.partial_since is None:
                    self.partial_since = now
                if flush_partial or now - self.partial_since >= limits.partial_line_timeout:
                    value = data[last + 1 :]
                    records.append(
                        LineRecord(self.meta, self.offset, value, int(time.time() * 1000), (FLAG_PARTIAL,),
                                   self.target.topic)
                    )
                    nbytes += len(value)
                    self.offset += len(value)
                    self.partial_since = None
        else:
            self.partial_since = None
        if self.offset == start:
            return None
        self.last_change = now
        return Chunk(start, self.offset, records, nbytes)

    def _long_line(self, line: bytes, pos: int, ts: int, limits: ReadLimits) -> LineRecord:
        value = line[: limits.max_line_bytes]
        if limits.long_lines == "dead_letter":
            telemetry.LineDeadLettered(self.target.abspath, self.meta.log_type, pos, "line_too_long").emit()
            flags: tuple[str, ...] = (*dead_letter_flags("line_too_long"), FLAG_TRUNCATED)
        else:
            flags = (FLAG_TRUNCATED,)
        return LineRecord(self.meta, pos, value, ts, flags, self.target.topic)

    def has_pending_partial(self) -> bool:
        return self.partial_since is not None

    def close(self) -> None:
        """Close the fd (the stream and its position remain)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


def scope_of(target: FileTarget) -> str:
    """Root and directory of a target: a stream never moves to another directory (or pod)."""
    d = target.relpath.rsplit("/", 1)[0] if "/" in target.relpath else ""
    return f"{target.root.rstrip('/')}//{d}"


def source_meta(target: FileTarget, stream_id: str) -> SourceMeta:
    """The metadata every line of ``target`` carries."""
    p = target.pod
    return SourceMeta(
        node=target.node,
        namespace=p.namespace,
        pod=p.pod,
        pod_uid=p.pod_uid,
        container=p.container,
        component=p.component,
        log_type=target.log_type,
        path=target.abspath,
        file_id=stream_id,
    )
