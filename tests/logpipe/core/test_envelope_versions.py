"""Upgrades: Kafka records written by the release before envelope versions (``fixtures/envelope-v0.json``,
consumed from the real Kafka as today's ``logpipe ship`` wrote them: access, app, trace and CRI stdout
lines) are read by this consumer exactly like version-1 records, on both the Python and the C path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from logpipe.core.envelope import (
    ENVELOPE_VERSION,
    H_VERSION,
    LineRecord,
    SourceMeta,
    decode_headers,
    envelope_version,
)
from parsers import Many, Parsed
from parsers.access_encoder import AccessEncoder
from parsers.fieldmap import FieldMap
from parsers.line_parser import LineParser
from tests.parsers.test_access_encoder import assert_same, reference

FIXTURE = Path(__file__).parent / "fixtures" / "envelope-v0.json"
INGESTED = "2026-12-01T20:00:05.000Z"


def records() -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = orjson.loads(FIXTURE.read_bytes())
    return recs


def wire_headers(rec: dict[str, Any], version: str | None = None) -> list[tuple[str, bytes]]:
    h = [(k, v.encode()) for k, v in rec["headers"]]
    return h if version is None else [(H_VERSION, version.encode()), *h]


def doc_without_ingest_time(result: Any) -> dict[str, Any]:
    assert isinstance(result, Parsed), result
    doc = dict(result.doc)
    doc.get("event", {}).pop("ingested", None)
    return doc


def docs(result: Any) -> list[dict[str, Any]]:
    """The documents of one record (a span record becomes several: the span, its service, ...)."""
    parts = result.parts if isinstance(result, Many) else (result,)
    return [doc_without_ingest_time(p) for p in parts]


def test_the_fixture_is_todays_format() -> None:
    recs = records()
    assert {r["topic"] for r in recs} == {"access", "app", "trace", "stdout"}
    for r in recs:
        assert envelope_version(decode_headers(wire_headers(r))) == 0
        assert H_VERSION not in dict(r["headers"])


@pytest.mark.parametrize("i", range(7))
def test_version_0_records_parse_like_version_1(i: int) -> None:
    rec = records()[i]
    value = rec["value"].encode()
    v0 = LineParser().parse(value, decode_headers(wire_headers(rec)))
    v1 = LineParser().parse(value, decode_headers(wire_headers(rec, str(ENVELOPE_VERSION))))
    assert docs(v0) == docs(v1)
    assert docs(v0)[0]["logpipe"]["file_id"] == dict(rec["headers"])["lp.file_id"]


def test_version_0_access_records_take_the_c_path_like_version_1() -> None:
    enc = AccessEncoder(FieldMap(), "logpipe")
    for rec in (r for r in records() if r["topic"] == "access"):
        value = rec["value"].encode()
        for headers in (wire_headers(rec), wire_headers(rec, "1")):
            native = enc.encode(value, headers, INGESTED)
            assert native is not None, "a plain access record must take the fast path"
            assert_same(native, reference(value, headers, INGESTED, "logpipe"), rec["value"][:80])


def test_the_shipper_writes_the_current_version_first() -> None:
    meta = SourceMeta("node-1", "shop", "web-1", "uid", "web", "web", "access", "/p/access.log", "fingerprint::ab")
    h = LineRecord(meta, 0, b"x", 1).headers()
    assert h[0] == (H_VERSION, str(ENVELOPE_VERSION).encode())
    assert envelope_version(decode_headers(h)) == ENVELOPE_VERSION
    assert envelope_version({H_VERSION: "x1"}) == -1
