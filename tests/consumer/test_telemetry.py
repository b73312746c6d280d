"""A consumer event is one JSON log line (logger ``logpipe.consumer``) and one metric change."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from consumer import telemetry
from logpipe.core.json_log import JsonFormatter
from tests.logpipe.event_capture import as_json, records_of


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    with records_of("logpipe.consumer") as caught:
        yield caught


def test_event_logs_one_json_line_and_moves_its_metric(records: list[logging.LogRecord]) -> None:
    labels = {"stage": "test-telemetry"}
    before = REGISTRY.get_sample_value("logpipe_consumer_dead_lettered_total", labels) or 0.0
    telemetry.RecordDeadLettered("test-telemetry", "logpipe-access", 2, 99, "bad json").emit()
    assert REGISTRY.get_sample_value("logpipe_consumer_dead_lettered_total", labels) == before + 1
    [line] = [as_json(r) for r in records]
    assert telemetry.JsonFormatter is JsonFormatter  # the one format, still importable here
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line.pop("ts")))
    assert line == {
        "level": "warning",
        "logger": "logpipe.consumer",
        "msg": "RecordDeadLettered",
        "stage": "test-telemetry",
        "topic": "logpipe-access",
        "partition": 2,
        "offset": 99,
        "reason": "bad json",
    }


def test_configure_json_logging_sets_up_the_consumer_logger_once() -> None:
    logger = logging.getLogger("logpipe.consumer")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        telemetry.configure_json_logging("debug")
        telemetry.configure_json_logging("error")
        assert len([h for h in logger.handlers if isinstance(h.formatter, telemetry.JsonFormatter)]) == 1
        assert logger.level == logging.ERROR and logger.propagate is False
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
