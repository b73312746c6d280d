from __future__ import annotations

import orjson
import pytest

from logpipe.core.fields import FieldMappingConfig
from parsers import ExtraLimits, LineParser, TimeWindow, Unparseable
from tests.parsers.stories import field, headers, parse_doc, parsed

NGINX_LINE = orjson.dumps(
    {
        "time_iso8601": "2026-11-27T10:00:00+08:00",
        "time_local": "27/Nov/2026:10:00:00 +0800",
        "remote_addr": "203.0.113.7",
        "request_method": "POST",
        "request_uri": "/api/orders?id=42&debug=1",
        "uri": "/api/orders",
        "args": "id=42&debug=1",
        "status": "502",
        "body_bytes_sent": "157",
        "request_time": "0.250",
        "upstream_response_time": "0.249",
        "http_user_agent": "Mozilla/5.0",
        "http_traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "server_name": "shop.example",
        "upstream_addr": "10.1.2.3:8080",
    }
)

FRAMEWORK_LINE = orjson.dumps(
    {
        "ts": 1795780800123,
        "method": "GET",
        "path": "/cart/items?page=2",
        "status": 200,
        "bytes": 512,
        "latency": 12.5,
        "client_ip": "2001:db8::1",
        "ua": "okhttp/4.12",
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "level": "INFO",
        "user_id": 17,
        "tenant": {"id": "t-1", "plan": "gold"},
    }
)


def test_nginx_json_line_maps_every_field() -> None:
    parser = LineParser(FieldMappingConfig(dialect="nginx"))
    doc = parsed(parser.parse(NGINX_LINE, headers("access", offset=4096)))
    expected = {
        "@timestamp": "2026-11-27T10:00:00+08:00",
        "http.request.method": "POST",
        "url.path": "/api/orders",
        "url.query": "id=42&debug=1",
        "url.domain": "shop.example",
        "http.response.status_code": 502,
        "http.response.body.bytes": 157,
        "event.duration": 250_000_000,
        "client.ip": "203.0.113.7",
        "user_agent.original": "Mozilla/5.0",
        "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "service.name": "cart",
        "kubernetes.namespace": "shop",
        "kubernetes.pod.name": "cart-7d9f-abcde",
        "kubernetes.pod.uid": "0f6a-uid",
        "kubernetes.node.name": "node-1",
        "kubernetes.container.name": "cart",
        "log.file.path": "/var/log/pods/shop_cart/access.log",
        "log.offset": 4096,
        "logpipe.file_id": "fingerprint::c0ffee",
        "logpipe.type": "access",
        "event.created": "2026-11-27T12:00:00Z",
        "message": NGINX_LINE.decode(),
        "extra.upstream_addr": "10.1.2.3:8080",
        "logpipe.flags": None,
    }
    assert {k: field(doc, k) for k in expected} == expected
    # Keys of a field that lost to a higher-ranked key are kept, not lost.
    assert field(doc, "extra.time_local") == "27/Nov/2026:10:00:00 +0800"
    assert field(doc, "extra.request_uri") == "/api/orders?id=42&debug=1"


def test_framework_line_durations_are_milliseconds() -> None:
    parser = LineParser(FieldMappingConfig(dialect="framework"))
    doc = parsed(parser.parse(FRAMEWORK_LINE, headers("access")))
    assert field(doc, "@timestamp") == "2026-11-27T12:00:00.123Z"
    assert field(doc, "event.duration") == 12_500_000
    assert field(doc, "url.path") == "/cart/items"
    assert field(doc, "url.query") == "page=2"
    assert field(doc, "client.ip") == "2001:db8::1"
    assert field(doc, "trace.id") == "0af7651916cd43dd8448eb211c80319c"
    assert field(doc, "span.id") == "b7ad6b7169203331"
    assert field(doc, "log.level") == "info"
    assert field(doc, "user_agent.original") == "okhttp/4.12"
    assert doc["extra"] == {"user_id": "17", "tenant": {"id": "t-1", "plan": "gold"}}


def test_configured_duration_unit_and_extra_keys() -> None:
    mapping = FieldMappingConfig(dialect="auto", keys={"path": ["req_path"]}, duration_unit="us")
    doc = parse_doc(b'{"req_path": "/x", "latency": 1500}', parser=LineParser(mapping))
    assert field(doc, "url.path") == "/x"
    assert field(doc, "event.duration") == 1_500_000


def test_nginx_request_line_is_split_when_no_method_or_path_logged() -> None:
    doc = parse_doc(b'{"request": "DELETE /items/9?force=true HTTP/2.0", "status": 204}')
    assert (field(doc, "http.request.method"), field(doc, "url.path"), field(doc, "url.query")) == (
        "DELETE",
        "/items/9",
        "force=true",
    )
    assert field(doc, "http.version") == "2.0"


def test_missing_time_falls_back_to_read_time_and_is_flagged() -> None:
    doc = parse_doc(b'{"status": 200}')
    assert doc["@timestamp"] == "2026-11-27T12:00:00Z"
    assert doc["logpipe"]["flags"] == ["timestamp_fallback"]


@pytest.mark.parametrize(
    ("line", "flag", "kept"),
    [
        (b'{"status": "abc"}', "invalid_status", {"status": "abc"}),
        (b'{"status": 12345}', "invalid_status", {"status": "12345"}),
        (b'{"status": true}', "invalid_status", {"status": "true"}),
        (b'{"bytes": -5}', "invalid_bytes", {"bytes": "-5"}),
        (b'{"client_ip": "not-an-ip"}', "invalid_client_ip", {"client_ip": "not-an-ip"}),
        (b'{"latency": "fast"}', "invalid_request_time", {"latency": "fast"}),
        (b'{"method": {"x": 1}}', "invalid_method", {"method": {"x": "1"}}),
        (b'{"time": "yesterday"}', "invalid_time", {"time": "yesterday"}),
        (b'{"level": ["a"]}', "invalid_level", {"level": ["a"]}),
    ],
)
def test_wrong_types_are_kept_in_extra_and_flagged(line: bytes, flag: str, kept: dict[str, object]) -> None:
    doc = parse_doc(line)
    assert flag in doc["logpipe"]["flags"]
    assert doc["extra"] == kept


def test_absent_markers_are_dropped_and_empty_text_is_kept() -> None:
    doc = parse_doc(b'{"status": 200, "rt": "-", "ua": "", "trace_id": null, "bytes": "", "ip": ""}')
    assert "extra" not in doc and "trace" not in doc and "client" not in doc and "duration" not in doc["event"]
    assert field(doc, "http.response.status_code") == 200
    assert field(doc, "user_agent.original") == ""
    assert "body" not in doc["http"]["response"]
    assert doc["logpipe"]["flags"] == ["missing_request_time", "timestamp_fallback"]  # "-" for a number


NGINX = LineParser(FieldMappingConfig(dialect="nginx"))


@pytest.mark.parametrize(("value", "ns"), [
    ("0.004, 0.002", 6_000_000),  # retried upstreams: the sum
    ("0.010 : 0.003", 13_000_000),  # an internal redirect
    ("0.010, 0.002 : 0.003", 15_000_000),
    ("-, 0.004", 4_000_000),  # the first upstream never answered
])
def test_upstream_time_lists_map_their_sum_and_keep_the_list(value: str, ns: int) -> None:
    line = orjson.dumps({"status": "200", "upstream_response_time": value, "upstream_status": "502, 200"})
    doc = parse_doc(line, parser=NGINX)
    assert field(doc, "event.duration") == ns
    assert doc["extra"] == {"upstream_status": "502, 200"}
    assert orjson.loads(doc["message"])["upstream_response_time"] == value  # the list, as written


def test_nginx_numbers_and_times_as_nginx_writes_them() -> None:
    line = orjson.dumps({"msec": "1795780799.123", "status": "-", "body_bytes_sent": "0", "request_time": "0.250",
                         "upstream_response_time": "-", "upstream_connect_time": "-"})
    doc = parse_doc(line, parser=NGINX)
    assert doc["@timestamp"] == "2026-11-27T11:59:59.123Z"
    assert field(doc, "event.duration") == 250_000_000  # $request_time: seconds, ms precision
    assert field(doc, "http.response.body.bytes") == 0
    assert "status_code" not in doc["http"]["response"]
    assert "missing_status" in doc["logpipe"]["flags"]
    assert doc["extra"] == {"upstream_response_time": "-", "upstream_connect_time": "-"}
    local = parse_doc(orjson.dumps({"time_local": "27/Nov/2026:19:06:20 +0800", "status": 200}), parser=NGINX)
    assert local["@timestamp"] == "2026-11-27T19:06:20+08:00"


def test_an_empty_uri_is_an_empty_path_not_null() -> None:
    """nginx answers a request it cannot parse with 400 and an empty ``$uri``."""
    doc = parse_doc(b'{"status": "400", "uri": "", "args": "", "request_method": "", "http_user_agent": "-"}',
                    parser=LineParser(FieldMappingConfig(dialect="nginx")))
    assert field(doc, "url.path") == ""
    assert field(doc, "url.query") == ""
    assert field(doc, "http.request.method") == ""
    assert field(doc, "http.response.status_code") == 400
    assert "user_agent" not in doc  # "-": nginx's "no value"


def test_extra_is_bounded_in_keys_depth_and_length() -> None:
    limits = ExtraLimits(max_keys=5, max_depth=2, max_value_chars=8)
    line = orjson.dumps(
        {
            "a.b": "x" * 20,
            "deep": {"l2": {"l3": {"l4": 1}}},
            "": "empty key",
            **{f"k{i}": i for i in range(10)},
        }
    )
    doc = parsed(LineParser(extra_limits=limits).parse(line, headers("access")))
    extra = doc["extra"]
    assert extra["a_b"] == "x" * 8
    assert extra["deep"] == {"l2": '{"l3":{"'}  # beyond max_depth: JSON text, cut
    assert extra["_"] == "empty ke"

    def count(v: object) -> int:
        return sum(1 + count(x) for x in v.values()) if isinstance(v, dict) else 0

    assert count(extra) <= 5
    assert "extra_truncated" in doc["logpipe"]["flags"]


def test_header_metadata_wins_over_the_lines_own() -> None:
    doc = parse_doc(b'{"service": "other", "namespace": "shop"}')
    assert field(doc, "service.name") == "cart"
    assert doc["extra"] == {"service": "other"}  # differs: kept; equal namespace: dropped


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"status": 200', "invalid JSON at position"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b"", "invalid JSON"),
        (b"  [1]", "expected a JSON object, got list"),
    ],
)
def test_lines_that_are_not_json_objects_are_unparseable(line: bytes, reason: str) -> None:
    result = LineParser().parse(line, headers("access"))
    assert isinstance(result, Unparseable)
    assert reason in result.reason


def test_unparseable_names_truncation_by_the_shipper() -> None:
    result = LineParser().parse(b'{"status": 200, "msg": "aaaa', headers("access", lp_flags="truncated"))
    assert isinstance(result, Unparseable)
    assert "truncated" in result.reason


def test_unknown_or_missing_log_type_is_unparseable() -> None:
    assert isinstance(LineParser().parse(b"{}", headers("metrics")), Unparseable)
    assert isinstance(LineParser().parse(b"{}", {}), Unparseable)


@pytest.mark.parametrize(
    ("raw", "window"),
    [
        ("9999-12-31T00:00:00Z", TimeWindow()),
        ("2026-11-28T12:00:01Z", TimeWindow()),  # more than a day ahead of the read time
        (4102444800, TimeWindow()),
        ("1970-01-01T00:00:00Z", TimeWindow(max_past_s=366 * 86400)),
        (0, TimeWindow(max_past_s=366 * 86400)),
    ],
)
def test_times_far_from_the_read_time_are_distrusted(raw: object, window: TimeWindow) -> None:
    parser = LineParser(time_window=window)
    doc = parse_doc(orjson.dumps({"time": raw, "status": 200}), parser=parser)  # read at 2026-11-27T12:00:00Z
    assert doc["@timestamp"] == "2026-11-27T12:00:00Z"
    assert {"timestamp_out_of_range", "timestamp_fallback"} <= set(doc["logpipe"]["flags"])
    assert doc["extra"] == {"time": str(raw) if not isinstance(raw, str) else raw}


def test_old_times_are_kept_by_default_and_the_future_bound_can_be_lifted() -> None:
    assert parse_doc(b'{"time": "1999-01-01T00:00:00Z"}')["@timestamp"] == "1999-01-01T00:00:00Z"
    parser = LineParser(time_window=TimeWindow(max_future_s=None))
    assert parse_doc(b'{"time": "2030-01-01T00:00:00Z"}', parser=parser)["@timestamp"] == "2030-01-01T00:00:00Z"
