"""Replay a log file through the rules with the log's own clock (``logpipe alerts test``).

Each line is an ECS document (as indexed, e.g. exported from Elasticsearch) or a raw line of the
given log type (JSON access line by default) parsed by the consumer's own parser; a span line
(``--type trace``: OTLP/JSON, Zipkin, Jaeger) yields one document per span. Time comes from
each document's ``@timestamp``; between documents the tick runs once per second of log time, so
absence and resolve fire when they would have live. Nothing is sent anywhere.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

import orjson

from consumer.alerts.evaluate import Match, evaluate, tick
from consumer.alerts.matcher import CompiledRule
from consumer.alerts.state import RuleState
from logpipe.core.envelope import H_COMPONENT, H_NAMESPACE, H_TYPE
from parsers.line_parser import LineParser
from parsers.result import Many, Parsed, Unparseable

MAX_TICKS_PER_GAP = 3600
"""A long gap between two lines is ticked in at most this many steps."""


@dataclass(frozen=True)
class ReplayedLine:
    """One input line: its document, or why it could not become one."""

    line_no: int
    doc: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class ReplayEvent:
    """A notification the rules would have made, at log time ``match.at``, after line ``line_no``."""

    line_no: int
    match: Match


def open_logs(path: str) -> IO[bytes]:
    """The file at ``path`` (``.gz`` decompressed), or stdin for ``-``."""
    if path == "-":
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return Path(path).open("rb")


def _is_ecs(obj: dict[str, Any]) -> bool:
    return "@timestamp" in obj and any(isinstance(obj.get(k), dict) for k in ("service", "logpipe", "http", "url"))


def read_docs(
    lines: Iterable[bytes], log_type: str = "access", component: str = "", namespace: str = ""
) -> Iterator[ReplayedLine]:
    """Documents from ``lines``: ECS documents as they are, raw lines through the consumer's parser."""
    parser = LineParser()
    headers = {H_TYPE: log_type, H_COMPONENT: component, H_NAMESPACE: namespace}
    for n, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        if line.startswith(b"{"):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and _is_ecs(obj):
                yield ReplayedLine(n, obj)
                continue
        result = parser.parse(line, headers)
        for part in result.parts if isinstance(result, Many) else (result,):  # a span line holds many spans
            if isinstance(part, Parsed):
                if part.log_type != "trace-service":  # Jaeger's service list, not an event
                    yield ReplayedLine(n, part.doc)
            elif isinstance(part, Unparseable):
                yield ReplayedLine(n, None, str(part.reason))


def event_time(doc: dict[str, Any]) -> float | None:
    """Epoch seconds of the document's ``@timestamp``."""
    ts = doc.get("@timestamp")
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Replayer:
    """Drives :func:`evaluate` and :func:`tick` over documents with their own timestamps."""

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        self.states = {r.name: RuleState(r.max_groups) for r in rules}
        self.now: float | None = None
        self.last_tick: float | None = None
        self.documents = 0
        self.untimed = 0

    def _ticks_until(self, t: float, line_no: int) -> Iterator[ReplayEvent]:
        if self.last_tick is None:
            self.last_tick = t
            return
        gap = t - self.last_tick
        if gap < 1.0:
            return
        step = max(1.0, gap / MAX_TICKS_PER_GAP)
        at = self.last_tick + step
        while at <= t:
            for rule in self.rules:
                for m in tick(rule, self.states[rule.name], at):
                    yield ReplayEvent(line_no, m)
            self.last_tick = at
            at += step

    def feed(self, line_no: int, doc: dict[str, Any]) -> Iterator[ReplayEvent]:
        """Account one document; the notifications due up to and at its time."""
        t = event_time(doc)
        if t is None:
            self.untimed += 1
            if self.now is None:
                return
            t = self.now
        t = t if self.now is None else max(t, self.now)  # out-of-order lines count at the latest time
        self.now = t
        self.documents += 1
        yield from self._ticks_until(t, line_no)
        for rule in self.rules:
            for m in evaluate(rule, self.states[rule.name], doc, t):
                yield ReplayEvent(line_no, m)

    def finish(self, line_no: int) -> Iterator[ReplayEvent]:
        """A last tick at the last document's time: what its arrival resolved (the file's end is not
        a silence, so no later time is simulated)."""
        if self.now is None:
            return
        for rule in self.rules:
            for m in tick(rule, self.states[rule.name], self.now):
                yield ReplayEvent(line_no, m)


def replay(rules: list[CompiledRule], lines: Iterable[ReplayedLine]) -> Iterator[ReplayEvent | ReplayedLine]:
    """Notifications in log-time order, interleaved with the lines that could not be parsed."""
    r = Replayer(rules)
    last = 0
    for line in lines:
        last = line.line_no
        if line.doc is None:
            yield line
            continue
        yield from r.feed(line.line_no, line.doc)
    yield from r.finish(last)
