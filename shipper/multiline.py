"""Multi-line events (stack traces) joined in the shipper: one record per event, exact on restart.

A :class:`Joiner` belongs to one stream (``Tailer.joiner``) and post-processes each read
(:meth:`Joiner.join`): the lines of a stack trace become ONE record whose offset is the first line's
(so its ``_id`` is ``document_id(file_id, first offset)``) and whose value is the lines joined with
``\\n``. The event still open at the end of a read (its next start line has not come) is not sent:
the read position goes back to its first line and the next read reads it again, longer. So the
registry, which only moves over acknowledged bytes, never points inside an event, and a shipper
restarted at any moment (kill -9 included) reads every event from its first line and rebuilds the
same record: no lost line, no second partial copy. An event is sent when a line starts the next
one, when ``flush_timeout`` passes without a new line, when it reaches ``max_lines`` or
``max_bytes`` (the rest starts a new event, the first part flagged ``multiline_overflow``), or when
the file is drained (deleted or rotated away). Why the join is in the shipper and not the
consumer: docs/ARCHITECTURE.md.

CRI files (type ``stdout``): records are split into time, stream and ``P``/``F`` tag; ``P`` fragments
are reassembled first, and events are joined per stream on the content. The record sent for a
reassembled or joined line is a CRI record again (``<first time> <stream> F <contents joined by \\n>``)
so the consumer parses it as before. A line of the other stream ends the open event (events never
interleave, which is what keeps every cut between records a safe restart point); fragments
interleaved with the other stream are sent as they are (the consumer reassembles them).

Which lines continue an event: :func:`classify` (built-in patterns for Java, Python, Go and
Node.js) or a rule's own ``start``/``continue`` regexes (:class:`MultilineSpec`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field, model_validator

from logpipe.core.config_base import StrictModel
from logpipe.core.durations import Duration
from logpipe.core.envelope import LineRun

if TYPE_CHECKING:
    from shipper.tailer import Chunk

FLAG_MULTILINE = "multiline"
FLAG_OVERFLOW = "multiline_overflow"

Mode = Literal["auto", "custom", "off"]


class MultilineConfig(StrictModel):
    """How lines of a file are joined into events (stack traces); ``multiline:`` of a rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    mode: Mode = "auto"
    """``auto``: built-in patterns (Java incl. ``Caused by:``/``... N more``, Python tracebacks, Go panics
    and goroutine dumps, Node.js errors, and any indented line); ``custom``: ``start``/``continue``
    below; ``off``: one line, one event."""
    start: str | None = None
    """custom: a regex (Python syntax, matched at the start of the line; for CRI files, of its content)
    of the first line of an event; without ``continue``, every line not matching it continues the event."""
    continue_: str | None = Field(default=None, alias="continue")
    """custom: a regex of lines that continue the open event; without ``start``, every other line starts one."""
    max_lines: int = Field(default=500, ge=2, le=100_000)
    """Lines per event at most; the rest starts a new event (the first part flagged ``multiline_overflow``)."""
    max_bytes: int = Field(default=64 * 1024, ge=256, le=8 * 1024 * 1024)
    """Bytes per event at most (bounded again by half of ``tail.read_chunk_bytes``)."""
    flush_timeout: Duration = 1.0
    """An open event is sent after this long without a new line."""

    @model_validator(mode="after")
    def _check(self) -> MultilineConfig:
        if self.mode == "custom" and not (self.start or self.continue_):
            raise ValueError("mode custom needs a pattern — fix: set start (and/or continue), e.g. start: '^\\d{4}-'")
        if self.mode != "custom" and (self.start or self.continue_):
            raise ValueError("start/continue are used by mode custom only — fix: set mode: custom")
        for name, pat in (("start", self.start), ("continue", self.continue_)):
            if pat is not None:
                try:
                    re.compile(pat)
                except re.error as exc:
                    raise ValueError(f"{name}: invalid regex {pat!r}: {exc} — fix: correct the pattern") from None
        return self

    def build(self) -> MultilineSpec | None:
        if self.mode == "off":
            return None
        start = re.compile(self.start.encode()) if self.start else None
        cont = re.compile(self.continue_.encode()) if self.continue_ else None
        return MultilineSpec(self.mode, start, cont, self.max_lines, self.max_bytes, float(self.flush_timeout))


@dataclass(frozen=True, slots=True)
class MultilineSpec:
    """A compiled :class:`MultilineConfig` (what a :class:`~shipper.target.FileTarget` carries)."""

    mode: Mode
    start: re.Pattern[bytes] | None = None
    cont: re.Pattern[bytes] | None = None
    max_lines: int = 500
    max_bytes: int = 64 * 1024
    flush_timeout: float = 1.0


AUTO = MultilineSpec("auto")

# --- built-in patterns ------------------------------------------------------------------------------
_INDENTED = re.compile(rb"[ \t]+\S")
_BLANK = re.compile(rb"\s*$")
_JAVA_START = re.compile(rb'Exception in thread "')
_JAVA_CONT = re.compile(rb"(?:Caused by: |Suppressed: |\s*\.\.\. \d+ (?:more|common frames omitted))")
# an exception's header line after the log line that reports it (logback, log4j): pkg.FooException: msg
_JAVA_EXC = re.compile(rb"(?:[a-zA-Z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable)(?::|\s*$)")
_PY_START = re.compile(rb"Traceback \(most recent call last\):")
_PY_CHAIN = re.compile(rb"(?:During handling of the above exception, another exception occurred:"
                       rb"|The above exception was the direct cause of the following exception:)")
_GO_START = re.compile(rb"(?:panic: |fatal error: |goroutine \d+ \[)")
_GO_CONT = re.compile(rb"(?:goroutine \d+ \[|created by |\[signal |[\w./*()\[\]{}\-]+\(.*\)\s*$)")
_NODE_HEAD = re.compile(rb"\S+\.[cm]?[jt]s:\d+\s*$")  # the "file.js:3" line of an uncaught throw
_NODE_ERROR = re.compile(rb"(?:[A-Z]\w*)?(?:Error|Exception)(?: \[[\w.]+\])?: ")
_NODE_AT = re.compile(rb"\s+at ")
_NODE_TAIL = re.compile(rb"Node\.js v\d+")
_NODE_HEAD_LINES = 8  # lines between "file.js:3" and the first "at" line (code, caret, blank, error)

# States of an open event (what kind of trace it is in).
PLAIN, JAVA, PY, PY_END, PY_CHAIN, GO, NODE_HEAD, NODE = range(8)


def start_state(line: bytes) -> int:
    """The state of an event that ``line`` starts."""
    if _JAVA_START.match(line):
        return JAVA
    if _PY_START.match(line):
        return PY
    if _GO_START.match(line):
        return GO
    if _NODE_HEAD.match(line):
        return NODE_HEAD
    if _NODE_ERROR.match(line):
        return NODE
    return PLAIN


def classify(line: bytes, state: int, lines_in_state: int) -> int | None:
    """The new state if ``line`` continues an open event in ``state``, None if it starts a new one."""
    if state == NODE_HEAD:
        if _NODE_AT.match(line):
            return NODE
        return NODE_HEAD if lines_in_state < _NODE_HEAD_LINES else None
    if _INDENTED.match(line):
        return state
    if _JAVA_CONT.match(line) or _JAVA_EXC.match(line):
        return JAVA
    blank = _BLANK.match(line) is not None
    if state == PY:
        return PY if blank else PY_END  # the exception line ends the frames
    if state in (PY_END, PY_CHAIN):
        if blank:
            return state
        if _PY_CHAIN.match(line):
            return PY_CHAIN
        if state == PY_CHAIN and _PY_START.match(line):
            return PY
        return None
    if state == GO:
        return GO if blank or _GO_CONT.match(line) else None
    if state == NODE:
        return NODE if blank or _NODE_TAIL.match(line) else None
    return None


def _continues(spec: MultilineSpec, line: bytes, state: int, n: int) -> int | None:
    if spec.mode == "auto":
        return classify(line, state, n)
    if spec.cont is not None and spec.cont.match(line):
        return PLAIN
    if spec.start is not None:
        return None if spec.start.match(line) else (PLAIN if spec.cont is None else None)
    return None


# --- joining ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    """A logical line: one file line, or the CRI fragments of one line (``frags`` > 1)."""

    offset: int
    raw: list[bytes]  # the records as read (one per fragment)
    content: bytes  # what the patterns see (CRI: the reassembled content)
    stream: bytes = b""
    stamp: bytes = b""


@dataclass(slots=True)
class _Event:
    lines: list[_Line]
    state: int
    in_state: int = 1
    nbytes: int = 0
    overflow: bool = False


@dataclass(eq=False)
class Joiner:
    """Joins the lines of one stream into events; see the module doc. ``cri``: the stream is a CRI file."""

    spec: MultilineSpec
    cri: bool = False
    max_bytes: int = 64 * 1024
    held_at: int | None = None  # first offset of the event held back by the last read
    held_end: int = 0  # where that read ended (bytes after it: read again at once)
    held_lines: int = 0  # and how many lines it had (grown -> the timeout starts again)
    held_since: float = 0.0
    _out: list[LineRun] = field(default_factory=list)
    _run: LineRun | None = None  # the last run of _out if it holds lines as read (more may join it)

    def due(self, size: int, now: float, final: bool) -> bool:
        """Whether a read can produce anything: new bytes, the flush timeout passed, or ``final``."""
        return (self.held_at is None or final or size > self.held_end
                or now - self.held_since >= self.spec.flush_timeout)

    def join(self, chunk: Chunk, now: float, final: bool) -> Chunk | None:
        """The chunk with its events joined, ending where the open event starts (None: nothing complete)."""
        from shipper.tailer import Chunk

        if not chunk.runs:
            return chunk
        self._out = out = []
        self._run = None
        meta, topic, ts = chunk.runs[0].meta, chunk.runs[0].topic, chunk.runs[0].read_ts_ms
        event: _Event | None = None
        frags: list[tuple[int, bytes, bytes, bytes, bytes]] = []  # (offset, raw, content, stream, stamp) of P records
        for run in chunk.runs:
            if run.flags:  # partial, truncated, dead-lettered: a boundary, sent as it is
                self._close(event, meta, topic, ts)
                event = None
                frags = self._flush_frags(frags, meta, topic, ts)
                out.append(run)
                self._run = None
                continue
            pos = run.offset
            for value in run.values:
                offset, pos = pos, pos + len(value) + 1
                if not self.cri:
                    event = self._feed(event, _Line(offset, [value], value), meta, topic, ts)
                    continue
                parts = value.split(b" ", 3)
                if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2][:1] not in (b"P", b"F"):
                    self._close(event, meta, topic, ts)
                    event = None  # not CRI: the consumer says why
                    frags = self._flush_frags(frags, meta, topic, ts)
                    self._plain(offset, value, meta, topic, ts)
                    continue
                stamp, stream, content = parts[0], parts[1], parts[3] if len(parts) == 4 else b""
                if frags and frags[0][3] != stream:  # fragments interleaved with the other stream
                    self._close(event, meta, topic, ts)
                    event = None
                    frags = self._flush_frags(frags, meta, topic, ts)
                if parts[2][:1] == b"P":
                    frags.append((offset, value, content, stream, stamp))
                    continue
                if frags:
                    line = _Line(frags[0][0], [f[1] for f in frags] + [value],
                                 b"".join(f[2] for f in frags) + content, stream, frags[0][4])
                    frags = []
                else:
                    line = _Line(offset, [value], content, stream, stamp)
                event = self._feed(event, line, meta, topic, ts)
        open_at = event.lines[0].offset if event is not None else frags[0][0] if frags else None
        if open_at is not None:
            nlines = (len(event.lines) if event is not None else 0) + len(frags)
            if not (final or (open_at == self.held_at and nlines == self.held_lines
                              and now - self.held_since >= self.spec.flush_timeout)):
                if open_at != self.held_at or nlines != self.held_lines:
                    self.held_since = now
                self.held_at, self.held_end, self.held_lines = open_at, chunk.end, nlines
                return self._chunk(Chunk, chunk.start, open_at)
            self._close(event, meta, topic, ts)
            self._flush_frags(frags, meta, topic, ts)
        self.held_at = None
        return self._chunk(Chunk, chunk.start, chunk.end)

    def _chunk(self, cls: type[Chunk], start: int, end: int) -> Chunk | None:
        if end == start:
            return None
        runs = self._out
        self._out, self._run = [], None
        return cls(start, end, runs, sum(r.nbytes for r in runs), sum(len(r.values) for r in runs))

    def _feed(self, event: _Event | None, line: _Line, meta: object, topic: str, ts: int) -> _Event:
        size = len(line.content)
        if event is not None and (not self.cri or line.stream == event.lines[0].stream):
            spec = self.spec
            state = _continues(spec, line.content, event.state, event.in_state)
            if state is not None:
                if len(event.lines) < spec.max_lines and event.nbytes + 1 + size <= self.max_bytes:
                    event.in_state = event.in_state + 1 if state == event.state else 1
                    event.state = state
                    event.lines.append(line)
                    event.nbytes += 1 + size
                    return event
                event.overflow = True
        self._close(event, meta, topic, ts)
        return _Event([line], start_state(line.content) if self.spec.mode == "auto" else PLAIN, 1, size)

    def _close(self, event: _Event | None, meta: object, topic: str, ts: int) -> None:
        """Send ``event`` (if any); the caller then has no open event."""
        if event is None:
            return
        lines = event.lines
        first = lines[0]
        flags: tuple[str, ...] = ()
        if len(lines) > 1:
            flags = (FLAG_MULTILINE, FLAG_OVERFLOW) if event.overflow else (FLAG_MULTILINE,)
        if len(lines) == 1 and len(first.raw) == 1:
            self._plain(first.offset, first.raw[0], meta, topic, ts)
            return
        if self.cri:
            value = first.stamp + b" " + first.stream + b" F " + b"\n".join(ln.content for ln in lines)
        else:
            value = b"\n".join(ln.content for ln in lines)
        self._out.append(LineRun(meta, first.offset, [value], ts, len(value), flags, topic))  # type: ignore[arg-type]
        self._run = None

    def _plain(self, offset: int, value: bytes, meta: object, topic: str, ts: int) -> None:
        """A line sent as read: appended to the plain run before it when it follows it directly."""
        run = self._run
        if run is not None and run.offset + run.nbytes + len(run.values) == offset:
            run.values.append(value)
            run.nbytes += len(value)
            return
        self._run = LineRun(meta, offset, [value], ts, len(value), (), topic)  # type: ignore[arg-type]
        self._out.append(self._run)

    def _flush_frags(self, frags: list[tuple[int, bytes, bytes, bytes, bytes]], meta: object, topic: str,
                     ts: int) -> list[tuple[int, bytes, bytes, bytes, bytes]]:
        for offset, raw, *_ in frags:
            self._plain(offset, raw, meta, topic, ts)
        return []

