"""The JSON log format of logpipe's own processes: one object per line on stderr.

Each line holds ``ts`` (UTC, milliseconds), ``level``, ``logger``, ``msg`` (for a named event: its
name, see :mod:`logpipe.core.events`) and the event's fields; an exception goes in ``exc``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from logpipe.core.secrets import redact_urls


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg (the event name) and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        # A channel's URL may carry its key (WeCom `key=`) inside an exception's text: never printed.
        return redact_urls(orjson.dumps(doc, default=str).decode())


def configure_json_logging(level: str = "info", logger: str = "logpipe") -> None:
    """Send ``logger`` (and the loggers below it) to stderr as JSON lines, at ``level`` (idempotent)."""
    root = logging.getLogger(logger)
    root.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.propagate = False
