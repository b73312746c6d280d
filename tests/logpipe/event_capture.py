"""Test helper: the log records one logger writes, caught whatever handlers and propagation are set."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from logpipe.core.json_log import JsonFormatter


class Collect(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def records_of(name: str, level: int = logging.DEBUG) -> Iterator[list[logging.LogRecord]]:
    """The records logger ``name`` writes while inside, at ``level`` and above."""
    logger = logging.getLogger(name)
    handler, saved = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


def as_json(record: logging.LogRecord) -> dict[str, object]:
    """The record as logpipe's JSON log line."""
    doc: dict[str, object] = orjson.loads(JsonFormatter().format(record))
    return doc
