"""A rule compiled for the hot path: its scope and content predicates, group key and thresholds.

:class:`CompiledRule` is built once from a validated :class:`~consumer.alerts.rules.Rule` (every
regex and ``where`` expression compiled once) and is immutable; evaluation only reads it.

Two predicates, because the ratio condition needs both:

* ``in_scope(doc)``: ``components``, ``namespaces`` and ``types`` (the ratio's denominator);
* ``matches(doc)``: keywords, regexes, ``where`` and negation on top of the scope (the numerator).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from consumer.alerts.fieldpath import Accessor, accessor, ecs_name, label_name, path_getter, text_of
from consumer.alerts.latency import RELATIVE_ACCURACY
from consumer.alerts.rules import (
    AbsentCondition,
    AnyCondition,
    CountCondition,
    EngineSettings,
    LatencyCondition,
    MatchSpec,
    NotSpec,
    RatioCondition,
    Rule,
)
from logpipe.core.expr import compile_predicate, parse

Predicate = Callable[[Mapping[str, Any]], bool]
GroupKey = tuple[tuple[str, str], ...]
"""``((label, value), ...)`` in ``group_by`` order; a missing field's value is ``""``."""

_MESSAGE = accessor("message")
_SERVICE = accessor("service.name")
_NAMESPACE = accessor("kubernetes.namespace")
_TYPE = accessor("logpipe.type")


def _always(doc: Mapping[str, Any]) -> bool:
    return True


def _always_none(doc: Mapping[str, Any]) -> Any:
    return None


def _all_of(preds: list[Predicate]) -> Predicate:
    if not preds:
        return _always
    if len(preds) == 1:
        return preds[0]
    return lambda doc: all(p(doc) for p in preds)


def _member(get: Accessor, values: list[str]) -> Predicate:
    allowed = frozenset(values)
    return lambda doc: text_of(get(doc)) in allowed


def _message_text(doc: Mapping[str, Any]) -> str:
    v = _MESSAGE(doc)
    return v if isinstance(v, str) else text_of(v)


def _keywords_any(words: list[str], ignore_case: bool) -> Predicate:
    # one alternation regex: a single C-level scan of the line instead of one `in` per keyword
    flags = re.IGNORECASE if ignore_case else 0
    search = re.compile("|".join(re.escape(w) for w in words), flags).search
    return lambda doc: search(_message_text(doc)) is not None


def _keywords_all(words: list[str], ignore_case: bool) -> Predicate:
    if ignore_case:
        lowered = [w.casefold() for w in words]
        return lambda doc: all(w in _message_text(doc).casefold() for w in lowered)
    return lambda doc: all(w in _message_text(doc) for w in words)


def _regexes_any(patterns: list[str], ignore_case: bool) -> Predicate:
    flags = re.IGNORECASE if ignore_case else 0
    searches = [re.compile(p, flags).search for p in patterns]
    return lambda doc: any(s(_message_text(doc)) is not None for s in searches)


def _where(text: str) -> Predicate:
    return compile_predicate(parse(text), accessor)


def _content(spec: MatchSpec | NotSpec, ignore_case: bool) -> list[Predicate]:
    preds: list[Predicate] = []
    if spec.keywords:
        preds.append(_keywords_any(spec.keywords, ignore_case))
    if isinstance(spec, MatchSpec) and spec.keywords_all:
        preds.append(_keywords_all(spec.keywords_all, ignore_case))
    if spec.regexes:
        preds.append(_regexes_any(spec.regexes, ignore_case))
    if spec.where is not None:
        preds.append(_where(spec.where))
    return preds


def _negation(spec: MatchSpec) -> Predicate | None:
    """A predicate true for documents the rule must exclude (any negated part matching)."""
    parts: list[Predicate] = []
    if spec.exclude_keywords:
        parts.append(_keywords_any(spec.exclude_keywords, spec.ignore_case))
    if spec.not_ is not None:
        n = spec.not_
        if n.keywords:
            parts.append(_keywords_any(n.keywords, spec.ignore_case))
        if n.regexes:
            parts.append(_regexes_any(n.regexes, spec.ignore_case))
        if n.where is not None:
            parts.append(_where(n.where))
    if not parts:
        return None
    return lambda doc: any(p(doc) for p in parts)


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready for :func:`consumer.alerts.evaluate.evaluate`: predicates and settings, immutable."""

    rule: Rule
    in_scope: Predicate
    matches_content: Predicate
    group_fields: tuple[tuple[str, Accessor], ...]
    """``(label, accessor)`` per ``group_by`` field."""
    realert: float
    resolve: float
    reassert: float
    max_groups: int
    samples: int
    sample_chars: int
    duration: Accessor = _always_none
    """Reads a latency condition's ``field`` (raw, in the condition's ``unit``)."""
    threshold: float = 0.0
    """A latency condition's threshold in seconds (read once: the model's properties cost per document)."""
    may_lift_from: float = 0.0
    """Durations from which one may lift the statistic over the threshold: the threshold itself for
    the mean; for a quantile, threshold / (1 + the sketch's error), since a duration just under it can
    share the threshold's bin."""
    seconds_per_unit: float = 1e-9

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def condition(self) -> AnyCondition | CountCondition | RatioCondition | AbsentCondition | LatencyCondition:
        return self.rule.condition

    def group_key(self, doc: Mapping[str, Any]) -> GroupKey:
        """The document's values of the ``group_by`` fields, as label pairs."""
        return tuple((label, text_of(get(doc))) for label, get in self.group_fields)

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """In scope and matching the content conditions (keywords, regexes, where, negation)."""
        return self.in_scope(doc) and self.matches_content(doc)

    def seed_keys(self) -> list[GroupKey]:
        """Groups an absence rule watches from the start: its listed Components, when grouped by Component."""
        if not isinstance(self.rule.condition, AbsentCondition) or len(self.group_fields) != 1:
            return []
        if ecs_name(self.rule.effective_group_by()[0]) != "service.name":
            return []
        label = self.group_fields[0][0]
        return [((label, c),) for c in self.rule.match.components]


def compile_rule(rule: Rule, settings: EngineSettings | None = None) -> CompiledRule:
    """Compile a validated rule (its regexes and ``where`` are known to compile)."""
    s = settings or EngineSettings()
    m = rule.match
    scope: list[Predicate] = []
    if m.components:
        scope.append(_member(_SERVICE, m.components))
    if m.namespaces:
        scope.append(_member(_NAMESPACE, m.namespaces))
    if m.types:
        scope.append(_member(_TYPE, m.types))
    content = _content(m, m.ignore_case)
    negation = _negation(m)
    positive = _all_of(content)
    content_pred: Predicate = positive
    if negation is not None:
        neg = negation
        content_pred = lambda doc: positive(doc) and not neg(doc)  # noqa: E731
    duration: Accessor = _always_none
    threshold = lift = 0.0
    per_unit = 1e-9
    if isinstance(rule.condition, LatencyCondition):
        # the stored value (not the short-name accessor, which turns durations into seconds): `unit` says
        duration = path_getter(ecs_name(rule.condition.field))
        threshold, per_unit = rule.condition.threshold, rule.condition.seconds_per_unit
        lift = threshold if rule.condition.quantile is None else threshold / (1 + RELATIVE_ACCURACY)
    return CompiledRule(
        rule=rule,
        in_scope=_all_of(scope),
        matches_content=content_pred,
        group_fields=tuple((label_name(f), accessor(f)) for f in rule.effective_group_by()),
        realert=rule.realert,
        resolve=rule.effective_resolve(),
        reassert=s.reassert,
        max_groups=s.max_groups,
        samples=s.samples,
        sample_chars=s.sample_chars,
        duration=duration,
        threshold=threshold,
        may_lift_from=lift,
        seconds_per_unit=per_unit,
    )
