"""Differential tests: the C fast path for access records (``parsers._access_encoder``) against the Python path.

For ANY record, ``AccessEncoder.encode(value, headers, ingested)`` must be None (the caller then runs the
Python path) or exactly what the consumer's Python path makes of it: ``LineParser.parse`` ->
``consumer.bulk.index_name`` / ``logpipe.core.envelope.document_id`` -> ``consumer.bulk.encode_item``
(:func:`reference`). Same index, same ``_id``, the same action line bytes and the same document, compared
strictly: same keys, same JSON types (int vs float vs str vs bool), same list order (flags), key order free.

A fast path that declines the common case is worth nothing, so the realistic lines (the benchmark's
generator, nginx ``log_format json``, the in-house framework) must be encoded natively, and the property
tests count how many generated records were encoded vs declined (printed; asserted for "plain" records).

No skip: without the extension every test here fails (``test_native_extension_is_built`` says why).
"""

from __future__ import annotations

import base64
import gc
import hashlib
import importlib.util
import json
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from consumer.bulk import encode_item
from consumer.clock import SystemClock
from consumer.ingest import Ingest
from consumer.offsets import PartitionOffsets
from consumer.work import Work
from logpipe.core.envelope import (
    H_COMPONENT,
    H_CONTAINER,
    H_FILE_ID,
    H_FLAGS,
    H_NAMESPACE,
    H_NODE,
    H_OFFSET,
    H_PATH,
    H_POD,
    H_POD_UID,
    H_READ_TS,
    H_TYPE,
    LineRecord,
    SourceMeta,
)
from logpipe.core.fields import AUTO, FRAMEWORK, NGINX, FieldMappingConfig
from parsers import access_encoder
from parsers.access_encoder import AccessEncoder
from parsers.document import DEFAULT_WINDOW, TimeWindow
from parsers.extra import ExtraLimits, extra_key_name
from parsers.fieldmap import FieldMap
from parsers.line_parser import LineParser

Headers = Sequence[tuple[str, Any]]  # values: bytes, and None or other junk on purpose
Encoded = tuple[bytes, str, str]

READ_MS = 1_795_780_800_000  # 2026-11-27T12:00:00Z (as tests/parsers/stories.py)
READ_AT = datetime(2026, 11, 27, 12, tzinfo=UTC)
INGESTED = "2026-11-27T12:00:01.234Z"
DAY_US = 86_400_000_000
ALL_HEADERS = (H_NODE, H_NAMESPACE, H_POD, H_POD_UID, H_CONTAINER, H_COMPONENT, H_TYPE, H_PATH, H_OFFSET,
               H_FILE_ID, H_READ_TS, H_FLAGS)
NATIVE_MODULE: Any = access_encoder._native  # the extension itself (None when not built)
PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# ------------------------------------------------------------------------------------------ reference


class PythonPathRaised(Exception):
    """The Python path itself raised (not a parse result): the native path must decline such records."""


_PARSERS: dict[tuple[str, TimeWindow, ExtraLimits], LineParser] = {}


def _reference_parser(mapping: FieldMappingConfig | None, window: TimeWindow, limits: ExtraLimits) -> LineParser:
    key = ((mapping or FieldMappingConfig()).model_dump_json(), window, limits)
    parser = _PARSERS.get(key)
    if parser is None:
        parser = _PARSERS[key] = LineParser(mapping, extra_limits=limits, time_window=window)
    return parser


def reference(
    value: bytes,
    headers: Headers | None,
    ingested: str,
    prefix: str,
    mapping: FieldMappingConfig | None = None,
    *,
    window: TimeWindow = DEFAULT_WINDOW,
    limits: ExtraLimits | None = None,
) -> Encoded | None:
    """(bulk item, index, _id) the consumer's Python path makes of one record, None if it is not a
    document (dead-lettered); raises :class:`PythonPathRaised` if the Python path itself raises.

    Runs the consumer's own read path, ``consumer/ingest.py`` (``parse(value, decode_headers(headers))``,
    index from ``index_name``, id from ``document_id(file_id, offset)`` or the Kafka position) without
    the native encoder, then ``encode_item`` as ``BulkBatcher.add`` does.
    """
    parser = _reference_parser(mapping, window, limits or ExtraLimits())
    out = _Collected()
    offsets = PartitionOffsets()
    offsets.assign(_TP)
    ingest = Ingest(offsets, out, prefix, SystemClock(), lambda: parser, stamp=lambda: ingested)
    ingest.assign([_TP])
    try:
        ingest.records(_TP, [_Record(5, value, None, headers or ())])
        work = out.work
        if work is None:
            return None
        return encode_item(work, ingested), work.index, work.doc_id
    except Exception as exc:  # e.g. index_name on a year-1 time with a positive offset
        raise PythonPathRaised(f"{type(exc).__name__}: {exc}") from exc


_TP = ("topic", 0)


@dataclass(frozen=True)
class _Record:
    offset: int
    value: bytes
    key: bytes | None
    headers: Sequence[tuple[str, bytes]]


class _Collected:
    """The work the read path hands on (None: it went to the dead letters)."""

    def __init__(self) -> None:
        self.work: Work | None = None

    def index(self, work: Work) -> None:
        self.work = work

    def dead_letter(self, work: Work) -> None:
        self.work = None


# ------------------------------------------------------------------------------------------ comparison


def strict_equal(got: Any, want: Any, where: str = "doc") -> None:
    """Equal JSON values with equal types at every level (True != 1, 1 != 1.0, "1" != 1); dict key
    order is free, list order is not."""
    assert type(got) is type(want), (
        f"{where}: native {type(got).__name__} {got!r} != python {type(want).__name__} {want!r}"
    )
    if isinstance(want, dict):
        missing, surplus = want.keys() - got.keys(), got.keys() - want.keys()
        assert not missing and not surplus, f"{where}: native lacks {sorted(missing)}, has extra {sorted(surplus)}"
        for k in want:
            strict_equal(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: native {got!r} != python {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            strict_equal(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert repr(got) == repr(want), f"{where}: native {got!r} != python {want!r}"
    else:
        assert got == want, f"{where}: native {got!r} != python {want!r}"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(set(keys)) == len(keys), f"duplicate keys in the native document: {keys}"  # ES refuses them
    return dict(pairs)


def assert_same(native: Any, ref: Encoded | None, context: str) -> None:
    """``native`` (not None) is exactly the reference's item, index and id."""
    assert isinstance(native, tuple) and len(native) == 3, f"{context}: encode returned {native!r}"
    item, index, doc_id = native
    assert type(item) is bytes and type(index) is str and type(doc_id) is str, f"{context}: types of {native!r}"
    assert ref is not None, f"{context}: native encoded a record the Python path does not index: {item!r}"
    ref_item, ref_index, ref_id = ref
    assert index == ref_index, f"{context}: index native {index!r} != python {ref_index!r}"
    assert doc_id == ref_id, f"{context}: _id native {doc_id!r} != python {ref_id!r}"
    lines = item.split(b"\n")
    assert len(lines) == 3 and lines[2] == b"", f"{context}: not two NDJSON lines: {item!r}"
    ref_action, ref_doc, _ = ref_item.split(b"\n")
    assert lines[0] == ref_action, f"{context}: action native {lines[0]!r} != python {ref_action!r}"
    try:
        got = orjson.loads(lines[1])
    except orjson.JSONDecodeError as exc:
        raise AssertionError(f"{context}: native document is not valid JSON ({exc}): {lines[1]!r}") from exc
    json.loads(lines[1], object_pairs_hook=_no_duplicate_keys)
    want = orjson.loads(ref_doc)
    try:
        strict_equal(got, want)
    except AssertionError as exc:
        raise AssertionError(f"{context}: {exc}\n native: {lines[1]!r}\n python: {ref_doc!r}") from None


# ------------------------------------------------------------------------------------------ set-ups


@dataclass
class Setup:
    """One consumer configuration: a field mapping, a time window, ``extra`` limits, an index prefix."""

    name: str
    mapping: FieldMappingConfig
    window: TimeWindow = DEFAULT_WINDOW
    limits: ExtraLimits = field(default_factory=ExtraLimits)
    prefix: str = "logpipe"
    _encoder: AccessEncoder | None = None

    @property
    def encoder(self) -> AccessEncoder:
        # One per set-up for the whole module: its layout cache sees every test's layouts, like a consumer.
        if self._encoder is None:
            fm = FieldMap(self.mapping, self.limits)
            self._encoder = AccessEncoder(fm, self.prefix, window=self.window)
        return self._encoder

    def check(self, value: bytes, headers: Headers | None, ingested: str = INGESTED) -> str:
        """Compare both paths on one record; returns what the native path did: ``native`` or
        ``declined`` (``declined_python_raises`` when the Python path itself raised)."""
        context = f"[{self.name}] value={value[:300]!r} headers={headers!r}"
        try:
            ref = reference(value, headers, ingested, self.prefix, self.mapping, window=self.window, limits=self.limits)
        except PythonPathRaised as exc:
            native = self.encoder.encode(value, headers, ingested)
            assert native is None, f"{context}: the Python path raises ({exc}), native gave {native!r}"
            return "declined_python_raises"
        native = self.encoder.encode(value, headers, ingested)
        if native is None:
            return "declined"
        assert_same(native, ref, context)
        return "native"


CUSTOM_KEYS = {
    "path": ["req_path"],
    "status": ["http.status", "code"],
    "request_time": ["took_ms"],
    "client_ip": ["peer"],
    "trace_id": ["tp"],
    "level": ["sev"],
    "component": ["svc"],
    "time": ["when"],
    "namespace": ["ns"],
}
SETUPS: dict[str, Setup] = {
    s.name: s
    for s in (
        Setup("auto", FieldMappingConfig()),
        Setup("nginx", FieldMappingConfig(dialect="nginx")),
        Setup("framework", FieldMappingConfig(dialect="framework")),
        Setup("keys", FieldMappingConfig(keys=CUSTOM_KEYS)),
        Setup("unit", FieldMappingConfig(dialect="nginx", keys={"request_time": ["took_ms"]}, duration_unit="ms")),
        Setup("unit_us", FieldMappingConfig(dialect="framework", duration_unit="us")),
        Setup("no_window", FieldMappingConfig(), TimeWindow(max_past_s=None, max_future_s=None)),
        Setup(
            "bounded",
            FieldMappingConfig(),
            TimeWindow(max_past_s=3600.0, max_future_s=60.0),
            ExtraLimits(max_keys=4, max_value_chars=24, max_key_chars=12),
            prefix="lp-t.1_x",
        ),
    )
}
DEFAULT_LIMIT_SETUPS = [n for n, s in SETUPS.items() if s.limits == ExtraLimits()]


def shipper_headers(
    offset: int | str = 0, read_ms: int | str = READ_MS, **over: str | None
) -> list[tuple[str, Any]]:
    """A pod's file's headers (``lp.`` + the keyword name; None drops one)."""
    h = {
        H_NODE: "node-1",
        H_NAMESPACE: "shop",
        H_POD: "cart-7d9f-abcde",
        H_POD_UID: "0f6a-uid",
        H_CONTAINER: "cart",
        H_COMPONENT: "cart",
        H_TYPE: "access",
        H_PATH: "/var/log/pods/shop_cart/access.log",
        H_OFFSET: str(offset),
        H_FILE_ID: "fingerprint::c0ffee",
        H_READ_TS: str(read_ms),
    }
    for k, v in over.items():
        name = "lp." + k
        if v is None:
            h.pop(name, None)
        else:
            h[name] = v
    return [(k, v.encode()) for k, v in h.items()]


def report(capsys: pytest.CaptureFixture[str], title: str, stats: Counter[str]) -> None:
    """Print the encoded/declined counts (visible even under ``-q``: the lead reads them)."""
    total = sum(stats.values())
    native = stats["native"]
    with capsys.disabled():
        print(f"\n  {title}: {native}/{total} encoded natively ({native / max(total, 1):.0%}); {dict(stats)}")


# ------------------------------------------------------------------------------------------ JSON writing


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (number spellings no serializer produces: ``1.50``, ``-0``, ``1E+2``)."""

    text: str


STYLES = ("orjson", "ascii", "utf8", "u", "slash")


def dump_str(s: str, style: str) -> str:
    """``s`` as a JSON string: orjson, json.dumps with/without ensure_ascii, every char as ``\\uXXXX``
    (surrogate pairs beyond the BMP), or with ``/`` written ``\\/``."""
    if style == "orjson":
        return orjson.dumps(s).decode()
    if style == "ascii":
        return json.dumps(s, ensure_ascii=True)
    if style == "utf8":
        return json.dumps(s, ensure_ascii=False)
    if style == "slash":
        return json.dumps(s, ensure_ascii=False).replace("/", "\\/")
    out = []
    for ch in s:
        o = ord(ch)
        if o < 0x10000:
            out.append(f"\\u{o:04x}" if o % 2 else f"\\u{o:04X}")
        else:
            o -= 0x10000
            out.append(f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04x}")
    return '"' + "".join(out) + '"'


def dump_value(v: Any, style: str) -> str:
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, str):
        return dump_str(v, style)
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=style != "utf8")
    return json.dumps(v)


def dump_object(pairs: Sequence[tuple[str, Any]], style: str = "orjson", ws: str = "", lead: str = "",
                trail: str = "") -> bytes:
    """One JSON object from (key, value) pairs (duplicates allowed), ``ws`` between all tokens."""
    items = (f"{dump_str(k, style)}{ws}:{ws}{dump_value(v, style)}" for k, v in pairs)
    body = f"{ws},{ws}".join(items)
    return f"{lead}{{{ws}{body}{ws}}}{trail}".encode()


# ------------------------------------------------------------------------------------------ strategies

HEX = "0123456789abcdef"


def hexes(n: int) -> st.SearchStrategy[str]:
    return st.text(HEX, min_size=n, max_size=n)


def _field_of_keys() -> dict[str, str]:
    out: dict[str, str] = {}
    for d in (AUTO, NGINX, FRAMEWORK):
        for f in d.fields:
            for k in (*f.keys, f.ecs):
                assert out.setdefault(k, f.name) == f.name, k  # no raw key means two fields
    for name, keys in CUSTOM_KEYS.items():
        for k in keys:
            out.setdefault(k, name)
    return out


FIELD_OF = _field_of_keys()
KNOWN_KEYS = sorted({*FIELD_OF, "request", "msg", "message", "service", "namespace", "pod"})
ODD_KEYS = ["a.b", "a_b", "", " ", "  ", "é", 'k"q', "back\\slash", "tab\tkey", "nl\nkey", "x" * 12, "x" * 13,
            "x" * 128, "x" * 129, "nul\x00key", "😀", "\u2028", "extra", "logpipe", "_", "a..b", ".", "Status",
            "STATUS", "status ", "\x7f", "ü.ber"]
unknown_keys = st.sampled_from(ODD_KEYS) | st.text(max_size=10)
keys = st.sampled_from(KNOWN_KEYS) | unknown_keys

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
IP_ODD = ["2001:db8::1", "::ffff:1.2.3.4", "[::1]", "010.0.0.1", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.4 ,x",
          " , 1.2.3.4", "garbage", "\x1c1.2.3.4", "1.2.3.4\x1f", "\x0b1.2.3.4\x0c", "1.2.3.4," + "é" * 200,
          "1.2.3.4," + "a" * 250, "\uff11.2.3.4", "1.2.3.4\u00a0", "\u00a01.2.3.4", "1.2.3.4\x00", "0.0.0.0",
          "255.255.255.255", "1.2.3.4/24", "1.2.3.4:8080", "\t1.2.3.4\n", "1.2.3.4,", ",", " ", "-"]
ips = st.one_of(
    ipv4,
    ipv4.map(lambda ip: f" {ip}\t"),
    st.tuples(ipv4, ipv4).map(lambda t: f"{t[0]}, {t[1]}"),
    st.sampled_from(IP_ODD),
)

TZS = ["Z", "+00:00", "-00:00", "+08:00", "-05:00", "+05:30", "+23:59", "-23:59", "+00:01", "-09:30"]


def _offset_minutes(tz: str) -> int:
    if tz == "Z":
        return 0
    sign = -1 if tz[0] == "-" else 1
    return sign * (int(tz[1:3]) * 60 + int(tz[4:6]))


def rfc3339(at: datetime, tz: str, frac: str) -> str:
    """The instant ``at`` written in zone ``tz`` with fraction text ``frac`` (``""``, ``".123"``...)."""
    local = at.astimezone(timezone(timedelta(minutes=_offset_minutes(tz))))
    return (f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:{local.minute:02d}:"
            f"{local.second:02d}{frac}{tz}")


def _frac(micro: int, digits: int, extra: int) -> str:
    if digits == 0:
        return ""
    if digits == 3:
        return f".{micro // 1000:03d}"
    if digits == 6:
        return f".{micro:06d}"
    return f".{micro:06d}{extra:03d}"


@st.composite
def times(draw: st.DrawFn) -> str:
    """RFC 3339 times near the read time, at the window's edges, or anywhere in years 1..9999."""
    kind = draw(st.sampled_from(["near", "near", "edge", "far"]))
    if kind == "near":
        at = READ_AT + timedelta(microseconds=draw(st.integers(-2 * DAY_US, 2 * DAY_US)))
    elif kind == "edge":  # the default window's future bound and the "bounded" set-up's bounds
        bound = draw(st.sampled_from([86_400, 60, -3600]))
        at = READ_AT + timedelta(seconds=bound, microseconds=draw(st.sampled_from([-1000, -1, 0, 1, 1000])))
    else:
        at = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
    digits = draw(st.sampled_from([0, 3, 6, 9]))
    micro = at.microsecond
    micro = draw(st.sampled_from([micro, micro // 1000 * 1000, micro // 10_000 * 10_000, 0]))  # trailing zeros
    at = at.replace(microsecond=micro)
    return rfc3339(at, draw(st.sampled_from(TZS)), _frac(micro, digits, draw(st.integers(0, 999))))


@st.composite
def plain_times(draw: st.DrawFn) -> str:
    """Times the fast path takes: canonical RFC 3339 (0, 3 or 6 fraction digits, not ending in 000),
    from 20 days before to just under a day after the read time."""
    at = READ_AT + timedelta(microseconds=draw(st.integers(-20 * DAY_US, DAY_US - 1_000_000)))
    digits = draw(st.sampled_from([0, 3, 6]))
    if digits == 0:
        micro = 0
    elif digits == 3:
        micro = draw(st.integers(1, 999)) * 1000
    else:
        micro = draw(st.integers(1, 999_999).filter(lambda u: u % 1000 != 0))
    at = at.replace(microsecond=micro)
    return rfc3339(at, draw(st.sampled_from(TZS)), _frac(micro, digits, 0))


BAD_TIMES = ["2026-02-30T00:00:00Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
             "2024-02-29T23:59:59.999Z", "2026-11-27T24:00:00Z", "2026-11-27T23:60:00Z", "2026-11-27T23:59:60Z",
             "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-11-00T00:00:00Z", "0000-01-01T00:00:00Z",
             "2026-11-27T10:00:00+24:00", "2026-11-27T10:00:00+12:60", "2026-11-27t10:00:00Z",
             "2026-11-27T10:00:00z", "2026-11-27 10:00:00Z", "2026-11-27T10:00:00", "2026-11-27T10:00:00.123",
             "2026-11-27T10:00:00+0800", "2026-11-27T10:00:00+08", "2026-11-27T10:00Z", "2026-11-27T10:00:00.Z",
             "2026-11-27T10:00:00.1Z", "2026-11-27T10:00:00.12345Z", "2026-11-27T10:00:00.1234567Z",
             " 2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z ", "2026-11-27T10:00:00.000Z",
             "2026-11-27T10:00:00.000+08:00",
             "2026-11-27T10:00:00.120000Z", "2026-11-27T10:00:00.123000-00:00", "2026-11-27T10:00:00.100Z",
             "2026-11-27T10:00:00.000100Z", "27/Nov/2026:10:00:00 +0800", "Fri, 27 Nov 2026 10:00:00 GMT",
             "1795780800", "1795780800123", "1795780800.5", "-1795780800", "2026-11-27", "20261127T100000Z",
             "2026-W48-5T10:00:00Z", "\uff12026-11-27T10:00:00Z", "2026-11-27T10:00:00\x00Z",
             "0001-01-01T00:30:00+01:00",
             "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:00:00-05:00",
             "1685-01-01T00:00:00Z", "1684-06-01T00:00:00Z", "2255-06-01T00:00:00Z", "2256-01-01T00:00:00Z",
             "2026-11-28T12:00:00Z", "2026-11-28T12:00:00.001Z", "2026-11-28T20:00:00+08:00",
             "2026-11-28T20:00:00.000001+08:00", "2026-11-27T23:59:59.999999-00:00"]
time_values = st.one_of(
    times(),
    st.sampled_from(BAD_TIMES),
    st.integers(READ_MS // 1000 - 10**6, READ_MS + 10**9),
    st.floats(0, 4e12),
)

LONG_STRINGS = ["a" * 8191, "a" * 8192, "é" * 8191, "é" * 8192, "a" * 1024, "a" * 1025, "é" * 1024, "é" * 1025,
                "😀" * 1024, "😀" * 1025, "€" * 300, "a" * 256, "a" * 257, "x" * 32, "x" * 33, "X" * 32, "x" * 24,
                "x" * 25, "é" * 24, "é" * 25, "/" + "p" * 8190, "/" + "p" * 8191, "/a?" + "q" * 8188]
DURATION_STRINGS = ["0.004", "0.004, 0.002", " 12 ", "\x1f12", "12\x1c", "\x0b12\x0c", "12.", ".5", ".", "1.2.3",
                    "1" * 300, "1" * 301, "1" * 400, "١٢", "-1", "+1", "1e3", "0x10", "12 ms", "\t0.25\n",
                    "00012.500", "9" * 19, "0", "0.0", "0.0000000001", "2.5", "3.5", "0.0000000025", "0.5",
                    "9223372036.854775807", "9223372036.854775808", "9223372037", "1\u00a0", "1,", ",1", "1, -"]
NUMBER_TOKENS = ["0.004", "12.5", "1.50", "0.0", "-0.0", "-0", "1.0E+2", "1e3", "12", "0", "2.5", "3.5", "0.5",
                 "9223372036.854775807", "9223372037", "1" * 18, "1" * 19, "-" + "1" * 18, "1" * 300 + ".5",
                 "1" * 305 + ".0", "0.0000001", "0.0000000005", "123456789012345678", "999999999999999999",
                 "0.30000000000000004", "1.7976931348623157", "100.0", "200.0"]
raw_numbers = st.sampled_from(NUMBER_TOKENS).map(Raw)
LONG_ODD = ["007", "000000000000000200", "1" * 18, "1" * 19, "abc", "2e2", "٣", " 200", "200 ", "-5", "+5", "0",
            "999", "1000", "200.0", "0x1F"]
LEVEL_ODD = ["INFO", "Warn", "ERROR", "x" * 32, "x" * 33, "É", "ÉRROR", "info\n", " info", "İ", "K"]
TRACE_ODD = ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-012",
             "00-4bf92f3577b34da6a3ce929d0e0é736-00f067aa0ba902b7-01",
             "xx-" + "y" * 32 + "-" + "z" * 16 + "-ww", "-" * 55, "0af7651916cd43dd8448eb211c80319c"]
PATH_ODD = ["/a", "/a?b=1", "/a?", "?", "?q=1", "/a??b", "http://h/p?q", "https://user@host:8080/p", "/p://x",
            "/é?ü=1", "/a b", "/a#frag", "/a?b=1#f", "//x", ":", "/a?b?c"]
POOL = ["cart", "shop", "cart-7d9f-abcde", "5", "Cart", "cart ", "é"]

escaped_text = st.text(st.sampled_from('"\\/\b\f\n\r\t\x00\x01\x1f\x7f aé€😀\u2028\u00a0'), max_size=10)
any_text = st.text(max_size=24) | escaped_text
scalar_values: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**19), 10**19),
    st.integers(-1000, 100_000),
    st.floats(allow_nan=False, allow_infinity=False),
    raw_numbers,
    any_text,
    st.sampled_from(["", "-", *LONG_STRINGS, *DURATION_STRINGS, *LONG_ODD, *LEVEL_ODD, *PATH_ODD, *POOL]),
)
any_values = st.recursive(
    scalar_values.filter(lambda v: not isinstance(v, Raw)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
) | scalar_values

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "time": time_values,
    "status": st.integers(-5, 1200) | st.sampled_from(LONG_ODD) | st.sampled_from([10**18 - 1, 10**18, 2**63]),
    "bytes": st.integers(-5, 10**18) | st.sampled_from(LONG_ODD),
    "request_time": st.integers(0, 10**12) | raw_numbers | st.sampled_from(DURATION_STRINGS) | st.floats(0, 1e6),
    "client_ip": ips,
    "level": st.sampled_from([10, 20, 30, 40, 50, 60, 35, 0, -10, *LEVEL_ODD]) | st.text("aZ_ é", max_size=34),
    "trace_id": hexes(32) | st.builds(lambda a, b: f"00-{a}-{b}-01", hexes(32), hexes(16)) | st.sampled_from(TRACE_ODD),
    "span_id": hexes(16),
    "path": st.sampled_from(PATH_ODD) | st.text("/a?=&:é", max_size=12),
    "component": st.sampled_from(POOL) | st.just(5),
    "namespace": st.sampled_from(POOL) | st.just(5),
    "pod": st.sampled_from(POOL) | st.just(5),
}


_VALUES_FOR: dict[str, st.SearchStrategy[Any]] = {}


def values_for(key: str) -> st.SearchStrategy[Any]:
    """Values likely valid for the field ``key`` feeds, mixed with values of every JSON type."""
    out = _VALUES_FOR.get(key)
    if out is None:
        good = FIELD_VALUES.get(FIELD_OF.get(key, ""))
        out = any_values if good is None else st.one_of(good, any_values)
        if len(_VALUES_FOR) < 1000:
            _VALUES_FOR[key] = out
    return out


WHITESPACE = ["", " ", "  ", "\t", "\n", "\r\n ", " \t"]
TRAILING = ["", "\n", "\r\n", "\n\r", " \n", " ", "\r\r\n", "\n \n"]


@st.composite
def json_lines(draw: st.DrawFn, key_strategy: st.SearchStrategy[str] = keys, max_keys: int = 14) -> bytes:
    """A JSON object line: dialect keys and odd keys (duplicates now and then), values of every type,
    every string escaping style, varied whitespace."""
    ks = draw(st.lists(key_strategy, max_size=max_keys))
    if draw(st.integers(0, 9)):
        ks = list(dict.fromkeys(ks))
    pairs = [(k, draw(values_for(k))) for k in ks]
    style = draw(st.sampled_from(STYLES))
    ws = draw(st.sampled_from(WHITESPACE)) if draw(st.booleans()) else ""
    lead = draw(st.sampled_from(WHITESPACE))
    return dump_object(pairs, style, ws, lead, draw(st.sampled_from(TRAILING)))


BAD_UTF8 = [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
            b"\xff", b"\x80", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3", b"\xf8\x88\x80\x80\x80"]
NOT_OBJECTS = [b"", b" ", b"\n", b"[1,2]", b'"x"', b"null", b"1", b"{} {}", b"{}{}", b'{"a":1,}', b'{"a" 1}',
               b"{'a':1}", b'{"a":tru}', b'{"a":01}', b'{"a":1.}', b'{"a":.5}', b'{"a":-}', b'{"a":"\\x"}',
               b'{"a":"\\u12"}', b'{"a":"\\u12G4"}', b'{"a":"\\ud800"}', b'{"a":"\\udc00\\ud800"}', b'{"a":+1}',
               b'{"a":1e}', b'{"a":NaN}', b'{"a":Infinity}', b'{,}', b'{"a"}', b'{"a":}', b'\xef\xbb\xbf{"a":1}',
               b'{"a":1}\x00', b'\x00{"a":1}', b'{"a":"b"\x0b}', b'{"a":"\x01"}', b'{"a":"\x1f"}', b'{"a":"\n"}',
               b'{"a\x01":1}', b'{"a":1}x', b'{"a":[1,}', b'{"a":{"b":1}', b'{"status":200', b'{"a":"\\/\\"}',
               b'{"a":' + b"1" * 400 + b".0}", b'{"a":-1' + b"0" * 309 + b"}", b'{"a":1}\f', b'\v{"a":1}']


@st.composite
def garbage(draw: st.DrawFn) -> bytes:
    """Bytes the Python path rejects (or barely accepts): random bytes, cut or spliced lines, invalid UTF-8,
    JSON grammar errors."""
    kind = draw(st.sampled_from(["bytes", "cut", "splice", "utf8", "not_object", "double"]))
    if kind == "bytes":
        return draw(st.binary(max_size=120))
    if kind == "not_object":
        return draw(st.sampled_from(NOT_OBJECTS))
    line = draw(json_lines(max_keys=6))
    if kind == "cut":
        return line[: draw(st.integers(0, max(len(line) - 1, 0)))]
    if kind == "double":
        return line + line
    pos = draw(st.integers(0, len(line)))
    insert = draw(st.sampled_from(BAD_UTF8)) if kind == "utf8" else draw(st.binary(min_size=1, max_size=3))
    return line[:pos] + insert + line[pos:]


@st.composite
def bad_utf8_in_strings(draw: st.DrawFn) -> bytes:
    """Invalid UTF-8 inside a key or a string value of an otherwise fine line."""
    bad = draw(st.sampled_from(BAD_UTF8))
    where = draw(st.sampled_from(["key", "value", "path"]))
    if where == "key":
        return b'{"st' + bad + b'atus":200,"path":"/a"}'
    if where == "value":
        return b'{"status":200,"ua":"Mozilla' + bad + b'"}'
    return b'{"path":"/a' + bad + b'b?c=1","status":200}'


OFFSETS = ["0", "7", "007", "", "abc", "1" * 18, "9" * 18, "1" * 19, "-1", "+1", "٣", " 7", "7 ", "1_000", "0x10"]
READ_TS = [str(READ_MS), str(READ_MS + 123), str(READ_MS + 86_400_000), str(READ_MS - 86_400_000), "", "abc",
           "1" * 19, "0", "1000", "999", "253402300799999", "253402300800000", "999999999999999999", "-1",
           str(READ_MS) + " ", "١٢"]
FLAGS = ["truncated", "a,,b", ",", "x,x", "timestamp_fallback", "invalid_status,truncated", "timestamp_out_of_range",
         "extra_truncated", "read_ts_missing", ",,", "a,timestamp_fallback,a", "invalid_time", "invalid_request_time"]


def header_values(name: str) -> st.SearchStrategy[str]:
    if name == H_TYPE:
        return st.sampled_from(["access"] * 12 + ["app", "Access", "access ", "trace", "stdout"])
    if name == H_OFFSET:
        return st.integers(0, 10**12).map(str) | st.sampled_from(OFFSETS)
    if name == H_READ_TS:
        return st.sampled_from(READ_TS) | st.integers(READ_MS - 10**10, READ_MS + 2 * 86_400_000).map(str)
    if name == H_FILE_ID:
        return st.sampled_from(["fingerprint::c0ffee", 'fp::é"\\\n\x00', "x", "f" * 300]) | st.text(max_size=40)
    if name == H_FLAGS:
        return st.sampled_from(FLAGS) | st.text("ab,_", max_size=8)
    if name in (H_COMPONENT, H_NAMESPACE, H_POD):
        return st.sampled_from(POOL) | st.text(max_size=12)
    return st.sampled_from(["node-1", 'a"b\\c\nd\x00é😀', "/var/log/x.log"]) | st.text(max_size=20)


REQUIRED = (H_TYPE, H_OFFSET, H_FILE_ID, H_READ_TS)


@st.composite
def header_lists(draw: st.DrawFn) -> Headers:
    """Shipper headers, each present (mostly valid), absent, empty, duplicated, null or invalid UTF-8;
    sometimes reordered, sometimes with foreign headers."""
    out: list[tuple[str, bytes | None]] = []
    for name in ALL_HEADERS:
        weights = ["present"] * (14 if name in REQUIRED else 4)
        mode = draw(st.sampled_from([*weights, "absent", "empty", "dup", "dup_empty", "none", "bad_utf8"]))
        if mode == "absent":
            continue
        if mode == "present":
            out.append((name, draw(header_values(name)).encode()))
        elif mode == "empty":
            out.append((name, b""))
        elif mode == "dup":
            out += [(name, draw(header_values(name)).encode()), (name, draw(header_values(name)).encode())]
        elif mode == "dup_empty":
            out += [(name, draw(header_values(name)).encode()), (name, b"")]
        elif mode == "none":
            out.append((name, None))
        else:
            out.append((name, b"ab\xff\xfe"))
    if draw(st.integers(0, 4)) == 0:
        out.append((draw(st.sampled_from(["traceparent", "x", "lp.other", "LP.TYPE"])),
                    draw(st.sampled_from([b"v", b"\xff", None, b""]))))
    if draw(st.integers(0, 4)) == 0:
        out = list(draw(st.permutations(out)))
    return tuple(out) if draw(st.booleans()) else out  # aiokafka hands a tuple of tuples


# ------------------------------------------------------------------------------------------ tests


def test_native_extension_is_built() -> None:
    """CI must notice a broken build: without the extension the consumer silently runs ~10x slower."""
    assert access_encoder.NATIVE_AVAILABLE, "parsers._access_encoder is not built — fix: pip install -e ."


def test_reference_is_the_consumer_path() -> None:
    """The reference itself: index, _id and document as the consumer writes them."""
    line = b'{"time":"2026-11-27T10:00:00.250+08:00","status":"404","path":"/a?b=1","latency":12}'
    ref = reference(line, shipper_headers(offset="007"), INGESTED, "logpipe", FieldMappingConfig(dialect="framework"))
    assert ref is not None
    item, index, doc_id = ref
    assert index == "logpipe-access-2026.11.27"
    assert doc_id == hashlib.blake2b(b"fingerprint::c0ffee@7", digest_size=16).hexdigest()
    action, body, tail = item.split(b"\n")
    assert action == b'{"index":{"_index":"logpipe-access-2026.11.27","_id":"' + doc_id.encode() + b'"}}'
    doc = orjson.loads(body)
    assert doc["@timestamp"] == "2026-11-27T10:00:00.250+08:00"
    assert doc["http"]["response"]["status_code"] == 404 and doc["event"]["duration"] == 12_000_000
    assert doc["url"] == {"path": "/a", "query": "b=1"} and doc["event"]["ingested"] == INGESTED
    assert tail == b""
    assert reference(b"{not json", shipper_headers(), INGESTED, "logpipe") is None  # dead-lettered


@pytest.mark.parametrize("name", list(SETUPS))
def test_any_record_is_declined_or_encoded_like_python(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Lines of mixed dialect keys, odd keys and values of every type, with varied headers."""
    setup = SETUPS[name]
    stats: Counter[str] = Counter()

    @settings(PROPERTY, max_examples=150)
    @given(line=json_lines(), headers=header_lists())
    def run(line: bytes, headers: Headers) -> None:
        outcome = setup.check(line, headers)
        event(outcome)
        stats[outcome] += 1

    run()
    report(capsys, f"mixed records [{name}]", stats)


@pytest.mark.parametrize("name", list(SETUPS))
def test_any_line_with_good_headers_is_declined_or_encoded_like_python(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same lines with the shipper's usual headers: most of the native path's work is the line."""
    setup = SETUPS[name]
    stats: Counter[str] = Counter()

    @settings(PROPERTY, max_examples=220)
    @given(line=json_lines(), offset=st.integers(0, 10**15), read_delta=st.integers(-10**9, 10**8),
           component=st.sampled_from([None, "cart", "5", ""]))
    def run(line: bytes, offset: int, read_delta: int, component: str | None) -> None:
        headers = shipper_headers(offset, READ_MS + read_delta, component=component)
        outcome = setup.check(line, headers)
        event(outcome)
        stats[outcome] += 1

    run()
    report(capsys, f"mixed lines, good headers [{name}]", stats)
    assert stats["native"] >= 0.15 * sum(stats.values()), "too few generated lines encoded natively"


# Plain records: what the fast path exists for. Every one must be encoded natively.
plain_chars = st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"], exclude_characters="\x00")
plain_text = st.text(plain_chars, max_size=30)
ascii_text = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=30)
plain_ints = st.integers(-(10**17), 10**17).filter(lambda i: i != 0) | st.just(0)
decimal_tokens = st.builds(lambda a, b: Raw(f"{a}.{b}"), st.integers(0, 10**6), st.integers(0, 10**6))
PLAIN_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "time": plain_times(),
    "path": plain_text.filter(lambda s: "://" not in s) | st.sampled_from(["/a?b=1", "/a?", "?", "/x??y"]),
    "status": st.integers(0, 10**6) | st.from_regex(r"[0-9]{1,18}", fullmatch=True),
    "bytes": st.integers(-(10**6), 10**17) | st.from_regex(r"[0-9]{1,18}", fullmatch=True),
    "request_time": st.integers(0, 10**9) | decimal_tokens
    | st.from_regex(r"[ \t]?[0-9]{0,6}\.?[0-9]{1,4}[ ]?", fullmatch=True),
    "client_ip": ipv4 | ipv4.map(lambda ip: f" {ip} ") | st.tuples(ipv4, ascii_text).map(", ".join),
    "trace_id": hexes(32) | st.builds(lambda a, b: f"00-{a}-{b}-01", hexes(32), hexes(16)) | ascii_text | plain_ints,
    "level": st.text(st.characters(min_codepoint=1, max_codepoint=127), min_size=1, max_size=40)
    | st.sampled_from([10, 20, 30, 40, 50, 60, 35, -1]),
    "msg": plain_text | plain_ints | st.booleans(),
}
plain_keywords: st.SearchStrategy[Any] = st.none() | plain_ints | plain_text | st.just("-")
plain_values: st.SearchStrategy[Any] = st.none() | st.booleans() | plain_ints | plain_text | st.just("-")
plain_keys = st.sampled_from([k for k in KNOWN_KEYS if k != "request"]) | st.text(plain_chars, max_size=12).filter(
    lambda k: k != "request"
)
_FIELD_NAMES: dict[str, dict[str, str]] = {}


def field_names(setup: str) -> dict[str, str]:
    """Raw key -> the field it feeds in this set-up."""
    names = _FIELD_NAMES.get(setup)
    if names is None:
        fm = FieldMap(SETUPS[setup].mapping, SETUPS[setup].limits)
        names = _FIELD_NAMES[setup] = {k: fm.fields[idx].name for k, (idx, _) in fm.table.items()}
    return names


@st.composite
def plain_lines(draw: st.DrawFn, setup: str) -> bytes:
    """Lines the fast path must take: distinct keys (also after ``.`` -> ``_``), one key per field (no
    field's losing key in ``extra``), values that are strings (BMP, no NUL), integers, booleans, null,
    canonical times, IPv4, decimals, each where its field takes it."""
    fields = field_names(setup)
    ks = draw(st.lists(plain_keys, max_size=20, unique_by=(extra_key_name, lambda k: fields.get(k, "?" + k))))
    pairs = []
    for k in ks:
        name = fields.get(k)
        if name is None:
            values = plain_values
        else:
            values = PLAIN_FIELD_VALUES.get(name, plain_keywords)
        pairs.append((k, draw(values)))
    style = draw(st.sampled_from(STYLES))
    return dump_object(pairs, style, draw(st.sampled_from(WHITESPACE)), draw(st.sampled_from(WHITESPACE)),
                       draw(st.sampled_from(TRAILING)))


@st.composite
def plain_headers(draw: st.DrawFn) -> Headers:
    """Valid shipper headers; the optional ones present or not, with any text."""
    h: list[tuple[str, bytes | None]] = [
        (H_TYPE, b"access"),
        (H_OFFSET, str(draw(st.integers(0, 10**18 - 1))).encode()),
        (H_FILE_ID, draw(st.text(plain_chars, min_size=1, max_size=60)).encode()),
        (H_READ_TS, str(READ_MS + draw(st.integers(-10**9, 10**6))).encode()),
    ]
    for name in (H_NODE, H_NAMESPACE, H_POD, H_POD_UID, H_CONTAINER, H_COMPONENT, H_PATH, H_FLAGS):
        if draw(st.booleans()):
            text = draw(st.sampled_from(POOL) | st.sampled_from(FLAGS) | st.text(max_size=16))
            h.append((name, text.encode()))
    h = list(draw(st.permutations(h)))
    return tuple(h) if draw(st.booleans()) else h


@pytest.mark.parametrize("name", [n for n in DEFAULT_LIMIT_SETUPS])
def test_plain_records_are_always_encoded_natively(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup = SETUPS[name]
    stats: Counter[str] = Counter()

    @settings(PROPERTY, max_examples=150)
    @given(line=plain_lines(name), headers=plain_headers())
    def run(line: bytes, headers: Headers) -> None:
        outcome = setup.check(line, headers)
        stats[outcome] += 1
        assert outcome == "native", f"[{name}] a plain record was declined: {line!r} {headers!r}"

    run()
    report(capsys, f"plain records [{name}]", stats)


@settings(PROPERTY, max_examples=300)
@given(value=garbage() | bad_utf8_in_strings(), name=st.sampled_from(list(SETUPS)))
def test_garbage_is_declined_or_encoded_like_python(value: bytes, name: str) -> None:
    event(SETUPS[name].check(value, shipper_headers()))


# ------------------------------------------------------------------------------------------ realistic lines


def _load_bench_generator() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "access_log_gen.py"
    spec = importlib.util.spec_from_file_location("access_log_gen", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_records(n: int) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """``n`` lines of bench/access_log_gen.py with the headers bench/consumer_bench.py ``make_records``
    gives them (20 files, offsets advancing by line), read an hour after the first line."""
    gen = _load_bench_generator()
    rng = random.Random(7)
    metas = [
        SourceMeta("node-1", "prod", f"pay-gw-{k}", f"uid-{k}", "app", "pay-gw", "access",
                   f"/var/log/pay-gw-{k}/access.log", f"fingerprint::run-{k}")
        for k in range(20)
    ]
    read_ms = int(gen.START.timestamp() * 1000) + 3_600_000
    offsets = [0] * 20
    out = []
    for i in range(n):
        k = i % 20
        value: bytes = gen.line(rng, i)
        out.append((value, LineRecord(metas[k], offsets[k], value, read_ms).headers()))
        offsets[k] += len(value) + 1
    return out


def _zero_fraction(time_text: str) -> bool:
    """Times the spec declines on purpose: a ``.000`` fraction (the Python path rewrites it)."""
    return ".000" in time_text


@pytest.mark.parametrize("name", ["auto", "nginx", "framework"])
def test_bench_lines_are_encoded_natively(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup = SETUPS[name]
    stats: Counter[str] = Counter()
    for value, headers in bench_records(5000):
        outcome = setup.check(value, headers)
        stats[outcome] += 1
        if outcome != "native":
            assert _zero_fraction(orjson.loads(value)["time"]), f"[{name}] bench line declined: {value!r}"
    report(capsys, f"bench/access_log_gen.py lines [{name}]", stats)
    assert stats["native"] >= 0.995 * 5000


NGINX_AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
                "curl/8.5.0", "kube-probe/1.29", "Go-http-client/1.1", 'weird "agent" \\ x']


def nginx_line(rng: random.Random, at: datetime, time_keys: tuple[str, ...] = ("time_iso8601",)) -> bytes:
    """An nginx ``log_format json escape=json`` line (numbers as nginx writes them: ``$request_time`` with
    3 decimals, ``$status`` sometimes quoted, ``-`` for empty variables)."""
    method = rng.choice(["GET", "GET", "POST", "PUT", "HEAD"])
    uri = rng.choice(["/", "/api/cart", "/api/orders/42", "/static/app.js", "/健康"])
    args = rng.choice(["", "", "id=42&debug=1", "q=a%20b"])
    status = rng.choice([200, 200, 200, 204, 301, 404, 499, 502])
    rt = rng.randrange(0, 5000) / 1000
    local = at.astimezone(timezone(timedelta(hours=8)))
    stamps = {
        "time_iso8601": local.isoformat(timespec="seconds"),
        "time_local": local.strftime("%d/%b/%Y:%H:%M:%S +0800"),
        "msec": Raw(f"{at.timestamp():.3f}"),
    }
    pairs: list[tuple[str, Any]] = [(k, stamps[k]) for k in time_keys]
    pairs += [
        ("remote_addr", f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"),
        ("remote_user", "-"),
        ("request", f"{method} {uri}{'?' + args if args else ''} HTTP/1.1"),
        ("request_method", method),
        ("uri", uri),
        ("args", args),
        ("status", status if rng.random() < 0.5 else str(status)),
        ("body_bytes_sent", rng.randrange(0, 100_000)),
        ("request_time", Raw(f"{rt:.3f}") if rng.random() < 0.5 else f"{rt:.3f}"),
        ("upstream_response_time", rng.choice(["-", f"{rt:.3f}", f"{rt / 2:.3f}, {rt / 2:.3f}"])),
        ("upstream_addr", rng.choice(["-", "10.0.3.7:8080"])),
        ("http_referer", rng.choice(["-", "https://shop.example/cart?x=1"])),
        ("http_user_agent", rng.choice(NGINX_AGENTS)),
        ("http_x_forwarded_for", rng.choice(["-", "203.0.113.7", "203.0.113.7, 10.0.0.1"])),
        ("host", "shop.example"),
        ("request_id", f"{rng.getrandbits(128):032x}"),
        ("http_traceparent", rng.choice(["-", f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01"])),
    ]
    return dump_object(pairs, "utf8" if rng.random() < 0.5 else "ascii")


def _realistic_headers(rng: random.Random, at: datetime, offset: int) -> Headers:
    read_ms = int(at.timestamp() * 1000) + rng.randrange(0, 5000)  # read shortly after the line was written
    return shipper_headers(offset, read_ms, flags=rng.choice([None, None, None, "truncated"]))


@pytest.mark.parametrize("name", ["nginx", "auto"])
def test_nginx_json_lines_are_encoded_natively(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup = SETUPS[name]
    rng = random.Random(11)
    stats: Counter[str] = Counter()
    offset = 0
    for i in range(1500):
        at = READ_AT + timedelta(seconds=rng.randrange(-2 * 86400, 3600), microseconds=rng.randrange(10**6))
        value = nginx_line(rng, at, ("time_iso8601", "time_local") if i % 3 else ("time_iso8601",))
        outcome = setup.check(value, _realistic_headers(rng, at, offset))
        assert outcome == "native", f"[{name}] nginx line declined: {value!r}"
        stats[outcome] += 1
        offset += len(value) + 1
    report(capsys, f"nginx log_format json lines [{name}]", stats)
    # nginx configs that log only $time_local or $msec: equal when encoded; their rate is printed.
    for keys in (("time_local",), ("msec",)):
        other: Counter[str] = Counter()
        for _ in range(300):
            at = READ_AT - timedelta(seconds=rng.randrange(86400))
            other[setup.check(nginx_line(rng, at, keys), _realistic_headers(rng, at, 0))] += 1
        report(capsys, f"nginx lines with only {keys[0]} [{name}]", other)


def framework_line(rng: random.Random, at: datetime, ts_form: str = "iso") -> bytes:
    """The in-house framework's line: ``ts`` (ISO with ms, in the pod's zone or UTC), ``latency`` in ms,
    ``trace_id``/``span_id``, ``level``, ``msg`` and the application's own fields."""
    zone = rng.choice([UTC, timezone(timedelta(hours=8))])
    ts: Any
    if ts_form == "iso":
        ts = at.astimezone(zone).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    else:
        ts = int(at.timestamp() * 1000)
    status = rng.choice([200, 200, 201, 400, 404, 500, 503])
    pairs: list[tuple[str, Any]] = [
        ("ts", ts),
        ("level", "error" if status >= 500 else rng.choice(["info", "INFO", "debug"])),
        ("service", rng.choice(["cart", "pay-gw", "order-svc"])),
        ("msg", rng.choice(["request done", 'said "hi"\n', "订单完成"])),
        ("method", rng.choice(["GET", "POST"])),
        ("path", rng.choice(["/cart/items", "/cart/items?page=2", "/pay?id=7&x="])),
        ("status", status),
        ("latency", rng.choice([rng.randrange(1, 3000), Raw(f"{rng.randrange(1, 300000) / 100:.2f}")])),
        ("bytes", rng.randrange(0, 50_000)),
        ("client_ip", f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}"),
        ("ua", rng.choice(NGINX_AGENTS)),
        ("trace_id", f"{rng.getrandbits(128):032x}"),
        ("span_id", f"{rng.getrandbits(64):016x}"),
        ("user_id", rng.randrange(10**9)),
        ("tenant", rng.choice(["acme", "globex", None])),
        ("retry", rng.choice([True, False])),
    ]
    return dump_object(pairs, rng.choice(["orjson", "ascii"]), rng.choice(["", " "]))


@pytest.mark.parametrize("name", ["framework", "auto"])
def test_framework_lines_are_encoded_natively(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup = SETUPS[name]
    rng = random.Random(13)
    stats: Counter[str] = Counter()
    for i in range(1500):
        at = READ_AT - timedelta(seconds=rng.randrange(3 * 86400), microseconds=rng.randrange(10**6))
        value = framework_line(rng, at)
        outcome = setup.check(value, _realistic_headers(rng, at, i * 400))
        stats[outcome] += 1
        if outcome != "native":
            assert _zero_fraction(orjson.loads(value)["ts"]), f"[{name}] framework line declined: {value!r}"
    report(capsys, f"framework lines [{name}]", stats)
    assert stats["native"] >= 0.99 * 1500
    epoch: Counter[str] = Counter()
    for _ in range(300):  # framework versions writing ts as epoch ms: equal when encoded; rate printed
        at = READ_AT - timedelta(seconds=rng.randrange(86400))
        epoch[setup.check(framework_line(rng, at, "epoch_ms"), _realistic_headers(rng, at, 0))] += 1
    report(capsys, f"framework lines with epoch-ms ts [{name}]", epoch)


# ------------------------------------------------------------------------------------------ edge cases

LINE = {"time": "2026-11-27T11:00:00.123Z", "method": "GET", "path": "/a", "status": 200}


def _line(**over: Any) -> bytes:
    return orjson.dumps({**LINE, **over})


# (id, set-up, line, headers, must the native path encode it?). True: encoded, and equal. False: None or
# equal (what the spec declines, the Python path's exceptions, and anything a stricter fast path may leave).
EDGE_CASES: list[tuple[str, str, bytes, Headers, bool]] = [
    ("empty_object", "auto", b"{}", shipper_headers(), True),
    ("whitespace_and_crlf", "auto", b' \t{ "status" : 200 }\t \r\n', shipper_headers(), True),
    ("message_keeps_inner_newline", "auto", b'{"status":200}\n \n', shipper_headers(), True),
    ("status_18_digit_string", "auto", _line(status="000000000000000200"), shipper_headers(), True),
    ("status_1000", "auto", _line(status=1000), shipper_headers(), True),
    ("status_string_1000", "auto", _line(status="1000"), shipper_headers(), True),
    ("status_negative", "auto", _line(status=-1), shipper_headers(), True),
    ("status_19_digits", "auto", _line(status="1" * 19), shipper_headers(), True),
    ("bytes_negative", "auto", _line(bytes=-5), shipper_headers(), True),
    ("bytes_007", "auto", _line(bytes="007"), shipper_headers(), True),
    ("keyword_int", "auto", _line(method=5), shipper_headers(), True),
    ("keyword_negative_int", "auto", _line(method=-999999999999999999), shipper_headers(), True),
    ("keyword_8191_multibyte", "auto", _line(ua="é" * 8191), shipper_headers(), True),
    ("keyword_8191_escaped", "auto", dump_object([("ua", "é" * 8191)], "u"), shipper_headers(), True),
    ("keyword_8192_multibyte", "auto", _line(ua="é" * 8192), shipper_headers(), False),
    ("extra_1024_multibyte", "auto", _line(note="é" * 1024), shipper_headers(), True),
    ("extra_1024_astral", "auto", _line(note="😀" * 1024), shipper_headers(), True),
    ("extra_1025_multibyte", "auto", _line(note="é" * 1025), shipper_headers(), False),
    ("extra_int_bool_null", "auto", _line(a=-7, b=True, c=False, d=None, e="", f="-"), shipper_headers(), True),
    ("extra_64_keys", "auto", orjson.dumps({f"k{i}": "v" for i in range(64)}), shipper_headers(), True),
    ("extra_65_keys", "auto", orjson.dumps({f"k{i}": "v" for i in range(65)}), shipper_headers(), False),
    ("extra_dotted_and_blank_keys", "auto", orjson.dumps({"a.b": "1", " ": "2", "": "3", "é.ü": "4"}),
     shipper_headers(), True),
    ("extra_names_collide", "auto", orjson.dumps({"a.b": "1", "a_b": "2"}), shipper_headers(), False),
    ("extra_key_129_chars", "auto", orjson.dumps({"k" * 129: "1"}), shipper_headers(), False),
    ("ip_comma_multibyte_tail", "auto", _line(client_ip="1.2.3.4," + "é" * 200), shipper_headers(), False),
    ("ip_257_chars", "auto", _line(client_ip="1.2.3.4," + "a" * 250), shipper_headers(), True),
    ("ip_spaces", "auto", _line(client_ip=" \t1.2.3.4 , 5.6.7.8"), shipper_headers(), True),
    ("ip_unit_separator", "auto", _line(client_ip="\x1f1.2.3.4"), shipper_headers(), False),
    ("ip_ipv6", "auto", _line(client_ip="2001:db8::1"), shipper_headers(), False),
    ("ip_leading_zero", "auto", _line(client_ip="010.1.2.3"), shipper_headers(), False),
    ("level_numeric", "auto", _line(level=10), shipper_headers(), True),
    ("level_35", "auto", _line(level=35), shipper_headers(), True),
    ("level_upper", "auto", _line(level="WARN"), shipper_headers(), True),
    ("level_33_chars", "auto", _line(level="x" * 33), shipper_headers(), True),
    ("trace_traceparent", "auto", _line(trace_id=TRACE_ODD[0]), shipper_headers(), True),
    ("trace_54_chars", "auto", _line(trace_id=TRACE_ODD[1]), shipper_headers(), True),
    ("trace_int", "auto", _line(trace_id=12345), shipper_headers(), True),
    ("nginx_traceparent_key", "nginx", orjson.dumps({"http_traceparent": TRACE_ODD[0]}), shipper_headers(), True),
    ("path_query", "auto", _line(path="/a?b=1&c"), shipper_headers(), True),
    ("path_query_with_query_key", "auto", _line(path="/a?b=1", query="z=9"), shipper_headers(), True),
    ("path_empty_query", "auto", _line(path="/a?"), shipper_headers(), True),
    ("path_only_question_mark", "auto", _line(path="?"), shipper_headers(), True),
    ("path_two_question_marks", "auto", _line(path="/a??b"), shipper_headers(), True),
    ("path_url", "auto", _line(path="http://h.example/p?q=1"), shipper_headers(), False),
    ("path_8191", "auto", _line(path="/" + "p" * 8190), shipper_headers(), True),
    ("duration_string_seconds", "auto", _line(request_time="0.004"), shipper_headers(), True),
    ("duration_string_spaces", "auto", _line(request_time=" 12 "), shipper_headers(), True),
    ("duration_trailing_dot", "auto", _line(request_time="12."), shipper_headers(), True),
    ("duration_leading_dot", "auto", _line(request_time=".5"), shipper_headers(), True),
    ("duration_only_dot", "auto", _line(request_time="."), shipper_headers(), True),
    ("duration_bad_string", "auto", _line(request_time="12 ms"), shipper_headers(), True),
    ("duration_upstream_list", "nginx", orjson.dumps({"upstream_response_time": "0.004, 0.002"}), shipper_headers(),
     False),
    ("duration_unit_separator", "auto", _line(request_time="\x1f12"), shipper_headers(), False),
    ("duration_301_digit_string", "auto", _line(request_time="1" * 301), shipper_headers(), False),
    ("duration_400_digit_string_ns", "auto", orjson.dumps({"event.duration": "1" * 400}), shipper_headers(), False),
    ("duration_half_even_ns", "auto", dump_object([("event.duration", Raw("2.5"))]), shipper_headers(), True),
    ("duration_half_even_ns_odd", "auto", dump_object([("event.duration", Raw("3.5"))]), shipper_headers(), True),
    ("duration_string_half_even_ns", "auto", orjson.dumps({"event.duration": "0.5"}), shipper_headers(), True),
    ("duration_ms_float", "framework", dump_object([("latency", Raw("12.5"))]), shipper_headers(), True),
    ("duration_too_big", "auto", dump_object([("request_time", Raw("9223372037"))]), shipper_headers(), True),
    ("duration_just_below_2_63", "auto", dump_object([("event.duration", Raw("9223372036854774784"))]),
     shipper_headers(), False),
    ("duration_string_too_big", "auto", _line(request_time="9223372037"), shipper_headers(), True),
    ("duration_minus_zero", "auto", dump_object([("request_time", Raw("-0.0"))]), shipper_headers(), False),
    ("time_plus_offset", "auto", _line(time="2026-11-27T19:00:00.123456+08:00"), shipper_headers(), True),
    ("time_minus_zero_offset", "auto", _line(time="2026-11-27T11:00:00.123-00:00"), shipper_headers(), True),
    ("time_plus_zero_offset", "auto", _line(time="2026-11-27T11:00:00+00:00"), shipper_headers(), True),
    ("time_fraction_100", "auto", _line(time="2026-11-27T11:00:00.100Z"), shipper_headers(), True),
    ("time_fraction_000100", "auto", _line(time="2026-11-27T11:00:00.000100Z"), shipper_headers(), True),
    ("time_fraction_000", "auto", _line(time="2026-11-27T11:00:00.000Z"), shipper_headers(), False),
    ("time_previous_utc_day", "auto", _line(time="2026-11-27T07:30:00+08:00"), shipper_headers(), True),
    ("time_next_utc_day_by_offset", "auto", _line(time="2026-11-27T20:30:00-05:00"), shipper_headers(), True),
    ("time_half_hour_offset_midnight", "auto", _line(time="2026-11-28T05:29:59.999+05:30"), shipper_headers(), True),
    ("time_exactly_one_day_ahead", "auto", _line(time="2026-11-28T12:00:00Z"), shipper_headers(), True),
    ("time_one_ms_past_window", "auto", _line(time="2026-11-28T12:00:00.001Z"), shipper_headers(), True),
    ("time_one_us_past_window", "auto", _line(time="2026-11-28T20:00:00.000001+08:00"), shipper_headers(), True),
    ("time_window_vs_fractional_read", "auto", _line(time="2026-11-28T12:00:00.123Z"),
     shipper_headers(read_ms=READ_MS + 123), True),
    ("time_leap_day", "auto", _line(time="2024-02-29T10:00:00Z"), shipper_headers(), True),
    ("time_leap_day_2000", "auto", _line(time="2000-02-29T10:00:00Z"), shipper_headers(), True),
    ("time_no_leap_day_1900", "auto", _line(time="1900-02-29T10:00:00Z"), shipper_headers(), False),
    ("time_no_leap_day_2026", "auto", _line(time="2026-02-29T10:00:00Z"), shipper_headers(), False),
    ("time_april_31", "auto", _line(time="2026-04-31T10:00:00Z"), shipper_headers(), False),
    ("time_year_1_positive_offset", "auto", _line(time="0001-01-01T00:30:00+01:00"), shipper_headers(), False),
    ("time_year_9999", "no_window", _line(time="9999-12-31T23:59:59Z"), shipper_headers(), False),
    ("time_bounded_past", "bounded", orjson.dumps({"time": "2026-11-27T10:59:59.999Z"}), shipper_headers(), True),
    ("time_bounded_future", "bounded", orjson.dumps({"time": "2026-11-27T12:01:00.001Z"}), shipper_headers(), True),
    ("time_epoch", "auto", _line(time=1795780800123), shipper_headers(), False),
    ("time_and_ts", "auto", _line(ts="2026-11-27T11:30:00Z"), shipper_headers(), True),
    ("flags_dedupe_fallback", "auto", b'{"status":1000}', shipper_headers(flags="timestamp_fallback,a,,b,a"), True),
    ("flags_shipped_invalid", "auto", b'{"status":1000}', shipper_headers(flags="invalid_status"), True),
    ("flags_48_shipped", "auto", _line(status="x"), shipper_headers(flags=",".join(f"f{i % 7}" for i in range(48))),
     True),
    ("flags_49_shipped", "auto", _line(status="x"), shipper_headers(flags=",".join(f"f{i}" for i in range(49))),
     False),
    ("flags_all_steps_invalid", "auto",
     orjson.dumps({"status": "a", "bytes": "b", "level": 7, "client_ip": "1.2.3.4," + "x" * 256, "request_time": "c",
                   "time": "2030-01-01T00:00:00Z"}),
     shipper_headers(flags=",".join(f"f{i}" for i in range(48))), True),
    ("flags_order", "auto", _line(status="x", bytes="y", time="2026-11-29T00:00:00Z"),
     shipper_headers(flags="truncated"), True),
    ("from_header_equal", "auto", _line(pod="cart-7d9f-abcde", namespace="shop", service="cart"), shipper_headers(),
     True),
    ("from_header_differs", "auto", _line(pod="other", namespace="x", service="y"), shipper_headers(), True),
    ("from_header_int_equal", "auto", _line(pod=5), shipper_headers(pod="5"), True),
    ("from_header_absent", "auto", _line(pod="p", namespace="n", service=5),
     shipper_headers(pod=None, namespace=None, component=None), True),
    ("from_header_absent_keeps_uid", "auto", _line(pod="p"), shipper_headers(pod=""), True),
    ("from_header_absent_too_long", "auto", _line(service="s" * 8192), shipper_headers(component=None), False),
    ("component_from_app_key", "auto", _line(app="a", service="s"), shipper_headers(component=None), True),
    ("nginx_request_only", "nginx", orjson.dumps({"request": "GET /a?b=1 HTTP/1.1", "status": 200}),
     shipper_headers(), False),
    ("nginx_request_and_method", "nginx", orjson.dumps({"request": "GET /a HTTP/1.1", "request_method": "GET"}),
     shipper_headers(), True),
    ("escaped_key", "auto", b'{"\\u0073tatus":200,"p\\u0061th":"/x"}', shipper_headers(), True),
    ("escaped_values", "auto", b'{"path":"\\/a\\tb\\"c\\\\","ua":"\\u00e9\\u20ac\\n"}', shipper_headers(), True),
    ("duplicate_keys", "auto", b'{"status":200,"status":404}', shipper_headers(), False),
    ("key_prefix_layouts_a", "auto", b'{"ab":"1","c":"2"}', shipper_headers(), True),
    ("key_prefix_layouts_b", "auto", b'{"a":"1","bc":"2"}', shipper_headers(), True),
    ("ecs_keys", "auto", orjson.dumps({"@timestamp": "2026-11-27T11:00:00Z", "url.path": "/e", "log.level": "X",
                                       "http.response.status_code": 201, "event.duration": 5}),
     shipper_headers(), True),
    ("offset_leading_zeros", "auto", _line(), shipper_headers(offset="007"), True),
    ("offset_18_digits", "auto", _line(), shipper_headers(offset="9" * 18), True),
    ("offset_19_digits", "auto", _line(), shipper_headers(offset="1" * 19), False),
    ("offset_not_digits", "auto", _line(), shipper_headers(offset="abc"), False),
    ("offset_empty", "auto", _line(), shipper_headers(offset=""), False),
    ("file_id_missing", "auto", _line(), shipper_headers(file_id=None), False),
    ("read_ts_whole_second", "auto", b"{}", shipper_headers(read_ms=READ_MS), True),
    ("read_ts_zero", "auto", b"{}", shipper_headers(read_ms=0), True),
    ("read_ts_year_9999", "auto", b"{}", shipper_headers(read_ms=253402300799999), True),
    ("read_ts_year_10000", "auto", b"{}", shipper_headers(read_ms=253402300800000), False),
    ("read_ts_missing", "auto", b"{}", shipper_headers(read_ts=None), False),
    ("type_app", "auto", _line(), shipper_headers(type="app"), False),
    ("header_escapes", "auto", _line(), shipper_headers(path='/x/"q"\\\n\x00\x1f', file_id="f\"\\é\x01",
                                                          node="😀", container="\u2028"), True),
    ("headers_only_required", "auto", _line(), [(H_TYPE, b"access"), (H_OFFSET, b"1"), (H_FILE_ID, b"f"),
                                                  (H_READ_TS, str(READ_MS).encode())], True),
    ("header_duplicate_last_empty", "auto", _line(pod="p"), [*shipper_headers(), (H_POD, b"")], True),
    ("header_duplicate_last_wins", "auto", _line(), [*shipper_headers(), (H_OFFSET, b"9"), (H_TYPE, b"access")], True),
    ("header_duplicate_type", "auto", _line(), [*shipper_headers(), (H_TYPE, b"app")], False),
    ("header_none_value", "auto", _line(), [*shipper_headers(), ("x-foreign", None)], False),
    ("header_bad_utf8", "auto", _line(), [*shipper_headers(), (H_NODE, b"\xff")], False),
    ("unit_ms_nginx", "unit", orjson.dumps({"request_time": "1.5", "took_ms": 3}), shipper_headers(), True),
    ("unit_us_framework", "unit_us", orjson.dumps({"latency": 7, "event.duration": 9}), shipper_headers(), True),
    ("custom_keys", "keys", orjson.dumps({"req_path": "/r?x=1", "http.status": "201", "peer": "1.1.1.1",
                                          "when": "2026-11-27T11:00:00+01:00", "path": "/p", "ns": "n"}),
     shipper_headers(namespace=None), True),
    ("bounded_extra_4_keys", "bounded", orjson.dumps({"a": "1", "b": "2", "c": "3", "d": "4"}), shipper_headers(),
     True),
    ("bounded_extra_5_keys", "bounded", orjson.dumps({"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}),
     shipper_headers(), False),
    ("bounded_extra_24_chars", "bounded", orjson.dumps({"a": "é" * 24}), shipper_headers(), True),
    ("bounded_extra_25_chars", "bounded", orjson.dumps({"a": "é" * 25}), shipper_headers(), False),
    ("bounded_key_12_chars", "bounded", orjson.dumps({"k" * 12: "v"}), shipper_headers(), True),
    ("bounded_key_13_chars", "bounded", orjson.dumps({"k" * 13: "v"}), shipper_headers(), False),
    ("bounded_prefix_index", "bounded", b'{"status":200}', shipper_headers(), True),
]


@pytest.mark.parametrize(("name", "line", "headers", "must_encode"),
                         [pytest.param(*c[1:], id=c[0]) for c in EDGE_CASES])
def test_edge_case(name: str, line: bytes, headers: Headers, must_encode: bool) -> None:
    outcome = SETUPS[name].check(line, headers)
    if must_encode:
        assert outcome == "native", f"declined: {line[:200]!r}"


def test_worst_case_output_sizes() -> None:
    """The largest documents the fast path writes: keyword fields of 8191 characters that each expand
    to ``\\u00XX`` or are 3-4 UTF-8 bytes, 40 ``extra`` values of 1024, headers of control characters,
    48 shipped flags."""
    setup = SETUPS["auto"]
    ctrl = "".join(chr(c) for c in range(1, 32)) + '"\\'
    fat = (ctrl * 300)[:8191]
    heavy = (ctrl * 40).encode()
    headers = shipper_headers(7, component="", namespace="", pod="",
                              **{k: heavy.decode() for k in ("path", "node", "container", "pod_uid")})
    headers += [(H_FILE_ID, heavy), (H_FLAGS, ",".join([ctrl[:5]] * 48).encode())]
    keys = ["method", "query", "ua", "span_id", "host", "service", "namespace", "pod"]
    for text, style in ((fat, "u"), (fat, "utf8"), ("😀" * 8191, "utf8"), ("\u2028" * 8191, "u")):
        pairs: list[tuple[str, Any]] = [(k, text) for k in keys]
        pairs += [("level", fat[:32]), ("trace_id", fat), ("path", text[:4000] + "?" + text[:4000])]
        pairs += [(f"x{i}", text[:1024]) for i in range(40)]
        pairs += [("bytes", 10**17), ("status", "999")]
        assert setup.check(dump_object(pairs, style), headers) == "native", style
    huge = dump_object([("ua", "x" * 8191), *[(f"p{i}", "é" * 40_000) for i in range(60)]])  # ~5 MB, declined
    assert setup.check(huge, headers) == "declined"
    assert setup.check(_line(), shipper_headers()) == "native"  # the buffers shrank back and still work


def test_ingested_is_written_as_given() -> None:
    setup = SETUPS["auto"]
    for ingested in (INGESTED, 'odd "stamp" \\ é\n', ""):
        assert setup.check(_line(), shipper_headers(), ingested) == "native"


def test_utf8_validation_is_pythons() -> None:
    """Every 1-4 byte sequence shape around the UTF-8 boundaries (overlongs, surrogates, > U+10FFFF,
    truncated) inside a string value: encoded natively exactly when Python's strict decoder takes it."""
    setup = SETUPS["auto"]
    seconds = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
    for b1 in range(0x80, 0x100):
        for b2 in seconds:
            for tail in (b"", b"\x80", b"\xbf", b"\x80\x80", b"\x80\x7f", b"\xc0\x80"):
                seq = bytes([b1, b2]) + tail
                if b2 == 0x00:
                    seq = bytes([b1])  # the sequence cut short by the closing quote
                line = b'{"status":200,"ua":"a' + seq + b'z"}'
                try:
                    line.decode()
                    valid = True
                except UnicodeDecodeError:
                    valid = False
                outcome = setup.check(line, shipper_headers())
                assert (outcome == "native") == valid, (seq, outcome)


@pytest.mark.parametrize("name", ["nginx", "auto"])
def test_lines_not_utf8_are_declined_and_indexed_by_python(name: str) -> None:
    """nginx writes request bytes >= 0x80 as they came: the native path declines such lines, and the
    Python path indexes them (U+FFFD, flag ``invalid_utf8``, the bytes in ``logpipe.original_base64``)."""
    setup = SETUPS[name]
    rng = random.Random(12)
    line = nginx_line(rng, READ_AT)
    obj = orjson.loads(line)
    for raw in (b"Mozilla/5.0 (X11; \xe9t\xe9)", b"\xff\xfe", b"ok \xc3"):
        bad = orjson.dumps({**obj, "http_user_agent": "@UA@"}).replace(b"@UA@", raw)
        assert setup.check(bad, shipper_headers()) == "declined"
        ref = reference(bad, shipper_headers(), INGESTED, setup.prefix, setup.mapping)
        assert ref is not None
        doc = orjson.loads(ref[0].split(b"\n")[1])
        assert "invalid_utf8" in doc["logpipe"]["flags"]
        assert base64.b64decode(doc["logpipe"]["original_base64"]) == bad
        assert doc["user_agent"]["original"] == raw.decode("utf-8", "replace")


def test_every_ascii_character_in_keys_and_values() -> None:
    """Each ASCII character (but NUL) in a key and a value, in every escaping style: encoded natively."""
    setup = SETUPS["nginx"]
    for c in range(1, 128):
        ch = chr(c)
        for style in STYLES:
            line = dump_object([("k" + ch, "v" + ch), ("http_user_agent", ch + "ua"), ("uri", "/" + ch)], style)
            assert setup.check(line, shipper_headers()) == "native", (ch, style)


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        # No UTC day to name an index after: once crashed index_name (OverflowError) and the consume loop.
        ({"time": "0001-01-01T00:30:00+01:00"}, "timestamp_out_of_range"),
        ({"time": "9999-12-31T23:00:00-05:00"}, "timestamp_out_of_range"),
        # A duration overflowing to infinity: once an OverflowError, so the line was dead-lettered.
        ({"request_time": "1" * 310}, "invalid_request_time"),
    ],
)
def test_values_the_python_path_once_raised_on(changes: dict[str, Any], flag: str) -> None:
    """The native path declines these; the Python path flags the value and indexes the line."""
    for name in ("auto", "no_window"):
        setup = SETUPS[name]
        assert setup.check(_line(**changes), shipper_headers()) == "declined"
        ref = reference(_line(**changes), shipper_headers(), INGESTED, setup.prefix, setup.mapping, window=setup.window)
        assert ref is not None
        doc = orjson.loads(ref[0].split(b"\n")[1])
        assert flag in doc["logpipe"]["flags"]


# ------------------------------------------------------------------------------------------ layouts, ids, leaks


def test_layout_cache_past_512_layouts_and_alternating_layouts() -> None:
    """Many layouts (the cache is cleared past 512), revisited; layouts that differ only in how their
    keys split ("ab","c" vs "a","bc"), in escaping, or in one letter, alternating (the last-layout fast path)."""
    setup = SETUPS["auto"]
    outcomes: Counter[str] = Counter()
    lines = [orjson.dumps({f"k{i}": "v", "status": i % 700, "path": f"/p{i}", f"z{i % 7}": i}) for i in range(1300)]
    for line in lines + lines[::-1]:
        outcomes[setup.check(line, shipper_headers())] += 1
    assert outcomes == {"native": 2600}
    pairs = [
        (b'{"ab":"1","c":"2"}', b'{"a":"1","bc":"2"}'),
        (b'{"status":"7"}', b'{"statuz":"7"}'),
        (b'{"status":200}', b'{"\\u0073tatus":201}'),
        (b'{"status":200,"path":"/a"}', b'{"path":"/a","status":200}'),
        (b'{"status":200}', b'{"status":200,"status":201}'),
        (b'{"request":"GET /a HTTP/1.1"}', b'{"request":"GET /a HTTP/1.1","status":1}'),
    ]
    for a, b in pairs:
        for line in (a, b, a, b, b, a):
            setup.check(line, shipper_headers())
    for name in ("nginx", "auto"):
        outcome = SETUPS[name].check(b'{"request":"GET /a HTTP/1.1","method":"GET"}', shipper_headers())
        assert outcome == "native"


def test_plan_is_asked_once_per_layout_even_when_it_declines() -> None:
    """The C side caches plans (also a None plan) per key layout."""
    fm = FieldMap(FieldMappingConfig(dialect="nginx"))
    enc = AccessEncoder(fm, "logpipe")
    calls: Counter[tuple[str, ...]] = Counter()

    def counting_plan(keys: tuple[str, ...]) -> Any:
        calls[keys] += 1
        return enc.plan(keys)

    native = NATIVE_MODULE.Encoder(counting_plan, "logpipe", 86400.0, None, 64, 1024)
    declined = b'{"request":"GET /a HTTP/1.1"}'  # nginx's $request line alone: the plan is None
    for i in range(50):
        assert native.encode(_line(status=200 + i), shipper_headers(), INGESTED) is not None
        assert native.encode(declined, shipper_headers(), INGESTED) is None
    assert calls[tuple(LINE)] == 1 and calls[("request",)] == 1


def test_native_blake2b_matches_hashlib() -> None:
    """The extension's BLAKE2b (RFC 7693, 16-byte digest) on random inputs of 0..300 bytes and around
    the 128-byte block boundaries."""
    rng = random.Random(3)
    lengths = [*range(0, 301), 1000, 4096, 65537]
    for n in lengths:
        for data in (rng.randbytes(n), bytes(n), b"\xff" * n):
            assert NATIVE_MODULE.blake2b16_hex(data) == hashlib.blake2b(data, digest_size=16).hexdigest(), n


def test_document_ids_are_blake2b_of_file_id_and_offset() -> None:
    """The C BLAKE2b against hashlib on inputs of 3..~340 bytes (block boundaries at 128, 256)."""
    setup = SETUPS["auto"]
    rng = random.Random(5)
    alphabet = "abcXYZ019:/-_é€😀"
    for n in range(1, 301):
        file_id = "".join(rng.choice(alphabet) for _ in range(n))
        offset = rng.choice([0, 7, rng.randrange(10**18)])
        headers = shipper_headers(offset, file_id=file_id)
        native = setup.encoder.encode(b'{"status":200}', headers, INGESTED)
        assert native is not None, file_id
        message = f"{file_id}@{offset}".encode()
        assert native[2] == hashlib.blake2b(message, digest_size=16).hexdigest(), (len(message), file_id)
    for n in range(1, 260):  # every length of f"{file_id}@{offset}" around the two block boundaries
        file_id = "f" * n
        native = setup.encoder.encode(b"{}", shipper_headers(1, file_id=file_id), INGESTED)
        assert native is not None
        assert native[2] == hashlib.blake2b(f"{file_id}@1".encode(), digest_size=16).hexdigest(), n


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _leak_inputs() -> list[tuple[bytes, Headers]]:
    good = shipper_headers(7)
    return [
        (_line(), good),  # encoded
        (_line(status="x", note="n", ua="é\n"), shipper_headers(9, flags="a,b")),  # encoded, flags, extra
        (b'{"k1":"v","k2":3,"k3":true}', good),  # encoded, extra only
        (_line(), shipper_headers(read_ts="")),  # declined by headers
        (_line(), [*good, ("x", None)]),
        (b'{"status":', good),  # invalid JSON
        (b'{"a":{"b":1}}', good),  # nested
        (b'{"request":"GET /a HTTP/1.1"}', shipper_headers()),  # no plan
        (_line(client_ip="2001:db8::1"), good),  # declined by an action
        (_line(note="é" * 2000), good),  # declined by extra
        (b'{"a":1,"a":2}', good),
        (b"\xff\xfe", good),
    ]


def test_encode_leaks_no_references_and_no_memory() -> None:
    """Refcounts of the inputs are unchanged after many calls; RSS stays flat over 200k calls."""
    enc = SETUPS["auto"].encoder
    inputs = _leak_inputs()
    for value, headers in inputs:
        enc.encode(value, headers, INGESTED)  # plans cached, index names made
        before = (sys.getrefcount(value), sys.getrefcount(headers), sys.getrefcount(INGESTED),
                  [sys.getrefcount(h) for h in headers])
        for _ in range(2000):
            enc.encode(value, headers, INGESTED)
        after = (sys.getrefcount(value), sys.getrefcount(headers), sys.getrefcount(INGESTED),
                 [sys.getrefcount(h) for h in headers])
        assert after == before, f"refcounts changed for {value!r}: {before} -> {after}"
    for _ in range(2000):
        for value, headers in inputs:
            enc.encode(value, headers, INGESTED)
    gc.collect()
    rss = _rss_bytes()
    for _ in range(200_000 // len(inputs)):
        for value, headers in inputs:
            enc.encode(value, headers, INGESTED)
    gc.collect()
    growth = _rss_bytes() - rss
    assert growth < 4 << 20, f"RSS grew by {growth / 2**20:.1f} MiB over 200k encodes"


class _Weird:
    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return iter(shipper_headers())


def _malformed_headers() -> list[Callable[[], Any]]:
    good = shipper_headers()
    return [
        lambda: None, lambda: [], lambda: (), lambda: [(H_TYPE, b"access")], lambda: tuple(good),
        lambda: [list(h) for h in good], lambda: [*good, (b"lp.x", b"1")], lambda: [*good, (H_POD, "str value")],
        lambda: [*good, ("lp.x",)], lambda: [*good, ("a", b"b", b"c")], lambda: [*good, (H_POD, bytearray(b"p"))],
        lambda: [*good, (H_POD, memoryview(b"p"))], lambda: [*good, 5], lambda: [*good, None], lambda: iter(good),
        lambda: _Weird(), lambda: "lp.type", lambda: b"lp.type", lambda: 5, lambda: {"lp.type": b"access"},
        lambda: [(1, b"x"), *good], lambda: [(H_TYPE, 1), *good[1:]], lambda: [(H_OFFSET, b"\x00")],
        lambda: [*good, ("", b"")], lambda: [*good, (H_TYPE, None)], lambda: [*good, ("lp.\udc80", b"x")],
    ]


def test_malformed_headers_never_raise() -> None:
    """Whatever the headers object holds, encode returns None or the Python path's result (never raises)."""
    enc = SETUPS["auto"].encoder
    for make in _malformed_headers():
        try:
            native = enc.encode(_line(), make(), INGESTED)
        except MemoryError:
            raise
        except Exception as exc:
            raise AssertionError(f"encode raised {exc!r} for headers {make()!r}") from None
        if native is None:
            continue
        try:
            ref = reference(_line(), make(), INGESTED, "logpipe")
        except PythonPathRaised:
            raise AssertionError(f"native encoded headers {make()!r} the Python path fails on: {native!r}") from None
        assert_same(native, ref, f"headers {make()!r}")


def test_bad_plans_never_crash() -> None:
    """A plan function that raises or returns nonsense makes encode decline (or raise), never crash.
    (Last in the file: a crash here would hide nothing else.)"""
    plans: list[Callable[[tuple[str, ...]], Any]] = [
        lambda keys: 1 / 0,
        lambda keys: "nonsense",
        lambda keys: (),
        lambda keys: ((), (), ()),  # steps none, extra none, names none: valid for "{}"-like lines only
        lambda keys: (((99, 1, 0, 0, "invalid_x"),), (), tuple(orjson.dumps(k) for k in keys)),
        lambda keys: (((0, 99, 0, 0, "invalid_x"),), (), tuple(orjson.dumps(k) for k in keys)),
        lambda keys: (((0, 1, 99, 0, "invalid_x"),), (), tuple(orjson.dumps(k) for k in keys)),
        lambda keys: ((), (99,), tuple(orjson.dumps(k) for k in keys)),
        lambda keys: ((), (0,), ()),
    ]
    state: dict[str, Any] = {}

    def reentrant(keys: tuple[str, ...]) -> Any:  # encode from inside the plan function
        assert state["enc"].encode(b'{"a":"1"}', shipper_headers(), INGESTED) is None
        return state["plan"](keys)

    def mutating(keys: tuple[str, ...]) -> Any:  # the headers list changes under the encoder's feet
        state["headers"].clear()
        state["headers"].extend([(H_TYPE, b"app")] * 100)
        gc.collect()
        return state["plan"](keys)

    for fn in (reentrant, mutating):
        state["plan"] = AccessEncoder(FieldMap(), "logpipe").plan
        state["enc"] = NATIVE_MODULE.Encoder(fn, "logpipe", 86400.0, None, 64, 1024)
        state["headers"] = shipper_headers()
        result = state["enc"].encode(b'{"status":200}', state["headers"], INGESTED)
        assert result is None or isinstance(result, tuple)
    for plan in plans:
        native = NATIVE_MODULE.Encoder(plan, "logpipe", 86400.0, None, 64, 1024)
        for line in (b'{"status":200}', b'{"a":"1","b":2}'):
            try:
                result = native.encode(line, shipper_headers(), INGESTED)
            except (ZeroDivisionError, TypeError, ValueError, IndexError):
                continue
            assert result is None or isinstance(result, tuple)
