"""Option parsing of `logpipe query`: aggregates, time ranges, rotated-set order, malformed lines."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from logpipe.tools.query.aggregates import Agg, SpecError, parse_aggs, parse_by, split_list
from logpipe.tools.query.buckets import bucket_seconds
from logpipe.tools.query.inputs import first_malformed, is_malformed, rotation_key
from logpipe.tools.timerange import TimeSpecError


def test_aggregates_keep_their_text_as_the_output_key() -> None:
    aggs = parse_aggs("count, p99(request_time),avg( bytes ),p99.9(request_time),distinct(url.path)")
    assert [a.key for a in aggs] == [
        "count",
        "p99(request_time)",
        "avg( bytes )",
        "p99.9(request_time)",
        "distinct(url.path)",
    ]
    assert aggs[1] == Agg("quantile", "request_time", 0.99, "p99(request_time)")
    assert aggs[2].field == "bytes"
    assert aggs[3].fraction == pytest.approx(0.999)


def test_default_aggregate_is_count() -> None:
    assert parse_aggs(None) == [Agg("count", None, 0.0, "count")]


@pytest.mark.parametrize("bad", ["sum", "count(status)", "p101(x)", "median(x)", "sum(a", "p(x)"])
def test_bad_aggregates_name_the_accepted_forms(bad: str) -> None:
    with pytest.raises(SpecError):
        parse_aggs(bad)


def test_lists_split_on_top_level_commas_only() -> None:
    assert split_list("count,p99(a),sum(b)") == ["count", "p99(a)", "sum(b)"]
    assert parse_by(" status , url.path ") == ["status", "url.path"]


def test_buckets() -> None:
    assert bucket_seconds("1m") == 60.0
    assert bucket_seconds("500ms") == 0.5
    with pytest.raises(TimeSpecError):
        bucket_seconds("0s")


def test_a_rotated_set_sorts_oldest_first_and_the_live_file_last() -> None:
    names = ["access.log", "access.log.1", "access.log.10.gz", "access.log.2.gz", "access.log.3.zst"]
    assert sorted(names, key=rotation_key) == [
        "access.log.10.gz",
        "access.log.3.zst",
        "access.log.2.gz",
        "access.log.1",
        "access.log",
    ]
    dated = ["app.log", "app.log-20261127.gz", "app.log-20261125.gz"]
    assert sorted(dated, key=rotation_key) == ["app.log-20261125.gz", "app.log-20261127.gz", "app.log"]


def test_what_counts_as_malformed() -> None:
    assert is_malformed(b'{"a": 1}\n') is False
    assert is_malformed(b"   \n") is None
    for line in (b"[1]", b"null", b'"s"', b'{"a":', b'{"a":1}{"b":2}', b"text"):
        assert is_malformed(line) is True


def test_first_malformed_reads_compressed_files_and_stops_there(tmp_path: Path) -> None:
    gz = tmp_path / "a.log.gz"
    gz.write_bytes(gzip.compress(b'{"a":1}\n\n{"b":2}\n{oops\n{"c":3}\nbad\n'))
    assert first_malformed(gz) == 4
    clean = tmp_path / "b.log"
    clean.write_bytes(b'{"a":1}\n')
    assert first_malformed(clean) is None


def _naive_shape(data: bytes) -> tuple[int, int | None]:
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines = lines[:-1]
    fails = [i for i, line in enumerate(lines, 1) if line.strip() and not _shaped(line.strip())]
    return len(fails), (fails[0] if fails else None)


def _shaped(text: bytes) -> bool:
    return text.startswith(b"{") and text.endswith(b"}")


def test_the_chunked_shape_scan_equals_a_line_by_line_scan_at_every_chunk_size(tmp_path: Path) -> None:
    import random

    from logpipe.tools.query.inputs import _shape_scan

    rng = random.Random(5)
    pieces = [b'{"a":1}', b'{"b":22}', b"", b"  ", b"oops", b"{trunc", b"x}", b'{"c":3}\r', b" {} "]
    for trial in range(150):
        data = b"\n".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30)))
        data += b"\n" if trial % 3 else b""
        path = tmp_path / f"{trial}.log"
        path.write_bytes(data)
        for size in (1, 2, 3, 7, 64, 1 << 20):
            assert _shape_scan(path, chunk_size=size) == _naive_shape(data), (data, size)


def test_first_malformed_with_a_count_finds_well_shaped_bad_lines_too(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    path.write_bytes(b'{"a":1}\n{"a":1}{"b":2}\n{"ok":1}\nbroken\n')
    # Two malformed lines but only one looks wrong: the exact scan must run and find line 2.
    assert first_malformed(path, expected=2) == 2
    assert first_malformed(path, expected=1) == 4  # trusting the count (what DuckDB says) takes the fast path
