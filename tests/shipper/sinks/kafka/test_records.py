"""Record batches encoded from runs of lines: byte-identical to aiokafka's builder, readable by its reader."""

from __future__ import annotations

import os

import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from shipper.sinks.kafka.records import CODECS, EncodedBatch, RunHeaders, compressor, encode_run, varint

BEFORE = [("lp.node", b"node-1"), ("lp.namespace", b""), ("lp.path", "/pods/ü/a.log".encode())]
AFTER = [("lp.file_id", b"fingerprint::00ff"), ("lp.read_ts", b"1700000000000")]
VALUES = [b"first", b"", b"\xff\xfe not utf-8", os.urandom(20_000), b"x" * 70_000, b"last"]
TS = 1700000000123


def reference(values: list[bytes], offset: int, count_from: int = 0) -> bytes:
    """The same records through aiokafka's own builder (uncompressed)."""
    b = DefaultRecordBatchBuilder(2, 0, 0, 42, 3, 7, 1 << 30)
    pos = offset
    for i, v in enumerate(values):
        b.append(count_from + i, TS, b"web", v, [*BEFORE, ("lp.offset", str(pos).encode()), *AFTER])
        pos += len(v) + 1
    return bytes(b.build())


def encoded(values: list[bytes], offset: int, codec: str = "none", max_size: int = 1 << 30) -> list[EncodedBatch]:
    h = RunHeaders.of(b"web", BEFORE, "lp.offset", AFTER)
    batches: list[EncodedBatch] = []
    while values:
        out: list[bytes] = []
        taken, count, _size = encode_run(out, values, offset, h, 0, 0, max_size)
        assert taken == count > 0
        eb = EncodedBatch(compressor(codec, None)(b"".join(out)), count, CODECS[codec], TS)
        eb._set_producer_state(42, 3, 7)
        batches.append(eb)
        offset += sum(map(len, values[:taken])) + taken
        values = values[taken:]
    return batches


def test_batch_is_byte_identical_to_aiokafkas_builder() -> None:
    (batch,) = encoded(VALUES, 1000)
    assert batch._build() == reference(VALUES, 1000)
    assert batch.record_count() == len(VALUES) and batch.closed()


@pytest.mark.parametrize("codec", ["zstd", "lz4", "gzip"])
def test_compressed_batch_reads_back_with_offsets_in_headers(codec: str) -> None:
    (batch,) = encoded(VALUES, 1000, codec)
    read = DefaultRecordBatch(batch._build())
    assert read.validate_crc() and read.compression_type == CODECS[codec]
    assert (read.producer_id, read.producer_epoch, read.base_sequence) == (42, 3, 7)
    recs = list(read)
    assert [r.value for r in recs] == VALUES
    assert [r.key for r in recs] == [b"web"] * len(VALUES)
    offsets = [int(dict(r.headers)["lp.offset"]) for r in recs]
    assert offsets == [1000 + sum(len(v) + 1 for v in VALUES[:i]) for i in range(len(VALUES))]
    assert recs[0].headers == [*BEFORE, ("lp.offset", b"1000"), *AFTER]


def test_a_full_batch_stops_before_the_record_that_does_not_fit_and_the_rest_goes_on() -> None:
    values = [b"%05d" % i * 40 for i in range(500)]  # 200-byte lines, ~300 bytes a record
    batches = encoded(values, 0, max_size=16 * 1024)
    assert len(batches) > 5
    assert all(len(b._build()) <= 16 * 1024 + 61 for b in batches)
    got = [r for b in batches for r in DefaultRecordBatch(b._build())]
    assert [r.value for r in got] == values
    pos = [int(dict(r.headers)["lp.offset"]) for r in got]
    assert pos == [201 * i for i in range(500)]


def test_a_record_larger_than_the_limit_goes_alone() -> None:
    (batch,) = encoded([b"y" * 5000], 0, max_size=1024)
    assert [r.value for r in DefaultRecordBatch(batch._build())] == [b"y" * 5000]


def test_producer_state_is_fixed_once_built() -> None:
    (batch,) = encoded([b"a"], 0)
    first = batch._build()
    batch._set_producer_state(1, 1, 1)  # a retry: the same bytes go again
    assert batch._build() == first


@pytest.mark.parametrize("v", [0, 1, 63, 64, 8191, 8192, 1 << 20, (1 << 62)])
def test_varint_is_zigzag(v: int) -> None:
    z, shift = 0, 0
    data = varint(v)
    assert all(b & 0x80 for b in data[:-1]) and not data[-1] & 0x80
    for byte in data:
        z |= (byte & 0x7F) << shift
        shift += 7
    assert (z >> 1) ^ -(z & 1) == v
