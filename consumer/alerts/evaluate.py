"""Pure rule evaluation: ``evaluate(rule, state, doc, now)`` per document, ``tick(rule, state, now)`` per second.

No I/O and no clock: the caller passes ``now`` (wall-clock seconds in the consumer, the log's own
timestamps in ``logpipe alerts test``), so the same functions drive the live engine, the replay
command and the unit tests. Both return :class:`Match` values — *what* to notify; rendering and
delivery belong to the engine and the channels.

Lifecycle of a group: the condition holds → ``new`` (firing); it keeps holding → nothing until
``realert`` has passed since the last notification, then ``realert`` on the next match; it has
been clear for ``resolve`` → ``resolved``; while firing, every ``reassert`` seconds → ``reassert``
(sent to Alertmanager only, which forgets alerts that are not re-posted before their ``endsAt``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from consumer.alerts.latency import LatencyWindow
from consumer.alerts.matcher import CompiledRule
from consumer.alerts.rules import AbsentCondition, CountCondition, LatencyCondition, RatioCondition
from consumer.alerts.state import GroupKey, GroupState, RuleState
from consumer.alerts.templates import format_duration, format_latency, trace_id_of

Status = Literal["firing", "resolved"]
Reason = Literal["new", "realert", "reassert", "resolved"]


@dataclass(frozen=True)
class Match:
    """One notification to make: a group of a rule started, repeats, is still, or stopped firing."""

    rule: str
    status: Status
    reason: Reason
    group: GroupKey
    at: float
    """When it was decided (the ``now`` passed in)."""
    started_at: float
    count: int
    """Matching documents: in the window (count, ratio), since the last notification (any)."""
    total: int
    """Documents in scope in the window (ratio); equals ``count`` otherwise."""
    why: str
    samples: tuple[str, ...] = ()
    value: float | None = None
    """A latency condition's measured statistic (p99, avg...), in seconds."""
    doc: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """The last matching document, for templates (None for absence and restored groups)."""
    restored_annotations: Mapping[str, str] | None = field(default=None, compare=False, repr=False)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.group)


def _message(doc: Mapping[str, Any]) -> str:
    m = doc.get("message")
    if isinstance(m, str):
        return m
    span = doc.get("span")
    if isinstance(span, dict):  # a span has no message: its sample line says what and which trace
        return _span_line(doc, span)
    return ""


def _span_line(doc: Mapping[str, Any], span: Mapping[str, Any]) -> str:
    """``GET /pay 1.2s failure 500 trace 0af7...`` for a span document."""
    event = doc.get("event")
    event = event if isinstance(event, dict) else {}
    parts = [str(span.get("name") or "")]
    duration = event.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        parts.append(format_latency(duration / 1e9))
    if event.get("outcome"):
        parts.append(str(event["outcome"]))
    http = doc.get("http")
    status = http.get("response", {}).get("status_code") if isinstance(http, dict) else None
    if status is not None:
        parts.append(str(status))
    trace_id = trace_id_of(doc)
    if trace_id:
        parts.append(f"trace {trace_id}")
    return " ".join(p for p in parts if p)


def _record_hit(rule: CompiledRule, g: GroupState, doc: Mapping[str, Any]) -> None:
    g.hits += 1
    # A reference, not a copy (per document, copying would cost more than evaluating): after observe()
    # the consumer changes only ``event.ingested`` (creating ``event`` if absent), which consumer/bulk.py
    # stamps at each (re-)encode; templates that render it see the latest stamp.
    g.last_doc = doc
    g.add_sample(_message(doc), rule.samples, rule.sample_chars)


def _match(
    rule: CompiledRule, g: GroupState, now: float, reason: Reason, count: int, total: int, why: str,
    value: float | None = None,
) -> Match:
    if reason in ("new", "realert"):
        g.last_notified = (count, total, why)
        g.last_value = value
    elif reason == "reassert":  # Alertmanager keeps the annotations of the notification it re-asserts
        count, total, why = g.last_notified if g.last_notified[2] else (count, total, why)
        value = g.last_value if g.last_notified[2] else value
    return Match(
        rule=rule.name,
        status="resolved" if reason == "resolved" else "firing",
        reason=reason,
        group=g.key,
        at=now,
        started_at=g.started_at,
        count=count,
        total=total,
        why=why,
        samples=tuple(g.samples),
        value=value,
        doc=g.last_doc,
        restored_annotations=g.restored_annotations,
    )


def _notify(
    rule: CompiledRule, g: GroupState, now: float, count: int, total: int, why: str, value: float | None = None
) -> list[Match]:
    """The condition holds now: fire, re-alert, or stay quiet within ``realert``."""
    if not g.firing:
        g.firing = True
        g.started_at = now
        g.last_sent = g.last_asserted = now
        g.suppressed = 0
        return [_match(rule, g, now, "new", count, total, why, value)]
    if now - g.last_sent >= rule.realert:
        g.last_sent = g.last_asserted = now
        g.suppressed = 0
        g.restored = False
        return [_match(rule, g, now, "realert", count, total, why, value)]
    g.suppressed += 1
    if g.restored:  # restored after a restart and still true: ours again; refresh Alertmanager only
        g.restored = False
        g.last_asserted = now
        return [_match(rule, g, now, "reassert", count, total, why, value)]
    return []


def _count_why(c: CountCondition, hits: int) -> str:
    return f"{hits} matching lines within {format_duration(c.within)} (threshold {c.count})"


def _ratio_why(c: RatioCondition, hits: int, total: int) -> str:
    return (
        f"{hits}/{total} = {hits / total:.1%} of lines matched within {format_duration(c.within)} "
        f"(threshold {c.ratio:.1%}, minimum {c.min_count} lines)"
    )


def _latency_why(c: LatencyCondition, value: float | None, n: int) -> str:
    if value is None:
        return "no durations in the window"
    return (
        f"{c.statistic} {format_latency(value)} over {n} within {format_duration(c.within)} "
        f"(threshold {format_latency(c.threshold)}, minimum {c.min_count})"
    )


def _latency_holds(c: LatencyCondition, w: LatencyWindow, now: float) -> tuple[bool, int, float | None]:
    n = w.count(now)
    if n < c.min_count:
        return False, n, w.stat(now) if n else None
    value = w.stat(now)
    return value is not None and value >= c.threshold, n, value


_CHECK_EVERY = 0.1
"""A latency group computes its statistic on a document at most this often (seconds of ``now``);
the tick checks every group every second anyway."""


def _evaluate_latency(
    rule: CompiledRule, c: LatencyCondition, state: RuleState, doc: Mapping[str, Any], now: float
) -> list[Match]:
    raw = rule.duration(doc)
    if not isinstance(raw, int | float) or isinstance(raw, bool) or raw < 0:
        return []  # no duration: nothing to measure
    seconds = raw * rule.seconds_per_unit
    g = state.group(rule.group_key(doc), None, now)
    w = g.latency
    if w is None:
        w = g.latency = LatencyWindow(c.within, c.quantile)
    n = w.add(now, seconds)
    if seconds >= rule.threshold or g.last_doc is None:  # the exemplar (its trace id) is a slow one
        _record_hit(rule, g, doc)
    # A duration under the threshold cannot lift a quantile or the mean over it (only expiry can,
    # which the tick sees): the statistic is computed when one that may arrives or min_count is reached.
    lifts = seconds >= rule.may_lift_from
    if g.firing or n < c.min_count:
        return []
    if n > c.min_count and not lifts:
        return []
    if n > c.min_count and now - g.checked_at < _CHECK_EVERY:
        g.unchecked = True
        return []
    g.checked_at = now
    g.unchecked = False
    holds, n, value = _latency_holds(c, w, now)
    if holds:
        g.last_true = now
        return _notify(rule, g, now, n, n, _latency_why(c, value, n), value)
    return []


def evaluate(rule: CompiledRule, state: RuleState, doc: Mapping[str, Any], now: float) -> list[Match]:
    """Account ``doc`` (seen at ``now``) in ``rule``'s state; the notifications it triggers."""
    if not rule.in_scope(doc):
        return []
    cond = rule.condition
    hit = rule.matches_content(doc)
    if isinstance(cond, LatencyCondition):
        return _evaluate_latency(rule, cond, state, doc, now) if hit else []
    if isinstance(cond, RatioCondition):
        g = state.group(rule.group_key(doc), cond.within, now)
        assert g.window is not None
        g.window.add(now, hit)
        if hit:
            _record_hit(rule, g, doc)
        hits, total = g.window.counts(now)
        if total >= cond.min_count and hits / total >= cond.ratio:
            g.last_true = now
            return _notify(rule, g, now, hits, total, _ratio_why(cond, hits, total))
        return []
    if not hit:
        return []
    key = rule.group_key(doc)
    if isinstance(cond, AbsentCondition):
        g = state.group(key, None, now)
        g.last_seen = max(g.last_seen, now)
        _record_hit(rule, g, doc)
        return []  # silence is detected, and cleared, by tick()
    if isinstance(cond, CountCondition):
        g = state.group(key, cond.within, now)
        assert g.window is not None
        g.window.add(now, True)
        _record_hit(rule, g, doc)
        hits, _ = g.window.counts(now)
        if hits >= cond.count:
            g.last_true = now
            return _notify(rule, g, now, hits, hits, _count_why(cond, hits))
        return []
    g = state.group(key, None, now)
    _record_hit(rule, g, doc)
    g.last_true = now
    n = g.suppressed + 1
    return _notify(rule, g, now, n, n, "a line matched")


def _holds(rule: CompiledRule, g: GroupState, now: float) -> tuple[bool, int, int, str, float | None]:
    """Whether the condition holds at ``now`` without a new document, with its counts, reason and
    (latency) measured value."""
    cond = rule.condition
    if isinstance(cond, LatencyCondition):
        w = g.latency
        if w is None:
            return False, 0, 0, "", None
        n = w.count(now)  # expires what left the window
        if not g.firing and not w.expired and not g.unchecked:
            return False, n, n, "", None  # not holding at the last computation, and nothing could lift it since
        w.expired = g.unchecked = False
        ok, n, value = _latency_holds(cond, w, now)
        return ok, n, n, _latency_why(cond, value, n), value
    if isinstance(cond, AbsentCondition):
        silent = now - g.last_seen
        why = f"no matching line for {format_duration(silent)} (threshold {format_duration(cond.absent)})"
        return silent >= cond.absent, 0, 0, why, None
    if isinstance(cond, CountCondition) and g.window is not None:
        hits, _ = g.window.counts(now)
        return hits >= cond.count, hits, hits, _count_why(cond, hits), None
    if isinstance(cond, RatioCondition) and g.window is not None:
        hits, total = g.window.counts(now)
        ok = total >= cond.min_count and hits / total >= cond.ratio
        return ok, hits, total, (_ratio_why(cond, hits, total) if total else "no lines in the window"), None
    return False, 0, 0, "", None


def _quiet(g: GroupState, now: float) -> bool:
    """Nothing in the group's window any more (a group without a window is quiet once it stops firing)."""
    if g.latency is not None:
        return g.latency.empty(now)
    return g.window is None or g.window.empty(now)


def tick(
    rule: CompiledRule, state: RuleState, now: float, owns: Callable[[GroupKey], bool] | None = None
) -> list[Match]:
    """Time-driven transitions at ``now``: absence fires, cleared conditions resolve, firing alerts re-assert.

    ``owns(group)`` tells whether this process currently receives the group's documents (with N
    consumer replicas a Component's partition belongs to one of them): a group it does not own is
    never fired or resolved here — a firing one is forgotten quietly (its new owner restores it
    from Alertmanager), and an absence clock restarts.
    Also forgets quiet groups (nothing firing, empty window), so state shrinks when errors stop.
    """
    out: list[Match] = []
    absent = isinstance(rule.condition, AbsentCondition)
    latency = isinstance(rule.condition, LatencyCondition)
    for key in rule.seed_keys():
        if state.get(key) is None:
            state.group(key, None, now)  # the Component's clock starts now
    for g in state:
        if owns is not None and not owns(g.key):
            if g.firing:  # its Component moved to another replica, which restores it from Alertmanager
                state.drop(g.key)
                continue
            if absent:
                g.last_seen = now
                continue
        holds, count, total, why, value = _holds(rule, g, now)
        if g.restored and not holds and g.last_true is not None and now - g.last_true >= 0:
            state.drop(g.key)  # not confirmed within the grace: Alertmanager expires it at endsAt
            continue
        if holds:
            g.last_true = now
            if absent or latency:  # absence, and a window whose fast durations expired, hold without a document
                out += _notify(rule, g, now, count, total, why, value)
        elif g.firing and g.last_true is not None and now - g.last_true >= rule.resolve:
            clear = format_duration(now - g.last_true)
            out.append(_match(rule, g, now, "resolved", count, total, f"condition clear for {clear}", value))
            g.firing = False
            g.hits = g.suppressed = 0
            g.samples.clear()
            g.restored_annotations = None
            continue
        if g.firing and not g.restored and now - g.last_asserted >= rule.reassert:
            g.last_asserted = now
            out.append(_match(rule, g, now, "reassert", count, total, why or "still firing", value))
        elif not g.firing and not absent and _quiet(g, now):
            state.drop(g.key)
    return out
