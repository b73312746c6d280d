"""Named events: the one way logpipe's processes report what happened (Vector's ``internal_events``).

An event is a small frozen dataclass deriving :class:`Event` whose ``emit()`` writes exactly one log
record through an :class:`EventLog` (message: the event's name; its fields as JSON keys, see
:mod:`logpipe.core.json_log`) and moves exactly one Prometheus metric with fixed labels, so logs and
metrics cannot drift apart. Each component keeps its own events and metrics in its telemetry module
(``shipper/telemetry.py``, ``consumer/telemetry.py``, ``consumer/alerts/telemetry.py``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """Base of named events: subclasses are frozen slotted dataclasses with an ``emit()``."""

    def fields(self) -> dict[str, Any]:
        """The event's fields, as logged."""
        return asdict(self)


class EventLog:
    """Writes events to one logger: ``log(level, "FileRotated", fields)``; cheap when the level is off."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def __call__(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(level):
            # stacklevel 2: the record names the event's emit(), not this helper
            self.logger.log(level, event, extra={"fields": fields}, stacklevel=2)
