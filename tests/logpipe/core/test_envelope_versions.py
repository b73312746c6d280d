"""Upgrades: Kafka records written by the release before envelope versions (``fixtures/envelope-v0.json``,
consumed from the real Kafka as that release's ``logpipe ship`` wrote them: access, app, trace and CRI
stdout lines), the same records in the version-1 layout (eleven headers, ``lp.v`` = 1) and in today's
version 2 (``lp.meta`` + ``lp.offset``) are read by this consumer exactly alike, on both the Python and
the C path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from logpipe.core.envelope import (
    ENVELOPE_VERSION,
    H_FORMAT,
    H_META,
    H_OFFSET,
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


def v2_headers(rec: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The fixture's record as today's shipper writes it (version 2), from the same fields."""
    h = dict(rec["headers"])
    meta = SourceMeta(h["lp.node"], h["lp.namespace"], h["lp.pod"], h["lp.pod_uid"], h["lp.container"],
                      h["lp.component"], h["lp.type"], h["lp.path"], h["lp.file_id"])
    flags = tuple(h["lp.flags"].split(",")) if h.get("lp.flags") else ()
    headers = LineRecord(meta, int(h["lp.offset"]), rec["value"].encode(), int(h["lp.read_ts"]), flags).headers()
    assert [k for k, _ in headers] == [H_META, H_OFFSET]
    return headers


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
def test_versions_0_1_and_2_parse_alike(i: int) -> None:
    rec = records()[i]
    value = rec["value"].encode()
    v0 = LineParser().parse(value, decode_headers(wire_headers(rec)))
    v1 = LineParser().parse(value, decode_headers(wire_headers(rec, "1")))
    v2 = LineParser().parse(value, decode_headers(v2_headers(rec)))
    assert docs(v0) == docs(v1) == docs(v2)
    assert docs(v0)[0]["logpipe"]["file_id"] == dict(rec["headers"])["lp.file_id"]
    d1, d2 = decode_headers(wire_headers(rec, "1")), decode_headers(v2_headers(rec))
    assert d1 == {**d2, H_VERSION: "1"}  # the same fields, only the version differs


def test_versions_0_1_and_2_take_the_c_path_alike() -> None:
    enc = AccessEncoder(FieldMap(), "logpipe")
    for rec in (r for r in records() if r["topic"] == "access"):
        value = rec["value"].encode()
        encoded = []
        for headers in (wire_headers(rec), wire_headers(rec, "1"), v2_headers(rec)):
            native = enc.encode(value, headers, INGESTED)
            assert native is not None, "a plain access record must take the fast path"
            assert_same(native, reference(value, headers, INGESTED, "logpipe"), rec["value"][:80])
            encoded.append(native)
        assert encoded[0] == encoded[1] == encoded[2]


def test_the_shipper_writes_the_current_version() -> None:
    meta = SourceMeta("node-1", "shop", "web-1", "uid", "web", "web", "access", "/p/access.log", "fingerprint::ab")
    h = LineRecord(meta, 7, b"x", 1, ("partial",)).headers()
    fields = [b"2", b"node-1", b"shop", b"web-1", b"uid", b"web", b"web", b"access", b"/p/access.log", b"",
              b"fingerprint::ab", b"1", b"partial"]  # b"": no access format chosen
    assert h == [(H_META, b"\0".join(fields)), (H_OFFSET, b"7")]
    assert ENVELOPE_VERSION == 2
    assert envelope_version(decode_headers(h)) == ENVELOPE_VERSION
    assert envelope_version({H_VERSION: "x1"}) == -1


@pytest.mark.parametrize("packed", [b"3\0node-1\0future layout", b"2\0too\0few", b"2" + b"\0x" * 13, b"garbage"])
def test_an_unknown_or_malformed_meta_is_refused_with_a_reason_on_both_paths(packed: bytes) -> None:
    """No guessing: the record is dead-lettered by the Python path (the C path declines and hands it over)."""
    headers = [(H_META, packed), (H_OFFSET, b"0")]
    value = b'{"time":"2026-12-01T20:00:00Z","method":"GET","path":"/","status":200}'
    d = decode_headers(headers)
    assert set(d) == {H_VERSION, H_OFFSET}
    assert envelope_version(d) == (int(packed[:1]) if packed[:1].isdigit() else -1)
    assert AccessEncoder(FieldMap(), "logpipe").encode(value, headers, INGESTED) is None
    result = LineParser().parse(value, d)
    assert not isinstance(result, Parsed | Many), result


@pytest.mark.parametrize("fmt", ["json", "combined"])
def test_a_chosen_access_format_travels_in_the_meta_like_its_own_header(fmt: str) -> None:
    rec = next(r for r in records() if r["topic"] == "access")
    value = rec["value"].encode()
    h = dict(rec["headers"])
    meta = SourceMeta(h["lp.node"], h["lp.namespace"], h["lp.pod"], h["lp.pod_uid"], h["lp.container"],
                      h["lp.component"], h["lp.type"], h["lp.path"], h["lp.file_id"], access_format=fmt)
    v2 = LineRecord(meta, int(h["lp.offset"]), value, int(h["lp.read_ts"])).headers()
    v1 = [*wire_headers(rec, "1"), (H_FORMAT, fmt.encode())]
    assert decode_headers(v2) == {**decode_headers(v1), H_VERSION: "2"}
    enc = AccessEncoder(FieldMap(), "logpipe")
    if fmt == "json":  # the C path takes both alike
        assert enc.encode(value, v2, INGESTED) == enc.encode(value, v1, INGESTED) is not None
    else:  # a text format is the Python path's, in both layouts
        assert enc.encode(value, v2, INGESTED) is None and enc.encode(value, v1, INGESTED) is None
    assert docs(LineParser().parse(value, decode_headers(v2))) == docs(LineParser().parse(value, decode_headers(v1)))
