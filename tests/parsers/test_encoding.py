"""Lines whose bytes are not UTF-8 are indexed, flagged and keep their bytes (``parsers/encoding.py``)."""

from __future__ import annotations

import base64

import orjson
import pytest

from parsers import LineParser, Unparseable
from tests.parsers.stories import field, headers, parse_doc

LATIN1_UA = "Mozilla/5.0 (Windows; été)".encode("latin-1")


def original(doc: dict[str, object]) -> bytes:
    lp = doc["logpipe"]
    assert isinstance(lp, dict)
    return base64.b64decode(lp["original_base64"])


def test_a_json_access_line_with_latin1_bytes_is_indexed_not_dead_lettered() -> None:
    line = b'{"status":404,"uri":"/caf\xe9/\xff","http_user_agent":"' + LATIN1_UA + b'","request_time":"0.002"}'
    doc = parse_doc(line)
    assert "invalid_utf8" in doc["logpipe"]["flags"]
    assert field(doc, "http.response.status_code") == 404
    assert field(doc, "url.path") == "/caf\ufffd/\ufffd"
    assert field(doc, "user_agent.original") == LATIN1_UA.decode("utf-8", "replace")
    assert doc["message"] == line.decode("utf-8", "replace")
    assert original(doc) == line


def test_valid_utf8_keeps_no_copy_of_the_bytes() -> None:
    doc = parse_doc('{"status":200,"uri":"/健康","http_user_agent":"é"}'.encode())
    assert "original_base64" not in doc["logpipe"]
    assert "invalid_utf8" not in doc["logpipe"].get("flags", [])


def test_invalid_json_stays_a_dead_letter_whatever_its_encoding() -> None:
    result = LineParser().parse(b'{"status":200,"ua":"\xe9"', headers("access"))
    assert isinstance(result, Unparseable)
    assert "invalid JSON" in result.reason


@pytest.mark.parametrize(
    "line",
    [b'{"level":"error","msg":"caf\xe9 down"}', b"ERROR caf\xe9 down"],
    ids=["json", "text"],
)
def test_app_lines_json_or_text(line: bytes) -> None:
    doc = parse_doc(line, "app")
    assert doc["message"].endswith("caf\ufffd down")
    assert field(doc, "log.level") == "error"
    assert doc["logpipe"]["flags"][0] == "invalid_utf8"
    assert "invalid_json" not in doc["logpipe"]["flags"]
    assert original(doc) == line


def test_cri_content_reassembled_from_fragments() -> None:
    parser = LineParser()
    first = b"2026-11-27T12:00:00.000000001Z stdout P " + b'{"msg":"caf\xe9'
    last = b"2026-11-27T12:00:00.000000002Z stdout F " + b' \xff"}'
    parser.parse(first, headers("stdout", 0))
    result = parser.parse(last, headers("stdout", len(first) + 1))
    doc = result.doc  # type: ignore[union-attr]
    assert doc["message"] == "caf\ufffd \ufffd"
    assert "invalid_utf8" in doc["logpipe"]["flags"]
    assert original(doc) == b'{"msg":"caf\xe9 \xff"}'
    assert doc["log"]["offset"] == 0


def test_span_lines() -> None:
    span = orjson.dumps({"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "id": "00f067aa0ba902b7",
                         "name": "@N@", "timestamp": 1795780800000000, "duration": 1200})
    line = span.replace(b"@N@", b"GET /caf\xe9")
    doc = parse_doc(line, "trace")
    assert field(doc, "span.name") == "GET /caf\ufffd"
    assert "invalid_utf8" in doc["logpipe"]["flags"]
    assert original(doc) == line
