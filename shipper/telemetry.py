"""The shipper's telemetry as named events: each one structured JSON log line and one counter.

Every event is a small frozen dataclass with ``emit()`` (base and log writer: ``logpipe/core/events.py``);
``emit`` writes exactly one log record (logger ``logpipe.shipper``, JSON via
:func:`configure_json_logging` from ``logpipe/core/json_log.py``) and moves exactly one Prometheus metric
with fixed labels, so logs and metrics cannot drift apart (Vector's ``internal_events``). Labels
never hold unbounded values except ``path`` on the per-file lag gauge, which is removed when the
file is released.

Usage: ``SymlinkRefused(root=..., relpath=..., reason=...).emit()``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from logpipe.core.events import Event, EventLog
from logpipe.core.json_log import JsonFormatter as JsonFormatter  # re-exported: ``logpipe ship`` imports them here
from logpipe.core.json_log import configure_json_logging as configure_json_logging

log = logging.getLogger("logpipe.shipper")

_P = "logpipe_shipper_"

LINES_READ = Counter(_P + "lines_read", "Lines read from files", ["type"])
BYTES_READ = Counter(_P + "bytes_read", "Bytes read from files (lines and their newlines)", ["type"])
LINES_ACKED = Counter(_P + "lines_acked", "Lines acknowledged by the sink", ["type"])
BYTES_ACKED = Counter(_P + "bytes_acked", "Bytes of lines acknowledged by the sink", ["type"])
DEAD_LETTERS = Counter(_P + "dead_letters", "Lines dead-lettered, by reason", ["type", "reason"])
SEND_ERRORS = Counter(_P + "send_errors", "Batches the sink failed to deliver (transient)", ["sink"])
SEND_RETRIES = Counter(_P + "send_retries", "Batches sent again after an error", ["sink"])
BATCHES_ACKED = Counter(_P + "batches_acked", "Batches the sink acknowledged", ["sink"])
SYMLINK_REFUSALS = Counter(_P + "symlink_refusals", "Paths refused: symlink or root escape", ["reason"])
FILES_DISCOVERED = Counter(_P + "files_discovered", "Files found by discovery", ["type"])
FILES_RELEASED = Counter(_P + "files_released", "File streams finished and forgotten", ["reason"])
ROTATIONS = Counter(_P + "rotations", "Rotations and truncations detected", ["kind"])
CHECKPOINTS_DISCARDED = Counter(_P + "checkpoints_discarded", "Registry entries not trusted", ["reason"])
REGISTRY_WRITES = Counter(_P + "registry_writes", "Registry files written", ["result"])
OPEN_FILES = Gauge(_P + "open_files", "File descriptors held open by tailers")
STREAMS = Gauge(_P + "streams", "File streams tracked")
FILE_LAG = Gauge(_P + "file_lag_bytes", "Bytes on disk not yet read, per file", ["path"])
REGISTRY_WRITE_FAILING = Gauge(_P + "registry_write_failing",
                               "1 while the last registry write failed (checkpoints not saved), else 0")
READS_STALLED = Counter(_P + "reads_stalled", "File reads that took longer than tail.read_timeout")
BYTES_IN_FLIGHT = Gauge(_P + "bytes_in_flight", "Bytes read but not yet acknowledged")


_log = EventLog(log)


# --- discovery and files -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SymlinkRefused(Event):
    """A path under a root is a symlink or leads out of the root: nothing is read from it."""

    root: str
    relpath: str
    reason: str = "symlink"  # symlink | escape | not_regular

    def emit(self) -> None:
        _log(logging.WARNING, "SymlinkRefused", self.fields())
        SYMLINK_REFUSALS.labels(reason=self.reason).inc()


@dataclass(frozen=True, slots=True)
class FileDiscovered(Event):
    """Discovery found a file to ship."""

    path: str
    log_type: str

    def emit(self) -> None:
        _log(logging.INFO, "FileDiscovered", self.fields())
        FILES_DISCOVERED.labels(type=self.log_type).inc()


@dataclass(frozen=True, slots=True)
class FileReleased(Event):
    """A file stream was read to its end and forgotten (deleted, rotated away, or its pod gone)."""

    path: str
    file_id: str
    offset: int
    reason: str  # deleted | rotated | gone | truncated | shutdown

    def emit(self) -> None:
        _log(logging.INFO, "FileReleased", self.fields())
        FILES_RELEASED.labels(reason=self.reason).inc()
        forget_file_lag(self.path)


_lag_paths: set[str] = set()


def set_file_lag(path: str, lag: int) -> None:
    """Bytes on disk behind the read position of ``path`` (a gauge, not an event)."""
    FILE_LAG.labels(path=path).set(lag)
    _lag_paths.add(path)


def forget_file_lag(path: str) -> None:
    """Drop the lag series of a released file (keeps the gauge's cardinality bounded)."""
    if path in _lag_paths:
        _lag_paths.discard(path)
        FILE_LAG.remove(path)


@dataclass(frozen=True, slots=True)
class FileRotated(Event):
    """A stream's file was renamed, truncated (copytruncate) or found again as a copy."""

    path: str
    file_id: str
    kind: str  # rename | truncate | copy | reuse
    offset: int

    def emit(self) -> None:
        _log(logging.INFO, "FileRotated", self.fields())
        ROTATIONS.labels(kind=self.kind).inc()


@dataclass(frozen=True, slots=True)
class CheckpointDiscarded(Event):
    """A registry entry was not trusted (its offset lies past the file's end, or its content changed)."""

    path: str
    file_id: str
    offset: int
    reason: str  # past_end | fingerprint | expired

    def emit(self) -> None:
        _log(logging.WARNING, "CheckpointDiscarded", self.fields())
        CHECKPOINTS_DISCARDED.labels(reason=self.reason).inc()


@dataclass(frozen=True, slots=True)
class FileOpenFailed(Event):
    """A file could not be opened or read (it is retried at the next rescan)."""

    path: str
    error: str

    def emit(self) -> None:
        _log(logging.WARNING, "FileOpenFailed", self.fields())
        FILES_RELEASED.labels(reason="error").inc()


# --- the read -> deliver -> checkpoint path ------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinesRead(Event):
    """Lines read from one file in one read (debug-level log: this is the hot path)."""

    path: str
    log_type: str
    lines: int
    nbytes: int

    def emit(self) -> None:
        _log(logging.DEBUG, "LinesRead", self.fields())
        LINES_READ.labels(type=self.log_type).inc(self.lines)
        BYTES_READ.labels(type=self.log_type).inc(self.nbytes)


@dataclass(frozen=True, slots=True)
class LinesAcked(Event):
    """Lines of one log type the sink acknowledged."""

    log_type: str
    lines: int
    nbytes: int

    def emit(self) -> None:
        _log(logging.DEBUG, "LinesAcked", self.fields())
        LINES_ACKED.labels(type=self.log_type).inc(self.lines)
        BYTES_ACKED.labels(type=self.log_type).inc(self.nbytes)


@dataclass(frozen=True, slots=True)
class BatchAcked(Event):
    """The sink delivered a batch."""

    sink: str
    lines: int
    attempts: int

    def emit(self) -> None:
        _log(logging.DEBUG, "BatchAcked", self.fields())
        BATCHES_ACKED.labels(sink=self.sink).inc()


@dataclass(frozen=True, slots=True)
class BatchSendFailed(Event):
    """The sink failed to deliver a batch for now; it is sent again after ``retry_in`` seconds."""

    sink: str
    lines: int
    attempt: int
    retry_in: float
    error: str

    def emit(self) -> None:
        _log(logging.WARNING, "BatchSendFailed", self.fields())
        SEND_ERRORS.labels(sink=self.sink).inc()
        SEND_RETRIES.labels(sink=self.sink).inc()


@dataclass(frozen=True, slots=True)
class LineDeadLettered(Event):
    """A line could not be shipped as is (too long, rejected by the destination)."""

    path: str
    log_type: str
    offset: int
    reason: str  # line_too_long | rejected

    def emit(self) -> None:
        _log(logging.WARNING, "LineDeadLettered", self.fields())
        DEAD_LETTERS.labels(type=self.log_type, reason=self.reason).inc()


@dataclass(frozen=True, slots=True)
class RegistryWritten(Event):
    """The checkpoint file was written (or failed to be)."""

    path: str
    entries: int
    error: str = ""

    def emit(self) -> None:
        _log(logging.ERROR if self.error else logging.DEBUG, "RegistryWritten", self.fields())
        REGISTRY_WRITES.labels(result="error" if self.error else "ok").inc()
        REGISTRY_WRITE_FAILING.set(1 if self.error else 0)


@dataclass(frozen=True, slots=True)
class ReadStalled(Event):
    """A file's read did not return within ``timeout`` seconds: that file waits, the others go on."""

    path: str
    timeout: float

    def emit(self) -> None:
        _log(logging.WARNING, "ReadStalled", self.fields())
        READS_STALLED.inc()


@dataclass(frozen=True, slots=True)
class ShipperStarted(Event):
    """The agent is up: its HTTP port and registry."""

    node: str
    http_port: int
    registry: str
    streams: int

    def emit(self) -> None:
        _log(logging.INFO, "ShipperStarted", self.fields())
        STREAMS.set(self.streams)


@dataclass(frozen=True, slots=True)
class ShipperStopped(Event):
    """The agent stopped; ``unacked_bytes`` were still in flight when the grace period ended."""

    reason: str
    unacked_bytes: int

    def emit(self) -> None:
        _log(logging.INFO if self.unacked_bytes == 0 else logging.WARNING, "ShipperStopped", self.fields())
        BYTES_IN_FLIGHT.set(self.unacked_bytes)
