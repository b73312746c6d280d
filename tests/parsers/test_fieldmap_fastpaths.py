"""The hot path's shortcuts give exactly what the general code gives: cached plans, IPs, ``extra``."""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe.core.fields import FieldMappingConfig
from parsers import ExtraLimits, LineParser, Parsed
from parsers.extra import ExtraBuilder, bounded_extra
from parsers.fieldmap import _valid_ip
from tests.parsers.stories import headers

KEYS = ["time", "ts", "status", "code", "path", "uri", "request", "method", "latency", "request_time",
        "client_ip", "remote_addr", "trace_id", "traceId", "level", "msg", "message", "bytes", "query",
        "service", "namespace", "pod", "url.path", "a.b", "", " "]
scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "-", "GET", "/a?b=1", "GET /x?y=1 HTTP/1.1", "10.0.0.1", "2001:db8::1", "01.2.3.4",
                       "2026-11-27T10:00:00.001+00:00", "2026-11-27T10:00:00.000Z", "pay-gw", "x" * 1100])
    | st.text(max_size=20)
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                           max_size=3), max_leaves=8)
objects = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), values, max_size=14)
WARM = {d: LineParser(FieldMappingConfig(dialect=d)) for d in ("auto", "nginx", "framework")}  # shared: plans cached


def _doc(parser: LineParser, obj: dict[str, Any], log_type: str) -> Any:
    line = orjson.dumps(obj)
    if log_type == "stdout":
        line = b"2026-11-27T10:00:00.123456789Z stdout F " + line
    result = parser.parse(line, headers(log_type, offset=7, **{"lp.component": "pay-gw", "lp.pod": "pay-gw-1"}))
    return orjson.dumps(result.doc) if isinstance(result, Parsed) else repr(result)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=objects, dialect=st.sampled_from(["auto", "nginx", "framework"]),
       log_type=st.sampled_from(["access", "app", "stdout"]))
def test_a_cached_plan_maps_like_a_fresh_parser(obj: dict[str, Any], dialect: str, log_type: str) -> None:
    warm = WARM[dialect]
    first = _doc(warm, obj, log_type)
    assert _doc(warm, obj, log_type) == first  # the plan of this layout now comes from the cache
    assert _doc(LineParser(FieldMappingConfig(dialect=dialect)), obj, log_type) == first  # type: ignore[arg-type]


def test_one_layout_with_other_values_is_judged_per_line() -> None:
    parser = LineParser(FieldMappingConfig(dialect="framework"))
    good = parser.parse(orjson.dumps({"status": 200, "client_ip": "10.0.0.1", "path": "/a"}), headers("access"))
    bad = parser.parse(orjson.dumps({"status": "abc", "client_ip": "nope", "path": "/a"}), headers("access"))
    assert isinstance(good, Parsed) and isinstance(bad, Parsed)
    assert "extra" not in good.doc and "invalid_status" not in good.doc["logpipe"].get("flags", [])
    assert bad.doc["extra"] == {"status": "abc", "client_ip": "nope"}
    assert {"invalid_status", "invalid_client_ip"} <= set(bad.doc["logpipe"]["flags"])


def _reference_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


octet = st.integers(0, 300).map(str) | st.sampled_from(["00", "01", "010", "", "a", "٣", " 1", "0x1"])


@settings(max_examples=500, deadline=None)
@given(text=st.lists(octet, min_size=1, max_size=5).map(".".join) | st.text(max_size=40) | st.ip_addresses().map(str))
def test_the_inet_pton_shortcut_agrees_with_ipaddress(text: str) -> None:
    assert _valid_ip(text) == _reference_ip(text)


@settings(max_examples=300, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=140), values, max_size=20),
       limits=st.builds(ExtraLimits, max_keys=st.integers(1, 10), max_depth=st.integers(1, 3),
                        max_value_chars=st.integers(1, 30), max_key_chars=st.integers(1, 130)))
def test_bounded_extra_equals_the_builder(obj: dict[str, Any], limits: ExtraLimits) -> None:
    builder = ExtraBuilder(limits)
    for key in obj:
        builder.add(key, obj[key])
    assert bounded_extra(obj, tuple(obj), limits) == (builder.obj, builder.truncated)
