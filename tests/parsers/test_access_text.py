"""Text access lines: nginx ``combined`` and ingress-nginx ``upstreaminfo`` through the same field mapping."""

from __future__ import annotations

import pytest

from logpipe.core.fields import FieldMappingConfig
from parsers import LineParser, Unparseable
from parsers.access_text import split_text
from tests.parsers.stories import field, headers, parse_doc

# As nginx 1.22 wrote them (bytes >= 0x80, '"' and '\' escaped as \xHH by nginx itself).
COMBINED = (b'203.0.113.7 - - [27/Nov/2026:19:59:58 +0800] "GET /caf\\xE9/\\xFF?x=1 HTTP/1.1" 404 153 "-" '
            b'"say \\x22hi\\x22"')
UPSTREAMINFO = (b'10.0.0.7 - alice [27/Nov/2026:11:59:59 +0000] "POST /api/pay HTTP/2.0" 502 157 "https://shop/" '
                b'"okhttp/4.12" 345 0.015 [shop-pay-gw-80] [] 10.1.2.3:8080, 10.1.2.4:8080 0, 157 0.004, 0.010 '
                b"502, 502 7b3f9c2e")
REDIRECTED = (b'10.0.0.7 - - [27/Nov/2026:11:59:59 +0000] "GET /old HTTP/1.1" 200 5 "-" "curl/8" 80 0.020 '
              b"[shop-web-80] [shop-web-canary-80] 10.1.2.3:8080 : 10.1.2.9:8080 0 : 5 0.010 : 0.003 404 : 200 ab12")


@pytest.mark.parametrize("dialect", ["auto", "nginx"])
def test_combined(dialect: str) -> None:
    doc = parse_doc(COMBINED, parser=LineParser(FieldMappingConfig(dialect=dialect)))  # type: ignore[arg-type]
    assert field(doc, "http.response.status_code") == 404
    assert field(doc, "http.request.method") == "GET"
    assert field(doc, "url.path") == "/caf\ufffd/\ufffd" and field(doc, "url.query") == "x=1"
    assert field(doc, "user_agent.original") == 'say "hi"'
    assert field(doc, "client.ip") == "203.0.113.7"
    assert doc["@timestamp"] == "2026-11-27T19:59:58+08:00"
    assert doc["message"] == COMBINED.decode()
    assert "invalid_utf8" in doc["logpipe"]["flags"]


def test_upstreaminfo_keeps_the_lists_and_maps_request_time() -> None:
    doc = parse_doc(UPSTREAMINFO, parser=LineParser(FieldMappingConfig(dialect="nginx")))
    assert field(doc, "http.response.status_code") == 502
    assert field(doc, "event.duration") == 15_000_000  # $request_time, seconds
    assert field(doc, "url.path") == "/api/pay" and field(doc, "http.version") == "2.0"
    extra = doc["extra"]
    assert extra["upstream_response_time"] == "0.004, 0.010" and extra["upstream_status"] == "502, 502"
    assert extra["proxy_upstream_name"] == "shop-pay-gw-80" and extra["req_id"] == "7b3f9c2e"
    assert "flags" not in doc["logpipe"]


def test_upstreaminfo_after_an_internal_redirect() -> None:
    name, values = split_text(REDIRECTED) or ("", {})
    assert name == "upstreaminfo"
    assert values["upstream_addr"] == b"10.1.2.3:8080 : 10.1.2.9:8080"
    assert values["upstream_response_time"] == b"0.010 : 0.003" and values["upstream_status"] == b"404 : 200"


def test_a_line_of_no_known_format_keeps_its_text() -> None:
    doc = parse_doc(b"GET /healthz 200 (custom format) \xe9")
    assert doc["message"] == "GET /healthz 200 (custom format) \ufffd"
    assert doc["logpipe"]["flags"][:2] == ["unknown_format", "invalid_utf8"]
    assert "http" not in doc


def test_the_format_is_detected_per_line() -> None:
    parser = LineParser()
    docs = [parser.parse(line, headers("access")).doc for line in (COMBINED, UPSTREAMINFO, b'{"status": 201}')]  # type: ignore[union-attr]
    assert [field(d, "http.response.status_code") for d in docs] == [404, 502, 201]


def test_a_format_chosen_by_the_shipper_rule_is_the_only_one_tried() -> None:
    def parse(line: bytes, fmt: str) -> object:
        return LineParser(FieldMappingConfig(dialect="nginx")).parse(line, headers("access", lp_format=fmt))

    up = parse(UPSTREAMINFO, "upstreaminfo").doc  # type: ignore[attr-defined]
    assert field(up, "http.response.status_code") == 502 and up["extra"]["req_id"] == "7b3f9c2e"
    # A combined rule reads an upstreaminfo line as no known line (its tail is not combined's), and a
    # JSON line as text: its text kept in message, flagged.
    for line, fmt in ((UPSTREAMINFO, "combined"), (COMBINED, "upstreaminfo"), (b'{"status": 201}', "combined")):
        doc = parse(line, fmt).doc  # type: ignore[attr-defined]
        assert "unknown_format" in doc["logpipe"]["flags"] and "http" not in doc
        assert doc["message"] == line.decode("utf-8", "replace")
    assert field(parse(COMBINED, "combined").doc, "http.response.status_code") == 404  # type: ignore[attr-defined]
    # A json rule: a text line is malformed, dead-lettered with a reason naming the rule's format.
    bad = parse(COMBINED, "json")
    assert isinstance(bad, Unparseable) and "format json" in bad.reason
    assert field(parse(b'{"status": 201}', "json").doc, "http.response.status_code") == 201  # type: ignore[attr-defined]
    # A format this version does not know (a newer shipper): detected per line, and flagged.
    newer = parse(COMBINED, "apache").doc  # type: ignore[attr-defined]
    assert field(newer, "http.response.status_code") == 404
    assert "unknown_access_format" in newer["logpipe"]["flags"]
