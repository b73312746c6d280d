"""An alert event is one log record (logger ``logpipe.consumer.alerts``, storms logged sparsely) and one metric."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from consumer.alerts import telemetry
from tests.logpipe.event_capture import records_of


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    with records_of("logpipe.consumer.alerts") as caught:
        yield caught


def test_failures_are_all_counted_but_logged_once_per_second(records: list[logging.LogRecord]) -> None:
    labels = {"channel": "test-telemetry-robot"}
    before = REGISTRY.get_sample_value("logpipe_alerts_channel_failures_total", labels) or 0.0
    for attempt in range(3):
        telemetry.NotificationFailed("test-telemetry-robot", "timeout", attempt).emit()
    assert REGISTRY.get_sample_value("logpipe_alerts_channel_failures_total", labels) == before + 3
    assert [(r.levelno, r.getMessage()) for r in records] == [(logging.WARNING, "NotificationFailed")]
    assert records[0].fields == {"channel": "test-telemetry-robot", "error": "timeout", "attempt": 0}  # type: ignore[attr-defined]
