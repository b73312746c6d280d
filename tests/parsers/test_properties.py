"""Property-based tests: no input makes the parser raise; valid inputs keep their values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from logpipe.core.fields import FieldMappingConfig
from parsers import ExtraLimits, LineParser, Many, Parsed, Partial, Unparseable
from tests.parsers.stories import field, headers

LOG_TYPES = st.sampled_from(["access", "app", "stdout", "trace", "other"])
header_text = st.text(max_size=40)
any_headers = st.dictionaries(
    st.sampled_from(["lp.type", "lp.offset", "lp.file_id", "lp.read_ts", "lp.flags", "lp.component", "lp.pod", "x"])
    | header_text,
    header_text | st.integers().map(str),
    max_size=8,
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
KNOWN_KEYS = [
    "time",
    "ts",
    "status",
    "path",
    "method",
    "latency",
    "request_time",
    "client_ip",
    "trace_id",
    "traceId",
    "level",
    "msg",
    "bytes",
    "request",
    "service",
    "traceId",
    "spanId",
    "kind",
    "startTimeUnixNano",
    "attributes",
    "status",
]
json_objects = st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=10), json_values, max_size=12)


def _check(result: object) -> None:
    assert isinstance(result, Parsed | Unparseable | Partial | Many)
    if isinstance(result, Many):  # a span line: its span documents (and service entries), each checked
        for part in result.parts:
            _check(part)
        return
    if isinstance(result, Parsed):
        orjson.dumps(result.doc)  # what the consumer does with it: must serialise
        assert isinstance(result.doc["@timestamp"], str)
        assert result.doc["logpipe"]["type"] == result.log_type


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.binary(max_size=300), hdrs=any_headers, log_type=LOG_TYPES)
def test_arbitrary_bytes_and_headers_never_raise(value: bytes, hdrs: dict[str, str], log_type: str) -> None:
    parser = LineParser()
    _check(parser.parse(value, hdrs))
    _check(parser.parse(value, {**hdrs, "lp.type": log_type}))
    for doc in parser.expire(0):
        _check(doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=json_objects, log_type=LOG_TYPES, dialect=st.sampled_from(["auto", "nginx", "framework"]))
def test_arbitrary_json_objects_never_raise_and_extra_stays_bounded(
    obj: dict[str, Any], log_type: str, dialect: str
) -> None:
    limits = ExtraLimits(max_keys=16, max_depth=2, max_value_chars=50)
    parser = LineParser(FieldMappingConfig(dialect=dialect), extra_limits=limits)  # type: ignore[arg-type]
    line = orjson.dumps(obj)
    result = parser.parse(line, headers(log_type))
    _check(result)
    if log_type == "stdout":
        _check(parser.parse(b"2026-11-27T10:00:00Z stdout F " + line, headers(log_type)))
    if isinstance(result, Parsed) and "extra" in result.doc:

        def shape(v: Any, depth: int) -> tuple[int, int]:
            if isinstance(v, dict):
                sizes = [shape(x, depth + 1) for x in v.values()]
                return len(v) + sum(s[0] for s in sizes), max([depth, *[s[1] for s in sizes]])
            if isinstance(v, list):
                assert all(isinstance(x, str) for x in v)
                return len(v), depth
            assert isinstance(v, str) and len(v) <= 50
            return 0, depth

        keys, depth = shape(result.doc["extra"], 0)
        assert keys <= 16 and depth <= 2


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets)
path_text = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters="?#"), max_size=30)
hex_ids = st.binary(min_size=16, max_size=16).map(bytes.hex)


def _nginx_local(dt: datetime) -> str:
    months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
    off = dt.utcoffset() or timedelta()
    sign = "-" if off < timedelta() else "+"
    mins = abs(int(off.total_seconds())) // 60
    return (
        f"{dt.day:02d}/{months[dt.month - 1]}/{dt.year:04d}:{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} "
        f"{sign}{mins // 60:02d}{mins % 60:02d}"
    )


@settings(max_examples=300, deadline=None)
@given(
    moment=moments,
    time_format=st.sampled_from(["iso", "epoch_ms", "nginx"]),
    status=st.integers(100, 599),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=path_text.map(lambda p: "/" + p),
    query=st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#"), min_size=1),
    latency_ms=st.integers(0, 10**7),
    trace_id=hex_ids,
    trace_key=st.sampled_from(["trace_id", "traceId"]),
)
def test_valid_access_lines_round_trip(
    moment: datetime,
    time_format: str,
    status: int,
    method: str,
    path: str,
    query: str | None,
    latency_ms: int,
    trace_id: str,
    trace_key: str,
) -> None:
    if time_format == "nginx":
        moment = moment.replace(
            microsecond=0, tzinfo=timezone(timedelta(minutes=(moment.utcoffset() or timedelta()).total_seconds() // 60))
        )
        raw_time: Any = _nginx_local(moment)
    elif time_format == "epoch_ms":
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        raw_time = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    else:
        raw_time = moment.isoformat()
    line = orjson.dumps(
        {
            "time": raw_time,
            "method": method,
            "path": path + ("?" + query if query else ""),
            "status": str(status) if status % 2 else status,
            "latency": latency_ms,
            trace_key: trace_id,
        }
    )
    read_ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1) + 1500  # read 1.5 s later
    hdrs = headers("access", offset=status, lp_read_ts=str(read_ms))
    result = LineParser(FieldMappingConfig(dialect="framework")).parse(line, hdrs)
    assert isinstance(result, Parsed)
    doc = result.doc
    stamp = datetime.fromisoformat(doc["@timestamp"])
    assert stamp == moment
    if time_format != "epoch_ms":  # the offset written by the application is kept
        assert stamp.utcoffset() == moment.utcoffset()
    else:
        assert stamp.utcoffset() == timedelta(0) and stamp.tzinfo is not None
    assert field(doc, "http.request.method") == method
    assert field(doc, "url.path") == path
    assert field(doc, "url.query") == query
    assert field(doc, "http.response.status_code") == status
    assert field(doc, "event.duration") == latency_ms * 1_000_000
    assert field(doc, "trace.id") == trace_id
    assert field(doc, "log.offset") == status
    assert doc["message"] == line.decode()
    assert "logpipe" in doc and "flags" not in doc["logpipe"]


@settings(max_examples=200, deadline=None)
@given(
    content=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n\r"), max_size=200),
    cuts=st.lists(st.integers(0, 200), max_size=6),
    stream=st.sampled_from(["stdout", "stderr"]),
)
def test_cri_reassembly_of_random_splits_equals_the_whole_line(content: str, cuts: list[int], stream: str) -> None:
    data = content.encode()
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    stamp = b"2026-11-27T10:00:00.123456789+08:00 " + stream.encode()
    parser = LineParser()
    offset = 1000
    results = []
    for i, piece in enumerate(pieces):
        tag = b" F " if i == len(pieces) - 1 else b" P "
        results.append(parser.parse(stamp + tag + piece, headers("stdout", offset)))
        offset += len(piece) + 60
    *fragments, last = results
    assert all(isinstance(r, Partial) for r in fragments)
    assert isinstance(last, Parsed) and last.absorbed == len(fragments)
    whole = LineParser().parse(stamp + b" F " + data, headers("stdout", 1000))
    assert isinstance(whole, Parsed)
    assert last.doc == whole.doc
    assert parser.pending_fragments == 0


@settings(max_examples=200, deadline=None)
@given(
    trace_id=hex_ids,
    span_id=st.binary(min_size=8, max_size=8).filter(any).map(bytes.hex),
    start=st.integers(946684800 * 10**9, 4102444800 * 10**9),
    duration=st.integers(0, 10**12),
    shape=st.sampled_from(["otel", "zipkin", "generic"]),
    failed=st.booleans(),
)
def test_valid_spans_round_trip(
    trace_id: str, span_id: str, start: int, duration: int, shape: str, failed: bool
) -> None:
    assume(trace_id.strip("0"))  # an all-zero id is invalid
    if shape == "otel":
        span: dict[str, Any] = {
            "traceId": trace_id,
            "spanId": span_id,
            "name": "op",
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + duration),
            "status": {"code": 2 if failed else 1},
        }
        expected_duration = duration
    else:
        start = start // 1000 * 1000
        duration = duration // 1000 * 1000
        keys = (
            ("traceId", "id", "name", "timestamp")
            if shape == "zipkin"
            else ("trace_id", "span_id", "operation", "start")
        )
        span = dict(zip(keys, (trace_id, span_id, "op", start // 1000), strict=True))
        span["duration"] = duration // 1000
        if failed:
            span["tags" if shape == "zipkin" else "error"] = {"error": "true"} if shape == "zipkin" else True
        expected_duration = duration
    hdrs = headers("trace", lp_read_ts=str((start + expected_duration) // 1_000_000 + 800))
    result = LineParser().parse(orjson.dumps(span), hdrs)
    assert isinstance(result, Many)  # the span, and its service's first service/operation document
    span_part, service_part = result.parts
    assert isinstance(span_part, Parsed) and isinstance(service_part, Parsed)
    assert service_part.doc == {"serviceName": "cart", "operationName": "op"}
    doc = span_part.doc
    assert span_part.doc_id == f"{trace_id}-{span_id}"
    assert span_part.index == f"logpipe-jaeger-span-{doc['@timestamp'][:10]}"
    jaeger_trace_id = trace_id  # 32 digits, as Jaeger v2 stores and looks up ids
    assert (field(doc, "trace.id"), field(doc, "span.id"), field(doc, "span.name")) == (jaeger_trace_id, span_id, "op")
    assert (doc["traceID"], doc["spanID"], doc["operationName"]) == (jaeger_trace_id, span_id, "op")
    assert field(doc, "event.duration") == expected_duration
    assert field(doc, "event.outcome") == ("failure" if failed else "success")
    stamp = datetime.fromisoformat(doc["@timestamp"])
    assert stamp == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start // 1000)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(
        st.tuples(
            st.sampled_from(["fingerprint::a", "fingerprint::b"]),
            st.sampled_from(["stdout", "stderr"]),
            st.booleans(),
            st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), max_size=8),
        ),
        max_size=40,
    ),
    max_bytes=st.integers(4, 64),
)
def test_every_cri_record_is_accounted_for_exactly_once(
    records: list[tuple[str, str, bool, str]], max_bytes: int
) -> None:
    """Interleaved files and streams: each record ends in exactly one document (or is still pending),
    and each document holds its fragments' text in order — what the consumer's commits rely on."""
    parser = LineParser(max_partial_bytes=max_bytes)
    model: dict[tuple[str, str], list[str]] = {}
    offsets = {"fingerprint::a": 0, "fingerprint::b": 0}
    accounted = 0
    for file_id, stream, partial, text in records:
        offsets[file_id] += 100
        line = f"2026-11-27T10:00:00Z {stream} {'P' if partial else 'F'} x{text}".encode()
        result = parser.parse(line, headers("stdout", offsets[file_id], lp_file_id=file_id))
        parts = model.setdefault((file_id, stream), [])
        parts.append("x" + text)
        if isinstance(result, Partial):
            assert partial
            continue
        assert isinstance(result, Parsed)
        assert result.doc["message"] == "".join(parts)
        assert result.absorbed == len(parts) - 1
        assert result.doc["logpipe"]["file_id"] == file_id
        accounted += result.absorbed + 1
        model[(file_id, stream)] = []
    pending = sum(len(p) for p in model.values())
    assert parser.pending_fragments == sum(1 for p in model.values() if p)
    assert accounted + pending == len(records)
    expired = parser.expire(0)
    assert sum(p.absorbed for p in expired) == pending
    assert parser.cri.total == 0
