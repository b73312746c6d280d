"""Kafka record batches (format v2) built straight from runs of lines, for the shipper's hot path.

aiokafka's builder takes one record at a time with its headers as a list of (str, bytes) pairs and
encodes all of them per record (~3 µs a line with our 11 headers, the shipper's largest cost). Here
a run of one file's lines shares its key and all headers but the line's offset, so those are encoded
once per run and a line costs a few slices joined into one buffer. The compressed payload is
handed to aiokafka as a ready :class:`EncodedBatch` through ``send_batch``; aiokafka still does
the rest (idempotent producer id and sequence, retries, acks).

Format: https://kafka.apache.org/documentation/#recordbatch (varints are zigzag-encoded).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from aiokafka.codec import gzip_encode, lz4_encode, zstd_encode
from aiokafka.record.util import calc_crc32c

# compression codec ids in the batch attributes
CODECS: dict[str, int] = {"none": 0, "gzip": 1, "lz4": 3, "zstd": 4}

_HEADER = struct.Struct(">qiibIhiqqqhii")  # base offset .. record count: 61 bytes
_CRC_FROM = 21  # the CRC covers attributes .. end
_TABLE = 1 << 14


def varint(v: int) -> bytes:
    """Zigzag varint of a signed 64-bit integer."""
    z = (v << 1) ^ (v >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_VI: list[bytes] = [varint(i) for i in range(_TABLE)]
_PREFIX: list[bytes] = [b"\x00\x00" + v for v in _VI]  # attributes 0, timestamp delta 0, offset delta


def _vi(v: int) -> bytes:
    return _VI[v] if v < _TABLE else varint(v)


def _field(b: bytes) -> bytes:
    return _vi(len(b)) + b


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> bytes:
    """Headers in record form, without their count."""
    return b"".join(_field(k.encode()) + _field(v) for k, v in headers)


class RunHeaders:
    """The parts of a record shared by a run of lines: key and every header but ``lp.offset``'s value.

    ``before``: the header count, the headers before the offset and the offset header's name
    (``before_body`` is all of it but the count, as made by :func:`encode_headers`, so a file's
    share can be encoded once); ``after``: the headers after the offset's value; ``count``: all headers.
    """

    __slots__ = ("after", "before", "const", "key_part")

    def __init__(self, key: bytes, before_body: bytes, after: bytes, count: int) -> None:
        self.key_part = _field(key)
        self.before = _vi(count) + before_body
        self.after = after
        # per record: attributes + timestamp delta (2) + key + headers + the offset value's length (1)
        self.const = 2 + len(self.key_part) + len(self.before) + 1 + len(self.after)

    @classmethod
    def of(cls, key: bytes, before: Sequence[tuple[str, bytes]], offset_name: str,
           after: Sequence[tuple[str, bytes]]) -> RunHeaders:
        """From header lists: ``before``, then ``offset_name`` (its value per line), then ``after``."""
        body = encode_headers([*before, (offset_name, b"")])[:-1]  # without the empty value's length
        return cls(key, body, encode_headers(after), len(before) + 1 + len(after))


def encode_run(out: list[bytes], values: Sequence[bytes], offset: int, h: RunHeaders, delta: int,
               size: int, max_size: int) -> tuple[int, int, int]:
    """Append the records of ``values`` (lines from ``offset``, back to back) to ``out``.

    ``delta`` is the offset delta of the first record within the batch, ``size`` the batch's
    encoded size so far; stops before a record that would take it past ``max_size`` (a batch's
    first record is always taken). Returns (lines taken, next delta, new size).
    """
    vi, prefix, table = _VI, _PREFIX, _TABLE
    key_part, before, after, const = h.key_part, h.before, h.after, h.const
    pos = offset
    taken = 0
    for v in values:
        n = len(v)
        od = b"%d" % pos
        vn = vi[n] if n < table else varint(n)
        dp = prefix[delta] if delta < table else b"\x00\x00" + varint(delta)
        body = const + len(dp) - 2 + len(vn) + n + len(od)
        vb = vi[body] if body < table else varint(body)
        size += len(vb) + body
        if size > max_size and delta:
            return taken, delta, size - len(vb) - body
        out += (vb, dp, key_part, vn, v, before, vi[len(od)], od, after)
        pos += n + 1
        delta += 1
        taken += 1
    return taken, delta, size


def compressor(codec: str, level: int | None) -> Callable[[bytes], bytes]:
    """The payload compression of ``codec`` (Kafka's framing: lz4 frames without linked blocks)."""
    if codec == "zstd":
        return lambda data: zstd_encode(data, level=level if level is not None else 1)
    if codec == "lz4":
        return lambda data: lz4_encode(data, level=level if level is not None else 1)
    if codec == "gzip":
        return lambda data: gzip_encode(data, compresslevel=level)
    return bytes


class EncodedBatch:
    """A finished record batch in the shape aiokafka's producer expects from a ``BatchBuilder``.

    aiokafka sets the idempotent producer state just before the batch is sent, then asks for the
    bytes (``_build``); the payload is already encoded and compressed, so only the 61-byte header
    and its CRC are left.
    """

    def __init__(self, payload: bytes, count: int, codec_id: int, timestamp_ms: int) -> None:
        self._payload = payload
        self._count = count
        self._attributes = codec_id
        self._ts = timestamp_ms
        self._producer = (-1, -1, -1)
        self._buffer: bytes | None = None

    def append(self, **_: object) -> None:
        """Full: a producer ``send`` never adds to this batch."""
        return None

    def close(self) -> None:
        """Always closed."""

    def closed(self) -> bool:
        return True

    def size(self) -> int:
        return _HEADER.size + len(self._payload)

    def record_count(self) -> int:
        return self._count

    def _set_producer_state(self, producer_id: int, producer_epoch: int, base_sequence: int) -> None:
        if self._buffer is None:  # fixed once built, like aiokafka's (a retry resends the same bytes)
            self._producer = (producer_id, producer_epoch, base_sequence)

    def _build(self) -> bytes:
        if self._buffer is None:
            pid, epoch, seq = self._producer
            buf = bytearray(_HEADER.size)
            _HEADER.pack_into(buf, 0, 0, _HEADER.size - 12 + len(self._payload), -1, 2, 0, self._attributes,
                              self._count - 1, self._ts, self._ts, pid, epoch, seq, self._count)
            buf += self._payload
            struct.pack_into(">I", buf, 17, calc_crc32c(memoryview(buf)[_CRC_FROM:]))
            self._buffer = bytes(buf)
        return self._buffer
