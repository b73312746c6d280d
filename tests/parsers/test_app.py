from __future__ import annotations

from tests.parsers.stories import field, parse_doc


def test_json_app_line_uses_msg_as_message() -> None:
    doc = parse_doc(b'{"level": 50, "msg": "payment failed", "traceId": "t1", "order": 9}', "app")
    assert (doc["message"], field(doc, "log.level"), field(doc, "trace.id")) == ("payment failed", "error", "t1")
    assert doc["extra"] == {"order": "9"}


def test_plain_app_line_with_leading_time_and_level() -> None:
    doc = parse_doc(b"2026-11-27T10:00:00.5+08:00 WARN cache miss ratio high", "app")
    assert doc["@timestamp"] == "2026-11-27T10:00:00.500+08:00"
    assert field(doc, "log.level") == "warn"
    assert doc["message"] == "2026-11-27T10:00:00.5+08:00 WARN cache miss ratio high"


def test_broken_json_app_line_is_kept_as_text() -> None:
    doc = parse_doc(b'{"msg": "cut', "app")
    assert doc["message"] == '{"msg": "cut'
    assert "invalid_json" in doc["logpipe"]["flags"]


def test_invalid_utf8_is_replaced_and_flagged() -> None:
    doc = parse_doc(b"bad \xff byte", "app")
    assert doc["message"] == "bad \ufffd byte"
    assert "invalid_utf8" in doc["logpipe"]["flags"]


def test_ecs_logging_lines_map_their_dotted_keys() -> None:
    line = (
        b'{"@timestamp":"2026-11-27T11:59:59.5Z","log.level":"WARN","message":"slow","ecs.version":"1.6.0",'
        b'"trace.id":"t9","event.duration":1500,"http.response.status_code":504}'
    )
    doc = parse_doc(line, "app")
    assert (doc["@timestamp"], doc["message"], field(doc, "log.level"), field(doc, "trace.id")) == (
        "2026-11-27T11:59:59.500Z",
        "slow",
        "warn",
        "t9",
    )
    assert field(doc, "event.duration") == 1500  # ECS durations are nanoseconds already
    assert field(doc, "http.response.status_code") == 504
    assert doc["extra"] == {"ecs_version": "1.6.0"}
