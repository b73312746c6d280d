"""The named-event base: fields as logged, one record per call, nothing built when the level is off."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from logpipe.core.events import Event, EventLog
from logpipe.core.json_log import JsonFormatter
from tests.logpipe.event_capture import records_of


@dataclass(frozen=True, slots=True)
class Sample(Event):
    name: str
    count: int


def test_one_record_named_after_the_event_with_its_fields() -> None:
    with records_of("logpipe.test_events", logging.INFO) as records:
        log = EventLog(logging.getLogger("logpipe.test_events"))

        def emit(event: Sample, level: int) -> None:
            log(level, "Sample", event.fields())

        emit(Sample("a", 2), logging.INFO)
        emit(Sample("b", 3), logging.DEBUG)  # below the logger's level: no record
    [record] = records
    assert record.funcName == "emit"  # the event's emit(), not the helper
    doc = orjson.loads(JsonFormatter().format(record))
    assert {k: v for k, v in doc.items() if k != "ts"} == {
        "level": "info",
        "logger": "logpipe.test_events",
        "msg": "Sample",
        "name": "a",
        "count": 2,
    }
