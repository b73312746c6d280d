"""A shipper event is one JSON log line (logger ``logpipe.shipper``) and one metric change."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator

import orjson
import pytest
from prometheus_client import REGISTRY

from logpipe.core.json_log import JsonFormatter
from shipper import telemetry
from tests.logpipe.event_capture import as_json, records_of


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    with records_of("logpipe.shipper") as caught:
        yield caught


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_event_logs_one_json_line_and_moves_its_metric(records: list[logging.LogRecord]) -> None:
    before = value("logpipe_shipper_dead_letters_total", type="tt", reason="rejected")
    telemetry.LineDeadLettered("/p/a.log", "tt", 42, "rejected").emit()
    assert value("logpipe_shipper_dead_letters_total", type="tt", reason="rejected") == before + 1
    [line] = [as_json(r) for r in records]
    assert telemetry.JsonFormatter is JsonFormatter  # the one format, still importable here
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line.pop("ts")))
    assert line == {
        "level": "warning",
        "logger": "logpipe.shipper",
        "msg": "LineDeadLettered",
        "path": "/p/a.log",
        "log_type": "tt",
        "offset": 42,
        "reason": "rejected",
    }


def test_debug_events_are_not_logged_at_info(records: list[logging.LogRecord]) -> None:
    logging.getLogger("logpipe.shipper").setLevel(logging.INFO)
    before = value("logpipe_shipper_lines_read_total", type="tt")
    telemetry.LinesRead("/p/a.log", "tt", 5, 100).emit()
    assert records == []
    assert value("logpipe_shipper_lines_read_total", type="tt") == before + 5


def test_exceptions_are_logged_in_exc() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("logpipe.shipper").makeRecord(
            "logpipe.shipper", logging.ERROR, __file__, 1, "Failed", (), sys.exc_info()
        )
    doc = orjson.loads(telemetry.JsonFormatter().format(record))
    assert doc["msg"] == "Failed" and "ValueError: boom" in doc["exc"]


def test_configure_json_logging_is_idempotent() -> None:
    root = logging.getLogger("logpipe")
    saved = (list(root.handlers), root.level, root.propagate)
    try:
        telemetry.configure_json_logging("debug")
        telemetry.configure_json_logging("warning")
        json_handlers = [h for h in root.handlers if isinstance(h.formatter, telemetry.JsonFormatter)]
        assert len(json_handlers) == 1
        assert root.level == logging.WARNING and root.propagate is False
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate = saved[2]
