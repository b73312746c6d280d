"""The record that travels from the shipper to the consumer, and its Kafka wire form.

The Kafka record *value* is the original line bytes (no newline), unchanged, so any consumer can
read it; the record *key* is the Component (one service's lines stay ordered in one partition);
the line's source identity and pod metadata travel in record *headers* named here.

Readers see every envelope as one ``lp.*`` → str dict (:func:`decode_headers`); on the wire there
are three layouts:

- version 2 (written today): two headers per record. ``lp.meta`` holds everything a file's run of
  lines shares — the version, node, namespace, pod, pod uid, container, Component, log type, path,
  access format, file id, read time and flags — NUL-separated in that order (none of them can
  contain a NUL: they are Kubernetes names, a POSIX path, decimal digits; an empty format or flags
  field means no such header); it is one bytes object per run, shared by its records. ``lp.offset``
  is the line's own. Why: aiokafka encodes each header of each record in its own steps, and eleven
  of them cost more CPU per line than reading, splitting and batching the line together
  (docs/BENCHMARKS.md, "Shipper (issue 10)").
- version 1: the same fields as eleven headers of their own (``lp.v`` = ``1`` first).
- version 0: version 1 without ``lp.v`` (written before versions; ``tests/logpipe/core/fixtures/
  envelope-v0.json`` holds real ones).

All three decode to the same dict, so the parsers never see the difference; the consumer's C encoder
(``parsers/_access_encoder.c``) reads ``lp.meta`` the same way. A later version that changes what a
field means raises the number, and readers dispatch on :func:`envelope_version`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENVELOPE_VERSION = 2
H_VERSION = "lp.v"  # the envelope's version, decimal ASCII; absent: version 0 (same layout as 1)
H_META = "lp.meta"  # version 2: the per-run fields below, NUL-separated (META_FIELDS order)
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

# The fields of ``lp.meta``, in their wire order (the C encoder reads the same order).
META_FIELDS = (H_VERSION, H_NODE, H_NAMESPACE, H_POD, H_POD_UID, H_CONTAINER, H_COMPONENT, H_TYPE, H_PATH,
               H_FORMAT, H_FILE_ID, H_READ_TS, H_FLAGS)
_OPTIONAL = (H_FORMAT, H_FLAGS)  # "" on the wire = no such header (as version 1 wrote none then)

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
    """The record headers of one file's lines (version 2): the only place their layout is written.

    ``head`` is the fixed part of ``lp.meta`` (version to file id; the format is empty when no rule
    chose one), built once per file; :meth:`meta`
    adds a run's read time and flags, once per run; :meth:`line` pairs it with a line's offset.
    """

    __slots__ = ("head", "meta_of")

    def __init__(self, m: SourceMeta) -> None:
        self.meta_of = m
        self.head = b"\0".join((ENVELOPE_VERSION_BYTES, m.node.encode(), m.namespace.encode(), m.pod.encode(),
                                m.pod_uid.encode(), m.container.encode(), m.component.encode(),
                                m.log_type.encode(), m.path.encode(), m.access_format.encode(),
                                m.file_id.encode()))

    def meta(self, read_ts_ms: int, flags: Sequence[str]) -> tuple[str, bytes]:
        """The ``lp.meta`` header of a run read at ``read_ts_ms`` with ``flags``."""
        return H_META, b"%b\0%d\0%b" % (self.head, read_ts_ms, ",".join(flags).encode())

    @staticmethod
    def line(meta: tuple[str, bytes], offset: int) -> list[tuple[str, bytes]]:
        """The headers of the line at ``offset`` of a run with ``meta``."""
        return [meta, (H_OFFSET, b"%d" % offset)]


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
        return HeaderTemplate.line(HeaderTemplate(self.meta).meta(self.read_ts_ms, self.flags), self.offset)

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
    """Kafka headers as a str→str dict (invalid UTF-8 replaced, never raises); ``lp.meta`` is unpacked
    into its fields, so every version decodes to the same keys."""
    try:  # the strict decoder with no arguments is ~25 % cheaper per record; invalid bytes are rare
        d = {k: v.decode() for k, v in (headers or ())}
    except (UnicodeDecodeError, AttributeError):  # invalid UTF-8, or a null header value (Kafka allows it)
        d = {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else "" for k, v in (headers or ())}
    packed = d.pop(H_META, None)
    if packed is not None:
        unpack_meta(packed, d)
    return d


def unpack_meta(packed: str, into: dict[str, str]) -> None:
    """The fields of an ``lp.meta`` value into ``into`` (headers of their own, if any, win: they came later).

    A version this reader does not know, or a malformed value, sets only ``lp.v`` (``-1`` if unreadable):
    the parsers then refuse the record with a reason instead of guessing."""
    parts = packed.split("\0")
    if parts[0] != "2" or len(parts) != len(META_FIELDS):
        into.setdefault(H_VERSION, parts[0] if parts[0].isdigit() else "-1")
        return
    for k, v in zip(META_FIELDS, parts, strict=True):
        if v or k not in _OPTIONAL:
            into.setdefault(k, v)


def document_id(file_id: str, offset: int | str) -> str:
    """The Elasticsearch ``_id`` of a line: deterministic from its source identity, so a
    redelivered line overwrites itself instead of duplicating."""
    return hashlib.blake2b(f"{file_id}@{offset}".encode(), digest_size=16).hexdigest()
