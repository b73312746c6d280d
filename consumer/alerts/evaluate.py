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

from consumer.alerts.matcher import CompiledRule
from consumer.alerts.rules import AbsentCondition, CountCondition, RatioCondition
from consumer.alerts.state import GroupKey, GroupState, RuleState
from consumer.alerts.templates import format_duration

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
    doc: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """The last matching document, for templates (None for absence and restored groups)."""
    restored_annotations: Mapping[str, str] | None = field(default=None, compare=False, repr=False)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.group)


def _message(doc: Mapping[str, Any]) -> str:
    m = doc.get("message")
    return m if isinstance(m, str) else ""


def _record_hit(rule: CompiledRule, g: GroupState, doc: Mapping[str, Any]) -> None:
    g.hits += 1
    # A reference, not a copy (per document, copying would cost more than evaluating): after observe()
    # the consumer changes only ``event.ingested`` (creating ``event`` if absent), which consumer/bulk.py
    # stamps at each (re-)encode; templates that render it see the latest stamp.
    g.last_doc = doc
    g.add_sample(_message(doc), rule.samples, rule.sample_chars)


def _match(rule: CompiledRule, g: GroupState, now: float, reason: Reason, count: int, total: int, why: str) -> Match:
    if reason in ("new", "realert"):
        g.last_notified = (count, total, why)
    elif reason == "reassert":  # Alertmanager keeps the annotations of the notification it re-asserts
        count, total, why = g.last_notified if g.last_notified[2] else (count, total, why)
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
        doc=g.last_doc,
        restored_annotations=g.restored_annotations,
    )


def _notify(rule: CompiledRule, g: GroupState, now: float, count: int, total: int, why: str) -> list[Match]:
    """The condition holds now: fire, re-alert, or stay quiet within ``realert``."""
    if not g.firing:
        g.firing = True
        g.started_at = now
        g.last_sent = g.last_asserted = now
        g.suppressed = 0
        return [_match(rule, g, now, "new", count, total, why)]
    if now - g.last_sent >= rule.realert:
        g.last_sent = g.last_asserted = now
        g.suppressed = 0
        g.restored = False
        return [_match(rule, g, now, "realert", count, total, why)]
    g.suppressed += 1
    if g.restored:  # restored after a restart and still true: ours again; refresh Alertmanager only
        g.restored = False
        g.last_asserted = now
        return [_match(rule, g, now, "reassert", count, total, why)]
    return []


def _count_why(c: CountCondition, hits: int) -> str:
    return f"{hits} matching lines within {format_duration(c.within)} (threshold {c.count})"


def _ratio_why(c: RatioCondition, hits: int, total: int) -> str:
    return (
        f"{hits}/{total} = {hits / total:.1%} of lines matched within {format_duration(c.within)} "
        f"(threshold {c.ratio:.1%}, minimum {c.min_count} lines)"
    )


def evaluate(rule: CompiledRule, state: RuleState, doc: Mapping[str, Any], now: float) -> list[Match]:
    """Account ``doc`` (seen at ``now``) in ``rule``'s state; the notifications it triggers."""
    if not rule.in_scope(doc):
        return []
    cond = rule.condition
    hit = rule.matches_content(doc)
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


def _holds(rule: CompiledRule, g: GroupState, now: float) -> tuple[bool, int, int, str]:
    """Whether the condition holds at ``now`` without a new document, with its counts and reason."""
    cond = rule.condition
    if isinstance(cond, AbsentCondition):
        silent = now - g.last_seen
        why = f"no matching line for {format_duration(silent)} (threshold {format_duration(cond.absent)})"
        return silent >= cond.absent, 0, 0, why
    if isinstance(cond, CountCondition) and g.window is not None:
        hits, _ = g.window.counts(now)
        return hits >= cond.count, hits, hits, _count_why(cond, hits)
    if isinstance(cond, RatioCondition) and g.window is not None:
        hits, total = g.window.counts(now)
        ok = total >= cond.min_count and hits / total >= cond.ratio
        return ok, hits, total, (_ratio_why(cond, hits, total) if total else "no lines in the window")
    return False, 0, 0, ""


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
        holds, count, total, why = _holds(rule, g, now)
        if g.restored and not holds and g.last_true is not None and now - g.last_true >= 0:
            state.drop(g.key)  # not confirmed within the grace: Alertmanager expires it at endsAt
            continue
        if holds:
            g.last_true = now
            if absent:
                out += _notify(rule, g, now, count, total, why)
        elif g.firing and g.last_true is not None and now - g.last_true >= rule.resolve:
            clear = format_duration(now - g.last_true)
            out.append(_match(rule, g, now, "resolved", count, total, f"condition clear for {clear}"))
            g.firing = False
            g.hits = g.suppressed = 0
            g.samples.clear()
            g.restored_annotations = None
            continue
        if g.firing and not g.restored and now - g.last_asserted >= rule.reassert:
            g.last_asserted = now
            out.append(_match(rule, g, now, "reassert", count, total, why or "still firing"))
        elif not g.firing and not absent and (g.window is None or g.window.empty(now)):
            state.drop(g.key)
    return out
