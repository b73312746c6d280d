"""Unit tests of the C extension ``parsers._access_encoder`` on its own: BLAKE2b, the action line, the
decline rules of the spec one by one, robustness against any bytes/headers, reference and memory leaks.

(The differential tests against the Python path are ``test_access_encoder.py``.)
"""

from __future__ import annotations

import gc
import hashlib
import random
import sys
import tracemalloc
import weakref
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.bulk import encode_item
from consumer.work import Work
from logpipe.core.envelope import document_id
from parsers.access_encoder import NATIVE_AVAILABLE, AccessEncoder
from parsers.document import TimeWindow
from parsers.extra import ExtraLimits
from parsers.fieldmap import FieldMap

if NATIVE_AVAILABLE:
    from parsers import _access_encoder as native

pytestmark = pytest.mark.skipif(not NATIVE_AVAILABLE, reason="parsers._access_encoder is not built (pip install -e .)")

READ_MS = 1_795_780_800_000  # 2026-11-27T12:00:00Z
INGESTED = "2026-11-27T12:00:01.234Z"
BASE_HEADERS: list[tuple[str, bytes]] = [
    ("lp.node", b"node-1"),
    ("lp.namespace", b"prod"),
    ("lp.pod", b"pay-gw-1"),
    ("lp.pod_uid", b"uid-1"),
    ("lp.container", b"app"),
    ("lp.component", b"pay-gw"),
    ("lp.type", b"access"),
    ("lp.path", b"/var/log/pay-gw/access.log"),
    ("lp.offset", b"1234"),
    ("lp.file_id", b"fingerprint::abc"),
    ("lp.read_ts", str(READ_MS).encode()),
]
BASE_LINE: dict[str, Any] = {
    "time": "2026-11-27T11:59:59.123Z",
    "method": "GET",
    "path": "/api/pay/create",
    "status": 200,
    "request_time": 0.25,
    "bytes": 512,
    "client_ip": "10.0.0.1",
    "user_agent": "curl/8.5.0",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "level": "info",
    "custom": "kept",
}


def encoder(prefix: str = "logpipe", limits: ExtraLimits | None = None, **kw: Any) -> AccessEncoder:
    return AccessEncoder(FieldMap(None, limits), prefix, **kw)


def line(**changes: Any) -> bytes:
    obj = dict(BASE_LINE)
    obj.update(changes)
    return orjson.dumps({k: v for k, v in obj.items() if v is not DROP})


DROP = object()


def headers(**changes: bytes | None) -> list[tuple[str, Any]]:
    """BASE_HEADERS with ``lp.<name>`` replaced (None value: sent as a null header)."""
    out: list[tuple[str, Any]] = []
    for k, v in BASE_HEADERS:
        name = k[3:]
        out.append((k, changes.pop(name) if name in changes else v))
    out.extend((f"lp.{k}", v) for k, v in changes.items())
    return out


def doc_of(item: bytes) -> dict[str, Any]:
    _, body, rest = item.split(b"\n")
    assert rest == b""
    return orjson.loads(body)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------- BLAKE2b


def test_blake2b_matches_hashlib_on_every_length_up_to_300() -> None:
    rng = random.Random(1)
    for n in range(301):
        for _ in range(3):
            data = rng.randbytes(n)
            assert native.blake2b16_hex(data) == hashlib.blake2b(data, digest_size=16).hexdigest(), n
    for n in (383, 384, 385, 1000, 4096):  # several blocks, block boundaries
        data = rng.randbytes(n)
        assert native.blake2b16_hex(data) == hashlib.blake2b(data, digest_size=16).hexdigest(), n


def test_id_is_document_id_for_file_ids_of_many_lengths() -> None:
    rng = random.Random(2)
    enc = encoder()
    for n in range(1, 300, 3):
        file_id = "".join(rng.choice("ab:-é😀") for _ in range(n))
        offset = rng.choice(["0", "7", "007", str(rng.randrange(10**18))])
        out = enc.encode(line(), headers(file_id=file_id.encode(), offset=offset.encode()), INGESTED)
        assert out is not None
        assert out[2] == document_id(file_id, int(offset))
        assert doc_of(out[0])["log"]["offset"] == int(offset)


# ------------------------------------------------------------------------------------------- action line


@pytest.mark.parametrize("prefix", ["logpipe", "lp-test_1", 'we"ird\\pre\x01fix\x1f\x7fé😀/', "p" * 300])
def test_action_line_is_what_encode_item_writes(prefix: str) -> None:
    out = encoder(prefix).encode(line(), headers(), INGESTED)
    assert out is not None
    item, index, doc_id = out
    assert index == f"{prefix}-access-2026.11.27"
    doc = doc_of(item)
    work = Work("t", 0, 0, [0], b"", [], None, 0, doc=doc, index=index, doc_id=doc_id)
    expected = encode_item(work, INGESTED)
    assert item.split(b"\n")[0] == expected.split(b"\n")[0]
    assert doc_of(expected) == doc  # re-encoding the document changes nothing (event.ingested included)


def test_index_day_is_the_utc_day_of_the_timestamp() -> None:
    enc = encoder(window=TimeWindow(max_future_s=None))
    cases = {
        "2026-11-27T23:30:00+08:00": "2026.11.27",
        "2026-11-27T01:30:00+08:00": "2026.11.26",
        "2026-11-27T22:30:00-05:30": "2026.11.28",
        "2024-02-29T00:00:00.5Z": None,  # one fraction digit: the Python path formats it
        "2024-02-29T00:00:00.500Z": "2024.02.29",
        "2026-11-27T10:00:00-00:00": "2026.11.27",
    }
    for ts, day in cases.items():
        out = enc.encode(line(time=ts), headers(), INGESTED)
        if day is None:
            assert out is None
            continue
        assert out is not None, ts
        assert out[1] == f"logpipe-access-{day}"
        want = ts[:-6] + "Z" if ts.endswith("00:00") else ts
        assert doc_of(out[0])["@timestamp"] == want
    # no event time: the read time's day, flagged
    out = enc.encode(line(time=DROP), headers(read_ts=b"1795737599999"), INGESTED)
    assert out is not None
    assert out[1] == "logpipe-access-2026.11.26"
    doc = doc_of(out[0])
    assert doc["@timestamp"] == doc["event"]["created"] == "2026-11-26T23:59:59.999Z"
    assert doc["logpipe"]["flags"] == ["timestamp_fallback"]
    out = enc.encode(line(time=DROP), headers(read_ts=b"1795737600000"), INGESTED)
    assert out is not None
    assert doc_of(out[0])["event"]["created"] == "2026-11-27T00:00:00Z"


# ------------------------------------------------------------------------------------------- the plain case


def test_plain_line_document() -> None:
    raw = line() + b"\r\n"
    out = encoder().encode(raw, headers(flags=b"truncated,,x,truncated"), INGESTED)
    assert out is not None
    assert doc_of(out[0]) == {
        "logpipe": {"file_id": "fingerprint::abc", "type": "access", "flags": ["truncated", "x", "truncated"]},
        "log": {"file": {"path": "/var/log/pay-gw/access.log"}, "offset": 1234, "level": "info"},
        "kubernetes": {
            "namespace": "prod",
            "pod": {"name": "pay-gw-1", "uid": "uid-1"},
            "node": {"name": "node-1"},
            "container": {"name": "app"},
        },
        "service": {"name": "pay-gw"},
        "event": {"created": "2026-11-27T12:00:00Z", "duration": 250_000_000, "ingested": INGESTED},
        "@timestamp": "2026-11-27T11:59:59.123Z",
        "http": {"request": {"method": "GET"}, "response": {"status_code": 200, "body": {"bytes": 512}}},
        "url": {"path": "/api/pay/create"},
        "client": {"ip": "10.0.0.1"},
        "user_agent": {"original": "curl/8.5.0"},
        "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"},
        "extra": {"custom": "kept"},
        "message": raw.decode().rstrip("\r\n"),
    }


@pytest.mark.parametrize(
    ("changes", "expect"),
    [
        ({"status": "007"}, {"http.response.status_code": 7}),
        # Times re-spelled as to_iso writes them (parsers/timestamps.py).
        ({"time": "2026-11-27T10:00:00.000Z"}, {"@timestamp": "2026-11-27T10:00:00Z"}),
        ({"time": "2026-11-27T10:00:00.000000+08:00"}, {"@timestamp": "2026-11-27T10:00:00+08:00"}),
        ({"time": "2026-11-27T10:00:00.120000+08:00"}, {"@timestamp": "2026-11-27T10:00:00.120+08:00"}),
        ({"time": "2026-11-27T10:00:00.000120-00:00"}, {"@timestamp": "2026-11-27T10:00:00.000120Z"}),
        ({"time": "2026-11-27T10:00:00.120+00:00"}, {"@timestamp": "2026-11-27T10:00:00.120Z"}),
        ({"status": -1}, {"flags": ["invalid_status"], "extra.status": "-1"}),
        ({"status": 1000}, {"flags": ["invalid_status"], "extra.status": "1000"}),
        ({"status": "abc"}, {"flags": ["invalid_status"], "extra.status": "abc"}),
        ({"level": 50}, {"log.level": "error"}),
        ({"level": 55}, {"flags": ["invalid_level"], "extra.level": "55"}),
        ({"level": "WARN"}, {"log.level": "warn"}),
        ({"method": 5}, {"http.request.method": "5"}),
        ({"path": "/a?b=1&c=\u00e9"}, {"url.path": "/a", "url.query": "b=1&c=\u00e9"}),
        ({"path": "?"}, {"url.path": ""}),
        ({"client_ip": " 10.1.2.3 , 10.0.0.9"}, {"client.ip": "10.1.2.3"}),
        (
            {"trace_id": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            {"trace.id": "4bf92f3577b34da6a3ce929d0e0e4736"},
        ),
        ({"request_time": " 0.004 "}, {"event.duration": 4_000_000}),
        ({"request_time": "12."}, {"event.duration": 12_000_000_000}),
        ({"request_time": 2}, {"event.duration": 2_000_000_000}),
        ({"request_time": "10000000000"}, {"flags": ["invalid_request_time"], "extra.request_time": "10000000000"}),
        (
            {"custom": None, "n": 5, "t": True, "f": False, "e": "", "d": "-"},
            {"extra": {"n": "5", "t": "true", "f": "false", "e": "", "d": "-"}},
        ),
        ({"method": None, "path": "", "bytes": None}, {"http.request.method": None, "url.path": ""}),
        ({"method": "", "bytes": ""}, {"http.request.method": "", "http.response.body.bytes": None}),
        ({"service": "pay-gw"}, {"extra.service": None}),
        ({"service": "other"}, {"extra.service": "other"}),
        (
            {"time": "2026-11-29T12:00:00Z"},
            {"flags": ["timestamp_out_of_range", "timestamp_fallback"], "extra.time": "2026-11-29T12:00:00Z"},
        ),
        ({"a.b": "dots", " ": "blank"}, {"extra": {"custom": "kept", "a_b": "dots", "_ ": "blank"}}),
        ({"user_agent": 'q"\\\n\u0001\u2028😀'}, {"user_agent.original": 'q"\\\n\u0001\u2028😀'}),
    ],
)
def test_outcomes(changes: dict[str, Any], expect: dict[str, Any]) -> None:
    """Accepted values that map, flag ``invalid_<field>`` (kept in extra) or are absent."""
    out = encoder().encode(line(**changes), headers(), INGESTED)
    assert out is not None
    doc = doc_of(out[0])
    for path, want in expect.items():
        if path == "flags":
            assert doc["logpipe"].get("flags") == want
            continue
        d: Any = doc
        for part in path.split(".")[:-1] if path != "extra" else []:
            d = d.get(part, {})
        got = d.get(path.split(".")[-1]) if path != "extra" else doc.get("extra")
        assert got == want, (path, doc)
    if "flags" not in expect:
        assert "flags" not in doc["logpipe"]


def test_from_header_fields_when_the_headers_do_not_say() -> None:
    hs = [(k, v) for k, v in headers() if k not in ("lp.component", "lp.namespace", "lp.pod")]
    out = encoder().encode(line(service="svc", namespace="ns", pod=7), hs, INGESTED)
    assert out is not None
    doc = doc_of(out[0])
    assert doc["service"] == {"name": "svc"}
    assert doc["kubernetes"] == {
        "namespace": "ns",
        "pod": {"name": "7", "uid": "uid-1"},
        "node": {"name": "node-1"},
        "container": {"name": "app"},
    }
    out = encoder().encode(line(service="x" * 8192), hs, INGESTED)
    assert out is None  # invalid -> kept in extra, longer than max_value_chars: the Python path cuts it
    out = encoder(limits=ExtraLimits(max_value_chars=10_000)).encode(line(service="x" * 8192), hs, INGESTED)
    assert out is not None
    assert doc_of(out[0])["logpipe"]["flags"] == ["invalid_component"]


# ------------------------------------------------------------------------------------------- declines

BIG_KEYS = orjson.dumps({f"k{i}": i for i in range(65)})
DECLINED_LINES: dict[str, bytes] = {
    "utf8: invalid byte": b'{"custom":"\xff"}',
    "utf8: overlong": b'{"custom":"\xc0\xaf"}',
    "utf8: overlong 3 bytes": b'{"custom":"\xe0\x80\xaf"}',
    "utf8: surrogate": b'{"custom":"\xed\xa0\x80"}',
    "utf8: above U+10FFFF": b'{"custom":"\xf4\x90\x80\x80"}',
    "utf8: truncated": b'{"custom":"\xe2\x82"}',
    "json: empty": b"",
    "json: blank": b" \n",
    "json: array": b"[]",
    "json: string": b'"x"',
    "json: trailing garbage": b'{"custom":1} x',
    "json: two objects": b'{"custom":1}{"b":2}',
    "json: trailing comma": b'{"custom":1,}',
    "json: single quotes": b"{'custom':1}",
    "json: missing colon": b'{"custom" 1}',
    "json: unterminated": b'{"custom":"x',
    "json: leading zero": b'{"custom":01}',
    "json: bare dot": b'{"custom":1.}',
    "json: leading dot": b'{"custom":.5}',
    "json: plus sign": b'{"custom":+1}',
    "json: literal": b'{"custom":tru}',
    "json: raw control char": b'{"custom":"a\x01b"}',
    "json: raw newline in string": b'{"custom":"a\nb"}',
    "json: bad escape": b'{"custom":"\\x41"}',
    "json: short unicode escape": b'{"custom":"\\u41"}',
    "json: BOM": b'\xef\xbb\xbf{"custom":1}',
    "json: form feed whitespace": b'{"custom":1}\x0c',
    "nested object": b'{"custom":{}}',
    "nested array": b'{"custom":[1]}',
    "escape: lone surrogate": b'{"custom":"\\ud800"}',
    "escape: surrogate pair": b'{"custom":"\\ud83d\\ude00"}',
    "escape: NUL": b'{"custom":"\\u0000"}',
    "key: NUL": b'{"\\u0000":1}',
    "number: exponent": b'{"custom":1e5}',
    "number: fraction exponent": b'{"custom":1.5E-2}',
    "number: 19 digits": b'{"custom":1234567890123456789}',
    "number: float with 19 integer digits": b'{"custom":1234567890123456789.5}',
    "number: minus zero": b'{"custom":-0}',
    "more than 64 keys": BIG_KEYS,
    "duplicate keys": b'{"custom":1,"custom":2}',
    "nginx request line": b'{"request":"GET /a HTTP/1.1"}',
    "key longer than max_key_chars": orjson.dumps({"k" * 129: "x"}),
    "dots make two keys one": b'{"a.b":"1","a_b":"2"}',
}
DECLINED_VALUES: dict[str, dict[str, Any]] = {
    "keyword: float": {"method": 1.5},
    "keyword: bool": {"method": True},
    "long: float": {"bytes": 200.0},
    "long: bool": {"bytes": False},
    "status: float": {"status": 200.0},
    "ip: not a string": {"client_ip": 167772161},
    "ip: IPv6": {"client_ip": "::1"},
    "ip: not an address": {"client_ip": "1.2.3"},
    "ip: leading zero": {"client_ip": "010.0.0.1"},
    "ip: non-ASCII blank": {"client_ip": "\u00a010.0.0.1"},
    "level: non-ASCII": {"level": "\u00c9RROR"},
    "level: float": {"level": 30.0},
    "level: bool": {"level": True},
    "trace: non-ASCII": {"trace_id": "\u00e9" * 8},
    "trace: float": {"trace_id": 1.5},
    "time: number": {"time": 1764237600},
    "time: no offset": {"time": "2026-11-27T10:00:00"},
    "time: space separator": {"time": "2026-11-27 10:00:00Z"},
    "time: 1 fraction digit": {"time": "2026-11-27T10:00:00.1Z"},
    "time: 9 fraction digits": {"time": "2026-11-27T10:00:00.123456789Z"},
    "time: offset without colon": {"time": "2026-11-27T10:00:00+0800"},
    "time: offset minutes 60": {"time": "2026-11-27T10:00:00+05:60"},
    "time: offset hours 24": {"time": "2026-11-27T10:00:00+24:00"},
    "time: Feb 29 of a common year": {"time": "2023-02-29T10:00:00Z"},
    "time: hour 24": {"time": "2026-11-27T24:00:00Z"},
    "time: second 60": {"time": "2026-11-27T10:00:60Z"},
    "time: year 0": {"time": "0000-01-01T00:00:00Z"},
    "time: beyond 2**53 us": {"time": "2300-01-01T00:00:00Z"},
    "time: nginx local": {"time": "27/Nov/2026:10:00:00 +0800"},
    "duration: list of times": {"request_time": "0.004, 0.002"},
    "duration: negative": {"request_time": -0.5},
    "duration: negative int": {"request_time": -1},
    "duration: bool": {"request_time": True},
    "duration: non-ASCII": {"request_time": "\u0661"},
    "path: not a string": {"path": 5},
    "path: URL": {"path": "http://h/x?y=1"},
    "from header: float": {"service": 1.5},
    "from header: bool": {"namespace": True},
    "extra: float": {"custom": 1.5},
    "extra: longer than max_value_chars": {"custom": "x" * 1025},
}
DECLINED_HEADERS: dict[str, Any] = {
    "none": None,
    "empty": [],
    "not a sequence": 5,
    "a dict": dict(BASE_HEADERS),
    "no type": [h for h in BASE_HEADERS if h[0] != "lp.type"],
    "type app": headers(type=b"app"),
    "later duplicate wins": [*BASE_HEADERS, ("lp.type", b"app")],
    "null value": headers(node=None),
    "null unrelated value": [*BASE_HEADERS, ("x-other", None)],
    "invalid UTF-8": headers(pod=b"\xff"),
    "invalid UTF-8 unrelated": [*BASE_HEADERS, ("x-other", b"\xc0\xaf")],
    "str value": headers(pod="pay-gw-1"),  # type: ignore[arg-type]
    "bytes key": [*BASE_HEADERS, (b"lp.x", b"1")],
    "three-tuple": [*BASE_HEADERS, ("a", b"1", b"2")],
    "no file id": [h for h in BASE_HEADERS if h[0] != "lp.file_id"],
    "empty file id": headers(file_id=b""),
    "no offset": [h for h in BASE_HEADERS if h[0] != "lp.offset"],
    "offset not digits": headers(offset=b"12a"),
    "offset 19 digits": headers(offset=b"1" * 19),
    "offset signed": headers(offset=b"+5"),
    "no read ts": headers(read_ts=b""),
    "read ts not digits": headers(read_ts=b"1.5"),
    "read ts after year 9999": headers(read_ts=b"253402300800000"),
}


@pytest.mark.parametrize("raw", list(DECLINED_LINES.values()), ids=list(DECLINED_LINES))
def test_declined_lines(raw: bytes) -> None:
    assert encoder().encode(raw, headers(), INGESTED) is None


@pytest.mark.parametrize("changes", list(DECLINED_VALUES.values()), ids=list(DECLINED_VALUES))
def test_declined_values(changes: dict[str, Any]) -> None:
    enc = encoder()
    assert enc.encode(line(**changes), headers(), INGESTED) is None
    assert enc.encode(line(), headers(), INGESTED) is not None  # the same layout without that value


@pytest.mark.parametrize("hs", list(DECLINED_HEADERS.values()), ids=list(DECLINED_HEADERS))
def test_declined_headers(hs: Any) -> None:
    assert encoder().encode(line(), hs, INGESTED) is None


def test_declined_arguments_and_limits() -> None:
    enc = encoder()
    assert enc.encode(bytearray(line()), headers(), INGESTED) is None  # type: ignore[arg-type]
    assert enc.encode(line(), headers(), b"2026") is None  # type: ignore[arg-type]
    assert enc.encode(line(), headers(), "\ud800") is None  # not encodable as UTF-8
    assert enc.encode(line(), tuple(headers()), INGESTED) is not None
    few = encoder(limits=ExtraLimits(max_keys=2))
    assert few.encode(line(custom="a", x="b"), headers(), INGESTED) is not None
    assert few.encode(line(custom="a", x="b", y="c"), headers(), INGESTED) is None
    assert few.encode(line(custom="a", x="b", y=None), headers(), INGESTED) is not None  # nulls do not count


def test_the_declining_cases_have_accepted_neighbours() -> None:
    """The decline tables are not vacuous: the nearest plain variants are encoded."""
    enc = encoder()
    for changes in (
        {"method": "1.5"},
        {"bytes": "200"},
        {"client_ip": "10.0.0.1,::1"},
        {"level": "ERROR"},
        {"time": "2026-11-27T10:00:00.120Z"},
        {"time": "2026-11-27T10:00:00.123456+05:30"},
        {"request_time": "0.004"},
        {"path": "/x://y"[:2]},
        {"custom": 15},
        {"custom": "x" * 1024},
    ):
        assert enc.encode(line(**changes), headers(), INGESTED) is not None, changes
    assert enc.encode(line() + b" \t\r\n\r\n", headers(), INGESTED) is not None
    assert enc.encode(b' \n{ "custom" : "a\\u00e9\\/\\"" ,\t"n":-5 }', headers(), INGESTED) is not None
    assert enc.encode(b"{}", headers(), INGESTED) is not None


def test_a_failing_plan_function_declines_its_layout() -> None:
    calls: list[tuple[str, ...]] = []

    def bad_plan(keys: tuple[str, ...]) -> Any:
        calls.append(keys)
        if keys == ("a",):
            raise ValueError("boom")
        return ((("x", 1, 0, 0, "f"),), (), (b'"b"',))  # not a plan: a position must be an int

    enc = native.Encoder(bad_plan, "p", None, None, 64, 1024)
    for _ in range(3):
        assert enc.encode(b'{"a":1}', headers(), INGESTED) is None
        assert enc.encode(b'{"b":1}', headers(), INGESTED) is None
    assert calls == [("a",), ("b",)]  # each layout asked once, the answer cached


GOOD_STEPS = ((0, 1, 0, 0, "invalid_method"), (1, 3, 3, 0, "invalid_status"))
BAD_PLANS: dict[str, Any] = {
    "not a tuple": [GOOD_STEPS, (2,), (b'"m"', b'"s"', b'"x"')],
    "two parts": (GOOD_STEPS, (2,)),
    "names missing": (GOOD_STEPS, (2,), (b'"m"', b'"s"')),
    "name not JSON": (GOOD_STEPS, (2,), (b'"m"', b'"s"', b'"x"y"')),
    "name with a control char": (GOOD_STEPS, (2,), (b'"m"', b'"s"', b'"x\n"')),
    "names alike": (GOOD_STEPS, (2,), (b'"m"', b'"s"', b'"m"')),
    "position out of range": (GOOD_STEPS, (3,), (b'"m"', b'"s"', b'"x"')),
    "position twice": (GOOD_STEPS, (1,), (b'"m"', b'"s"', b'"x"')),
    "slot twice": (((0, 1, 0, 0, "f"), (1, 1, 0, 0, "g")), (2,), (b'"m"', b'"s"', b'"x"')),
    "slot out of range": (((0, 1, 15, 0, "f"),), (1, 2), (b'"m"', b'"s"', b'"x"')),
    "unknown action": (((0, 12, 0, 0, "f"),), (1, 2), (b'"m"', b'"s"', b'"x"')),
    "header slot without FROM_HEADER": (((0, 1, 11, 0, "f"),), (1, 2), (b'"m"', b'"s"', b'"x"')),
    "FROM_HEADER of another header": (((0, 11, 11, 1, "f"),), (1, 2), (b'"m"', b'"s"', b'"x"')),
    "PATH sets a query set by another step": (((0, 9, 1, 1, "f"), (1, 1, 2, 0, "g")), (2,), (b'"m"', b'"s"', b'"x"')),
    "DURATION without a unit": (((0, 8, 5, 0, "f"),), (1, 2), (b'"m"', b'"s"', b'"x"')),
    "flag not a str": (((0, 1, 0, 0, b"f"),), (1, 2), (b'"m"', b'"s"', b'"x"')),
    "step of 4": (((0, 1, 0, 0),), (1, 2), (b'"m"', b'"s"', b'"x"')),
    "huge position": (((2**70, 1, 0, 0, "f"),), (1, 2), (b'"m"', b'"s"', b'"x"')),
}


@pytest.mark.parametrize("plan", list(BAD_PLANS.values()), ids=list(BAD_PLANS))
def test_a_malformed_plan_declines_its_layout(plan: Any) -> None:
    raw = b'{"m":"GET","s":200,"x":"y"}'
    good = native.Encoder(lambda keys: (GOOD_STEPS, (2,), (b'"m"', b'"s"', b'"x"')), "p", None, None, 64, 1024)
    out = good.encode(raw, headers(), INGESTED)
    assert out is not None
    doc = doc_of(out[0])
    assert (doc["http"], doc["extra"]) == ({"request": {"method": "GET"}, "response": {"status_code": 200}}, {"x": "y"})
    bad = native.Encoder(lambda keys: plan, "p", None, None, 64, 1024)
    assert bad.encode(raw, headers(), INGESTED) is None


# ------------------------------------------------------------------------------------------- never raises

HEADER_NAMES = [k for k, _ in BASE_HEADERS] + ["lp.flags", "other", ""]
header_values = st.one_of(
    st.none(),
    st.binary(max_size=24),
    st.sampled_from([b"access", b"123", b"007", str(READ_MS).encode(), b"fingerprint::x", b""]),
    st.text(max_size=8),
    st.integers(),
)
header_items = st.one_of(
    st.tuples(st.sampled_from(HEADER_NAMES), header_values),
    st.tuples(st.text(max_size=8), header_values),
    st.lists(st.sampled_from(HEADER_NAMES), max_size=3),
    st.tuples(st.binary(max_size=4), st.binary(max_size=4)),
    st.integers(),
    st.none(),
)
garbage_headers = st.one_of(
    st.none(),
    st.lists(header_items, max_size=14),
    st.lists(header_items, max_size=14).map(tuple),
    st.builds(
        lambda extra: [*BASE_HEADERS, *extra],
        st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values), max_size=3),
    ),
    st.integers(),
    st.text(max_size=5),
    st.binary(max_size=5),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["-", "", "2026-11-27T10:00:00.123Z", "10.0.0.1", "00-" + "a" * 52]),
)
json_lines = st.dictionaries(
    st.sampled_from([*BASE_LINE, "msg", "service", "pod", "x.y", "é"]) | st.text(max_size=5), scalars, max_size=12
).map(orjson.dumps)


def mutate(raw: bytes, data: st.DataObject) -> bytes:
    if not raw or not data.draw(st.booleans()):
        return raw
    i = data.draw(st.integers(0, len(raw) - 1))
    return raw[:i] + data.draw(st.binary(min_size=0, max_size=3)) + raw[i + 1 :]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.binary(max_size=200), json_lines),
    garbage_headers,
    st.one_of(st.text(max_size=30), st.none()),
    st.data(),
)
def test_encode_never_raises(raw: bytes, hs: Any, ingested: Any, data: st.DataObject) -> None:
    enc = ENCODER
    assert enc is not None
    raw = mutate(raw, data)
    for h in (hs, BASE_HEADERS):
        out = enc.encode(raw, h, ingested)
        if out is not None:
            item, index, doc_id = out
            assert type(item) is bytes and type(index) is str and type(doc_id) is str
            doc = doc_of(item)
            assert doc["message"] == raw.decode().rstrip("\r\n")
            assert len(doc_id) == 32


ENCODER = encoder(limits=ExtraLimits(max_keys=8, max_value_chars=16)) if NATIVE_AVAILABLE else None


# ------------------------------------------------------------------------------------------- leaks


def varied_records(copies: int) -> list[tuple[bytes, Any]]:
    """Plain lines, invalid values, declined lines, values and headers (a few dozen key layouts)."""
    rng = random.Random(3)
    hs = headers(flags=b"truncated")
    out: list[tuple[bytes, Any]] = []
    for _ in range(copies):
        out.append((line(), hs))
        out.append((line(status=rng.choice([200, -5, "abc", 1.5]), level=rng.choice(["INFO", 60, 99])), hs))
        out.append((line(custom=rng.choice(["x", 5, True, None, "é" * 30])), hs))
        out.append((rng.choice(list(DECLINED_LINES.values())), hs))
        out.append((line(**rng.choice(list(DECLINED_VALUES.values()))), hs))
        out.append((line(), rng.choice(list(DECLINED_HEADERS.values()))))
    return out


def layout_misses(n: int) -> list[bytes]:
    """``n`` lines of ``n`` distinct key layouts (every 4th declined by the plan: nginx's request line)."""
    out = []
    for i in range(n):
        obj: dict[str, Any] = {f"k{i}": "v", "status": [200, "x", -1][i % 3], "time": "2026-11-27T10:00:00Z"}
        if i % 4 == 3:
            obj["request"] = "GET / HTTP/1.1"
        out.append(orjson.dumps(obj))
    return out


def test_no_reference_leaks() -> None:
    enc = encoder()
    records = varied_records(40)
    objs: list[Any] = [INGESTED, None, True, False, enc, *(v for v, _ in records), *(h for _, h in records)]
    objs += [item for _, h in records if isinstance(h, list) for item in h]
    objs = [o for o in objs if sys.getrefcount(o) < 10**8]  # not the static small ints (3.11: ~10**9)
    for v, h in records:  # warm up: plans cached
        enc.encode(v, h, INGESTED)
    gc.collect()
    before = [sys.getrefcount(o) for o in objs]
    for _ in range(50):
        for v, h in records:
            enc.encode(v, h, INGESTED)
    gc.collect()
    assert [sys.getrefcount(o) for o in objs] == before


def traced_growth(run: Any, repeat: int) -> tuple[int, int]:
    """Bytes traced by tracemalloc and GC-tracked objects gained over ``repeat`` more runs after a first one."""
    run()
    gc.collect()
    tracemalloc.start()
    try:
        run()
        gc.collect()
        base, _ = tracemalloc.get_traced_memory()
        objects = len(gc.get_objects())
        for _ in range(repeat):
            run()
        gc.collect()
        now, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return now - base, len(gc.get_objects()) - objects


def test_memory_is_flat_over_150k_varied_calls() -> None:
    enc = encoder()
    records = varied_records(250)  # 1500 records

    def run() -> None:
        for v, h in records:
            enc.encode(v, h, INGESTED)

    grown, objects = traced_growth(run, 100)
    assert grown < 64 * 1024, grown
    assert objects < 100


def test_memory_is_flat_over_50k_layout_misses() -> None:
    """1024 layouts in turn through the 512-layout cache: every call asks the plan function and the
    cache is cleared twice a round; after each round the cache holds the same 512 layouts."""
    enc = encoder()
    lines = layout_misses(1024)
    hs = headers()

    def run() -> None:
        for v in lines:
            enc.encode(v, hs, INGESTED)

    grown, objects = traced_growth(run, 48)
    assert grown < 64 * 1024, grown
    assert objects < 100


def test_encoder_is_collected() -> None:
    """The encoder calls back its owner's plan method (a cycle): the GC must free both."""
    enc = encoder()
    assert enc.encode(line(), headers(), INGESTED) is not None
    ref = weakref.ref(enc)
    del enc
    gc.collect()
    assert ref() is None


def test_a_rule_chosen_text_format_leaves_the_line_to_the_python_path() -> None:
    from consumer.bulk import index_name
    from parsers import LineParser, Parsed

    enc, value = encoder(), line()
    plain = enc.encode(value, headers(), INGESTED)
    assert plain is not None
    for fmt in (b"json", b"auto"):  # a JSON line of a rule that says json (or auto) stays native
        assert enc.encode(value, headers(format=fmt), INGESTED) == plain
    assert enc.encode(value, headers(format=b"apache"), INGESTED) is None  # unknown here: Python flags it
    for fmt in (b"combined", b"upstreaminfo"):
        assert enc.encode(value, headers(format=fmt), INGESTED) is None
        parsed = LineParser().parse(value, {k: v.decode() for k, v in headers(format=fmt)})
        assert isinstance(parsed, Parsed) and "http" not in parsed.doc  # not read as JSON
        assert parsed.doc["message"] == value.decode()
        assert index_name("logpipe", "access", parsed.doc, 0.0) == plain[1]


def test_the_python_paths_document_id_is_the_envelopes() -> None:
    from parsers.access_encoder import document_id as fast_document_id

    rng = random.Random(3)
    for _ in range(2000):
        file_id = "".join(rng.choice("abcé::-_/0123456789") for _ in range(rng.randint(0, 200)))
        offset: int | str = rng.choice([rng.randint(0, 1 << 62), f"{rng.randint(0, 99)}/{rng.randint(0, 9)}"])
        assert fast_document_id(file_id, offset) == document_id(file_id, offset)
    assert fast_document_id is not document_id  # the native one is in use when the extension is built
