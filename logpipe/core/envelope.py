"""The record that travels from the shipper to the consumer, and its Kafka wire form.

The Kafka record *value* is the original line bytes (no newline), unchanged, so any consumer can
read it; the record *key* is the Component (one service's lines stay ordered in one partition);
the line's source identity and pod metadata travel in record *headers* named here.

The envelope is versioned: header ``lp.v`` holds :data:`ENVELOPE_VERSION`. Records without it were
written before versions existed (version 0: the same headers, ``tests/logpipe/core/fixtures/
envelope-v0.json`` holds real ones) and are read exactly like version 1. A later version that changes
what a header means raises the number, and readers dispatch on :func:`envelope_version`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENVELOPE_VERSION = 1
H_VERSION = "lp.v"  # the envelope's version, decimal ASCII; absent: version 0 (same layout as 1)
H_NODE = "lp.node"
H_NAMESPACE = "lp.namespace"
H_POD = "lp.pod"
H_POD_UID = "lp.pod_uid"
H_CONTAINER = "lp.container"
H_COMPONENT = "lp.component"
H_TYPE = "lp.type"
H_PATH = "lp.path"
H_OFFSET = "lp.offset"  # byte offset of the line's first byte in its file, decimal ASCII
H_FILE_ID = "lp.file_id"  # the stream's identity, e.g. "fingerprint::<hex>" (see shipper/identity.py)
H_READ_TS = "lp.read_ts"  # when the shipper read the line, epoch milliseconds, decimal ASCII
H_FLAGS = "lp.flags"  # comma-separated, e.g. "truncated"
H_FORMAT = "lp.format"  # access lines: the format the shipper's rule chose (absent: detected per line)

ENVELOPE_VERSION_BYTES = str(ENVELOPE_VERSION).encode()

LOG_TYPES = ("access", "app", "stdout", "trace")
# Formats a shipper rule may choose for access lines (``lp.format``); "auto" is sent as no header.
ACCESS_FORMATS = ("auto", "json", "combined", "upstreaminfo")


def envelope_version(headers: Mapping[str, str]) -> int:
    """The version of a record's envelope: 0 when ``lp.v`` is absent (written before versions), -1 if unreadable."""
    v = headers.get(H_VERSION)
    if v is None:
        return 0
    return int(v) if v.isdigit() and len(v) <= 6 else -1


@dataclass(frozen=True, slots=True)
class SourceMeta:
    """Where a line came from: the node, the pod, and the file stream."""

    node: str
    namespace: str
    pod: str
    pod_uid: str
    container: str
    component: str
    log_type: str
    path: str
    file_id: str
    access_format: str = ""  # the rule's chosen access format (ACCESS_FORMATS); "": detected per line


class HeaderTemplate:
    """The record headers of one file's lines, in their wire order: the only place that order is written.

    ``head``: ``lp.v`` and the per-file headers before ``lp.offset`` (``lp.format`` only when a rule
    chose one); then ``lp.offset`` (per line), ``lp.file_id``, and the :meth:`tail` (``lp.read_ts``,
    per read, and ``lp.flags`` when there are any). Built once per file by the shipper's hot path,
    so a line costs one small list.
    """

    __slots__ = ("file_id", "head", "meta")

    def __init__(self, m: SourceMeta) -> None:
        self.meta = m
        self.head: tuple[tuple[str, bytes], ...] = (
            (H_VERSION, ENVELOPE_VERSION_BYTES),
            (H_NODE, m.node.encode()),
            (H_NAMESPACE, m.namespace.encode()),
            (H_POD, m.pod.encode()),
            (H_POD_UID, m.pod_uid.encode()),
            (H_CONTAINER, m.container.encode()),
            (H_COMPONENT, m.component.encode()),
            (H_TYPE, m.log_type.encode()),
            (H_PATH, m.path.encode()),
        ) + (((H_FORMAT, m.access_format.encode()),) if m.access_format else ())
        self.file_id = (H_FILE_ID, m.file_id.encode())

    @staticmethod
    def tail(read_ts_ms: int, flags: Sequence[str]) -> tuple[tuple[str, bytes], ...]:
        """The headers after ``lp.file_id``: the read time, and the flags if any."""
        ts = (H_READ_TS, b"%d" % read_ts_ms)
        return (ts, (H_FLAGS, ",".join(flags).encode())) if flags else (ts,)

    def line(self, offset: int, tail: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """The headers of the line at ``offset``."""
        return [*self.head, (H_OFFSET, b"%d" % offset), self.file_id, *tail]


@dataclass(frozen=True, slots=True)
class LineRecord:
    """One line as shipped: its bytes (without newline), its source and its position."""

    meta: SourceMeta
    offset: int
    value: bytes
    read_ts_ms: int
    flags: tuple[str, ...] = ()
    topic: str = ""  # destination chosen by the shipper's rules; "" = the sink's default for the log type

    def headers(self) -> list[tuple[str, bytes]]:
        return HeaderTemplate(self.meta).line(self.offset, HeaderTemplate.tail(self.read_ts_ms, self.flags))

    @property
    def key(self) -> bytes:
        return self.meta.component.encode()


@dataclass(slots=True)
class LineRun:
    """Consecutive lines of one file from one read, without one object per line (the shipper's hot path).

    Unflagged runs hold complete lines back to back: line ``k`` starts at ``offset`` plus the lengths
    of the lines before it, each plus its newline. A flagged run (partial, truncated, dead-lettered)
    holds exactly one line, at ``offset``. ``nbytes`` is the sum of the values' lengths.
    """

    meta: SourceMeta
    offset: int
    values: list[bytes]
    read_ts_ms: int
    nbytes: int
    flags: tuple[str, ...] = ()
    topic: str = ""

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def of(cls, r: LineRecord) -> LineRun:
        """A run of the one line ``r``."""
        return cls(r.meta, r.offset, [r.value], r.read_ts_ms, len(r.value), r.flags, r.topic)

    def records(self) -> list[LineRecord]:
        """The run as :class:`LineRecord` objects (for sinks without a run-based path)."""
        out: list[LineRecord] = []
        pos = self.offset
        m, ts, flags, topic = self.meta, self.read_ts_ms, self.flags, self.topic
        for v in self.values:
            out.append(LineRecord(m, pos, v, ts, flags, topic))
            pos += len(v) + 1
        return out

    def split(self, k: int) -> tuple[LineRun, LineRun]:
        """The first ``k`` lines and the rest (``0 < k < len(self)``; unflagged runs only)."""
        head = self.values[:k]
        hb = sum(map(len, head))
        tail_offset = self.offset + hb + k
        return (LineRun(self.meta, self.offset, head, self.read_ts_ms, hb, self.flags, self.topic),
                LineRun(self.meta, tail_offset, self.values[k:], self.read_ts_ms, self.nbytes - hb,
                        self.flags, self.topic))


def decode_headers(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """Kafka headers as a str→str dict (invalid UTF-8 replaced, never raises)."""
    try:  # the strict decoder with no arguments is ~25 % cheaper per record; invalid bytes are rare
        return {k: v.decode() for k, v in (headers or ())}
    except (UnicodeDecodeError, AttributeError):  # invalid UTF-8, or a null header value (Kafka allows it)
        return {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else "" for k, v in (headers or ())}


def document_id(file_id: str, offset: int | str) -> str:
    """The Elasticsearch ``_id`` of a line: deterministic from its source identity, so a
    redelivered line overwrites itself instead of duplicating."""
    return hashlib.blake2b(f"{file_id}@{offset}".encode(), digest_size=16).hexdigest()
