"""Stories of how lines are cut: partial, over-long, invalid UTF-8 (memory sink, no Kafka)."""

from __future__ import annotations

from pathlib import Path

from tests.shipper.stories import ShipperEnv


async def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write("app.log", b"first\nsecond hal")
    env.add("app.log")
    await env.ship()
    assert env.sink.values() == [b"first"]
    env.expect_offset("app.log", 6)
    env.write("app.log", b"f\n")
    await env.ship(advance=1)
    assert env.sink.values() == [b"first", b"second half"]
    assert env.sink.delivered[1].offset == 6 and env.sink.delivered[1].flags == ()


async def test_partial_last_line_is_flushed_after_the_timeout(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, partial_line_timeout=2.0)
    env.write("app.log", b"first\nstuck")
    env.add("app.log")
    await env.ship()
    await env.ship(rounds=1, advance=1)
    assert env.sink.values() == [b"first"]
    await env.ship(rounds=1, advance=1.5)
    assert env.sink.values() == [b"first", b"stuck"]
    assert env.sink.delivered[1].flags == ("partial",)
    env.expect_offset("app.log", 11)
    env.write("app.log", b" more\nnext\n")
    await env.ship()
    assert env.sink.values()[2:] == [b" more", b"next"]


async def test_over_long_line_is_truncated_and_flagged_and_the_file_goes_on(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, max_line_bytes=100, read_chunk_bytes=4096)
    env.write("app.log", b"short\n" + b"x" * 10_000 + b"\n" + b"after\n")
    env.add("app.log")
    await env.ship()
    assert [len(v) for v in env.sink.values()] == [5, 100, 5]
    assert env.sink.delivered[1].flags == ("truncated",)
    assert env.sink.delivered[2].value == b"after" and env.sink.delivered[2].offset == 6 + 10_001
    env.expect_offset("app.log", 6 + 10_001 + 6)


async def test_over_long_line_without_newline_is_cut_and_skipped_without_stalling(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, max_line_bytes=100, read_chunk_bytes=4096)
    env.write("app.log", b"y" * 50_000)  # no newline yet: far past the limit
    env.add("app.log")
    await env.ship(advance=10)
    assert [len(v) for v in env.sink.values()] == [100]
    env.write("app.log", b"y" * 1000 + b"\nnext\n")
    await env.ship()
    assert env.sink.values()[1:] == [b"next"]
    env.expect_offset("app.log", 51_006)


async def test_over_long_line_can_be_dead_lettered(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, max_line_bytes=100, long_lines="dead_letter", read_chunk_bytes=4096)
    env.write("app.log", b"ok\n" + b"z" * 500 + b"\n")
    env.add("app.log")
    await env.ship()
    dead = env.sink.delivered[1]
    assert "deadletter" in dead.flags and "reason:line_too_long" in dead.flags and len(dead.value) == 100


async def test_invalid_utf8_passes_through_as_bytes(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    raw = b"\xff\xfe bad \xc3\x28 bytes"
    env.write("app.log", raw + b"\n")
    env.add("app.log")
    await env.ship(advance=10)
    assert env.sink.values() == [raw]


async def test_crlf_and_empty_lines_are_kept_as_written(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write("app.log", b"a\r\n\nb\n")
    env.add("app.log")
    await env.ship()
    assert env.sink.values() == [b"a\r", b"", b"b"]
    assert [r.offset for r in env.sink.delivered] == [0, 3, 4]
