"""The dependency stage's named events: one log line and one metric each (as ``consumer/telemetry.py``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from consumer.telemetry import log
from logpipe.core.events import Event, EventLog

_P = "logpipe_consumer_trace_dependency_"

LINKS_PRODUCED = Counter(_P + "links_produced", "Span link records the links topic acknowledged", [])
LINK_ERRORS = Counter(_P + "link_errors", "Failed sends of link records (retried; the spans stay uncommitted)", [])
LINKS_CONSUMED = Counter(_P + "links_consumed", "Span link records read from the links topic", [])
BAD_LINKS = Counter(_P + "bad_links", "Links-topic records that were not link records (skipped)", [])
TRACES_FLUSHED = Counter(_P + "traces_flushed", "Traces whose calls were (re)computed and stored", [])
CALLS = Counter(_P + "calls", "Caller -> callee calls derived (recounted when a trace is rewritten)", [])
TRACES_EVICTED = Counter(_P + "traces_evicted", "Traces flushed early because the join's caps were reached", [])
WRITE_FAILURES = Counter(_P + "write_failures", "Failed trace or dependency writes (retried)", [])
SUMMARIES = Counter(_P + "summaries_written", "Trace summaries written (new, or changed by more spans)", [])
SUMMARIES_FINAL = Counter(
    _P + "summaries_final", "Traces whose summary took no more spans (first written over the horizon ago)", []
)
TRACES_HELD = Gauge(_P + "traces_held", "Traces gathered in memory, waiting for their horizon", [])

_log = EventLog(log)


@dataclass(frozen=True, slots=True)
class LinksProduced(Event):
    """``count`` link records were acknowledged by the links topic (``acks=all``)."""

    count: int

    def emit(self) -> None:
        _log(logging.DEBUG, "LinksProduced", self.fields())
        LINKS_PRODUCED.inc(self.count)


@dataclass(frozen=True, slots=True)
class LinkProduceFailed(Event):
    """Producing link records failed; they are produced again (their span records stay uncommitted)."""

    count: int
    error: str

    def emit(self) -> None:
        _log(logging.WARNING, "LinkProduceFailed", self.fields())
        LINK_ERRORS.inc()


@dataclass(frozen=True, slots=True)
class LinksConsumed(Event):
    partition: int
    count: int

    def emit(self) -> None:
        _log(logging.DEBUG, "LinksConsumed", self.fields())
        LINKS_CONSUMED.inc(self.count)


@dataclass(frozen=True, slots=True)
class BadLinkSkipped(Event):
    """A record of the links topic was not a link record; it is skipped (and committed)."""

    partition: int
    offset: int
    reason: str

    def emit(self) -> None:
        _log(logging.WARNING, "BadLinkSkipped", self.fields())
        BAD_LINKS.inc()


@dataclass(frozen=True, slots=True)
class DependenciesWritten(Event):
    """``traces`` trace documents and ``documents`` Jaeger dependency documents were written."""

    traces: int
    calls: int
    documents: int
    evicted: int
    held: int
    summaries: int = 0
    summaries_final: int = 0

    def emit(self) -> None:
        _log(logging.INFO, "DependenciesWritten", self.fields())
        SUMMARIES.inc(self.summaries)
        SUMMARIES_FINAL.inc(self.summaries_final)
        TRACES_FLUSHED.inc(self.traces)
        CALLS.inc(self.calls)
        TRACES_EVICTED.inc(self.evicted)
        TRACES_HELD.set(self.held)


@dataclass(frozen=True, slots=True)
class DependencyWriteFailed(Event):
    """Writing trace or dependency documents failed; the same flush is written again (idempotent)."""

    traces: int
    error: str

    def emit(self) -> None:
        _log(logging.WARNING, "DependencyWriteFailed", self.fields())
        WRITE_FAILURES.inc()
