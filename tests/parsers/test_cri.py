from __future__ import annotations

import pytest

from parsers import LineParser, Parsed, Partial, Unparseable
from parsers.levels import guess_level
from tests.parsers.stories import field, headers, parsed


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cri(stream: str, tag: str, content: str, stamp: str = "2026-11-27T10:00:00.123456789Z") -> bytes:
    return f"{stamp} {stream} {tag} {content}".encode()


def test_full_plain_line_keeps_message_stream_and_runtime_time() -> None:
    doc = parsed(LineParser().parse(cri("stderr", "F", "ERROR database unreachable"), headers("stdout", 77)))
    assert doc["message"] == "ERROR database unreachable"
    assert field(doc, "log.level") == "error"
    assert field(doc, "logpipe.stream") == "stderr"
    assert doc["@timestamp"] == "2026-11-27T10:00:00.123456Z"
    assert field(doc, "log.offset") == 77


def test_json_content_is_mapped_like_an_app_log() -> None:
    line = cri(
        "stdout", "F", '{"level":"warn","msg":"slow query","trace_id":"abc123","time":"2026-11-27T18:00:01+08:00"}'
    )
    doc = parsed(LineParser().parse(line, headers("stdout")))
    assert (doc["message"], field(doc, "log.level"), field(doc, "trace.id")) == ("slow query", "warn", "abc123")
    assert doc["@timestamp"] == "2026-11-27T18:00:01+08:00"  # the app's own time wins


def test_fragments_are_reassembled_with_the_first_offset() -> None:
    parser = LineParser()
    r1 = parser.parse(cri("stdout", "P", '{"msg":"a'), headers("stdout", 100))
    r2 = parser.parse(cri("stdout", "P", "bcd"), headers("stdout", 200))
    r3 = parser.parse(cri("stdout", "F", 'e"}'), headers("stdout", 300))
    assert r1 == Partial("fingerprint::c0ffee", 100, "stdout") and r2 == Partial("fingerprint::c0ffee", 200, "stdout")
    assert isinstance(r3, Parsed) and r3.absorbed == 2
    assert r3.doc["message"] == "abcde"
    assert field(r3.doc, "log.offset") == 100


def test_interleaved_streams_reassemble_separately() -> None:
    parser = LineParser()
    assert isinstance(parser.parse(cri("stdout", "P", "out-1 "), headers("stdout", 0)), Partial)
    err = parsed(parser.parse(cri("stderr", "F", "err line"), headers("stdout", 50)))
    out = parser.parse(cri("stdout", "F", "out-2"), headers("stdout", 90))
    assert err["message"] == "err line"
    assert isinstance(out, Parsed) and out.doc["message"] == "out-1 out-2" and out.absorbed == 1


def test_other_files_do_not_mix() -> None:
    parser = LineParser()
    parser.parse(cri("stdout", "P", "file-a "), headers("stdout", 0))
    b = parsed(parser.parse(cri("stdout", "F", "file-b"), headers("stdout", 0, lp_file_id="fingerprint::b")))
    assert b["message"] == "file-b"


def test_oversized_line_is_emitted_at_the_bound_and_flagged() -> None:
    parser = LineParser(max_partial_bytes=10)
    assert isinstance(parser.parse(cri("stdout", "P", "123456"), headers("stdout", 0)), Partial)
    over = parser.parse(cri("stdout", "P", "789012"), headers("stdout", 10))
    assert isinstance(over, Parsed) and over.absorbed == 1
    assert over.doc["message"] == "123456789012"
    assert "partial_overflow" in over.doc["logpipe"]["flags"]
    rest = parser.parse(cri("stdout", "F", "tail"), headers("stdout", 20))
    assert isinstance(rest, Parsed) and rest.absorbed == 0 and rest.doc["message"] == "tail"


def test_fragments_without_end_expire_flagged() -> None:
    clock = FakeClock()
    parser = LineParser(clock=clock)
    parser.parse(cri("stdout", "P", "never "), headers("stdout", 5))
    parser.parse(cri("stdout", "P", "ends"), headers("stdout", 9))
    assert parser.expire(30) == []
    clock.now += 31
    (expired,) = parser.expire(30)
    assert expired.absorbed == 2
    assert expired.doc["message"] == "never ends"
    assert field(expired.doc, "log.offset") == 5
    assert "partial_incomplete" in expired.doc["logpipe"]["flags"]
    assert parser.pending_fragments == 0


def test_replayed_fragments_restart_the_line() -> None:
    parser = LineParser()
    parser.parse(cri("stdout", "P", "abc"), headers("stdout", 0))
    parser.parse(cri("stdout", "P", "abc"), headers("stdout", 0))  # redelivered after a rebalance
    done = parser.parse(cri("stdout", "F", "def"), headers("stdout", 4))
    assert isinstance(done, Parsed) and done.doc["message"] == "abcdef" and done.absorbed == 1


@pytest.mark.parametrize(
    "line",
    [b"", b"garbage", b"2026-11-27T10:00:00Z stdin F x", b"2026-11-27T10:00:00Z stdout X x"],
)
def test_non_cri_lines_are_unparseable(line: bytes) -> None:
    assert isinstance(LineParser().parse(line, headers("stdout")), Unparseable)


def test_empty_content_is_an_empty_message() -> None:
    doc = parsed(LineParser().parse(b"2026-11-27T10:00:00Z stdout F", headers("stdout")))
    assert doc["message"] == ""


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("ERROR boom", "error"),
        ("WARN disk 91%", "warn"),
        ("[info] started", "info"),
        ("debug: x=1", "debug"),
        ("Warning: deprecated flag", "warn"),
        ("ERROR:root:failed", "error"),
        ("level=error msg=x", "error"),
        ("E1127 10:00:00.000000   1 controller.go:12] sync failed", "error"),
        ("2026-11-27T10:00:00Z INFO ready", "info"),
        ("2026-11-27 10:00:00,123 WARN slow", "warn"),
        ("Error handling improved", None),
        ("info about the ERROR", None),
        ("request failed with ERROR", None),
        ("2026-11-27 10:00:00 request ERROR", None),
        ("", None),
    ],
)
def test_level_is_guessed_only_from_a_leading_token(text: str, level: str | None) -> None:
    assert guess_level(text) == level


def test_buffered_fragments_are_bounded_over_all_files() -> None:
    parser = LineParser(max_buffered_bytes=10)
    assert isinstance(parser.parse(cri("stdout", "P", "aaaaaa"), headers("stdout", 0)), Partial)
    other = headers("stdout", 0, lp_file_id="fingerprint::other")
    flushed = parser.parse(cri("stdout", "P", "bbbbbb"), other)  # would hold 12 bytes: emitted now
    assert isinstance(flushed, Parsed) and flushed.doc["message"] == "bbbbbb"
    assert "partial_overflow" in flushed.doc["logpipe"]["flags"]
    assert parser.pending_fragments == 1 and parser.cri.total == 6
