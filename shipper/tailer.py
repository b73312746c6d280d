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

from logpipe.core.acks import OrderedAcks
from logpipe.core.envelope import LineRecord, LineRun, SourceMeta
from shipper import telemetry
from shipper.identity import Fingerprint
from shipper.multiline import Joiner
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

    The lines come as :class:`~logpipe.core.envelope.LineRun` s (no object per line). ``runs`` may be
    empty (the rest of an over-long line skipped): the range must still be acknowledged so the
    checkpoint can move over it.
    """

    start: int
    end: int
    runs: list[LineRun]
    nbytes: int  # sum of the values' lengths
    nlines: int

    @property
    def records(self) -> list[LineRecord]:
        """The lines as :class:`LineRecord` objects (slow: for tests and diagnostics)."""
        return [r for run in self.runs for r in run.records()]


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
    reading: bool = False  # a read runs in a worker thread: the fd must stay open until it ends
    _close_when_read: bool = False
    joiner: Joiner | None = None  # multi-line events (shipper/multiline.py), from the target's rule

    def __post_init__(self) -> None:
        spec = self.target.multiline
        if self.joiner is None and spec is not None:
            self.joiner = Joiner(spec, cri=self.target.log_type == "stdout", max_bytes=spec.max_bytes)

    @property
    def scope(self) -> str:
        return scope_of(self.target)

    @property
    def lag(self) -> int:
        return max(0, self.size - self.offset)

    def read(self, limits: ReadLimits, now: float, flush_partial: bool = False) -> Chunk | None:
        """Read the next lines; None when there is nothing new. Requires an open fd.

        With a :class:`~shipper.multiline.Joiner` the lines of one event come as one record, and the
        read position stops at the first line of the event still open (read again next time)."""
        assert self.fd is not None
        joiner = self.joiner
        if joiner is None:
            return self._read(limits, now, flush_partial)
        if not joiner.due(self.size, now, flush_partial):
            return None
        start = self.offset
        joiner.max_bytes = min(joiner.spec.max_bytes, limits.chunk // 2)  # an open event always fits one read
        chunk = self._read(limits, now, flush_partial)
        if chunk is None:
            return None
        joined = joiner.join(chunk, now, flush_partial)
        self.offset = joined.end if joined is not None else start
        return joined

    def _read(self, limits: ReadLimits, now: float, flush_partial: bool) -> Chunk | None:
        assert self.fd is not None
        data = os.pread(self.fd, limits.chunk, self.offset)
        if not data:
            return None
        start = self.offset
        at_eof = len(data) < limits.chunk
        runs: list[LineRun] = []
        nbytes = nlines = 0
        if self.skipping:
            nl = data.find(b"\n")
            if nl < 0:
                self.offset += len(data)
                return Chunk(start, self.offset, runs, 0, 0)
            self.skipping = False
            self.offset += nl + 1
            data = data[nl + 1 :]
        last = data.rfind(b"\n")
        ts = int(time.time() * 1000)  # once per read: every line of a chunk is read at the same instant
        if last >= 0:
            pos = self.offset
            lines = data[:last].split(b"\n")
            max_line = limits.max_line_bytes
            if last <= max_line or max(map(len, lines)) <= max_line:
                # the common case: one run; the values' lengths are the bytes minus the newlines
                nb = last - len(lines) + 1
                runs.append(LineRun(self.meta, pos, lines, ts, nb, (), self.target.topic))
                nbytes, nlines = nb, len(lines)
            else:
                nbytes, nlines = self._cut_long_lines(lines, pos, ts, limits, runs)
            self.offset = pos + last + 1
            tail = len(data) - last - 1
        else:
            tail = len(data)
        if tail:
            if tail > limits.max_line_bytes:
                # No newline within the limit: cut the line here and skip the rest of it.
                line = data[last + 1 : last + 1 + limits.max_line_bytes + 1]
                runs.append(self._long_line(line, self.offset, ts, limits))
                nbytes += limits.max_line_bytes
                nlines += 1
                self.offset += len(data) - last - 1
                self.skipping = True
                self.partial_since = None
            elif at_eof:
                if self.partial_since is None:
                    self.partial_since = now
                if flush_partial or now - self.partial_since >= limits.partial_line_timeout:
                    value = data[last + 1 :]
                    runs.append(LineRun(self.meta, self.offset, [value], ts, len(value), (FLAG_PARTIAL,),
                                        self.target.topic))
                    nbytes += len(value)
                    nlines += 1
                    self.offset += len(value)
                    self.partial_since = None
        else:
            self.partial_since = None
        if self.offset == start:
            return None
        self.last_change = now
        return Chunk(start, self.offset, runs, nbytes, nlines)

    def _cut_long_lines(self, lines: list[bytes], pos: int, ts: int, limits: ReadLimits,
                        runs: list[LineRun]) -> tuple[int, int]:
        """Complete lines, some over the limit: runs of ordinary lines around single truncated ones."""
        max_line, topic = limits.max_line_bytes, self.target.topic
        nbytes = 0
        cur: list[bytes] = []
        cur_start = pos
        cur_bytes = 0
        for line in lines:
            n = len(line)
            if n > max_line:
                if cur:
                    runs.append(LineRun(self.meta, cur_start, cur, ts, cur_bytes, (), topic))
                    cur, cur_bytes = [], 0
                runs.append(self._long_line(line, pos, ts, limits))
                nbytes += max_line
                cur_start = pos + n + 1
            else:
                cur.append(line)
                cur_bytes += n
                nbytes += n
            pos += n + 1
        if cur:
            runs.append(LineRun(self.meta, cur_start, cur, ts, cur_bytes, (), topic))
        return nbytes, len(lines)

    def _long_line(self, line: bytes, pos: int, ts: int, limits: ReadLimits) -> LineRun:
        value = line[: limits.max_line_bytes]
        if limits.long_lines == "dead_letter":
            telemetry.LineDeadLettered(self.target.abspath, self.meta.log_type, pos, "line_too_long").emit()
            flags: tuple[str, ...] = (*dead_letter_flags("line_too_long"), FLAG_TRUNCATED)
        else:
            flags = (FLAG_TRUNCATED,)
        return LineRun(self.meta, pos, [value], ts, len(value), flags, self.target.topic)

    def has_pending_partial(self) -> bool:
        return self.partial_since is not None

    def close(self) -> None:
        """Close the fd (the stream and its position remain); during a read, once it has ended."""
        if self.reading:
            self._close_when_read = True  # closed now, the fd number could be reused under the read
            return
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def read_ended(self) -> None:
        """The worker thread's read returned: a close asked for meanwhile happens now."""
        self.reading = False
        if self._close_when_read:
            self._close_when_read = False
            self.close()


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
        access_format=target.access_format,
    )
