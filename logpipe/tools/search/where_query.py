"""``--where status>=500 and path~"^/api/pay"`` (the language of :mod:`logpipe.core.expr`) -> an ES query.

Field names are the short names of :mod:`logpipe.core.fields` (``status``, ``path``, ``level``...) or any
indexed (ECS) name. The semantics follow :mod:`logpipe.core.expr`: a missing field makes every comparison
false, including ``!=`` and ``!~``; ``~`` is a search (unanchored) regex. Values compare as indexed,
so ``event.duration`` is in nanoseconds, and a duration text such as ``"250ms"`` is converted to them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from logpipe.core import expr as E
from logpipe.core.durations import parse_duration
from logpipe.core.fields import AUTO
from logpipe.tools.search import docfields as F
from logpipe.tools.search.errors import BadQuery, UnknownField

Query = dict[str, object]
_RANGE_OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_TEXT_TYPES = {"text", "match_only_text"}


_ES_TYPE = {"time": "date", "keyword": "keyword", "long": "long", "ip": "ip", "duration": "long", "text": "text"}


def known_types() -> dict[str, str]:
    """The types the consumer's templates give the well-known fields (used before any index exists)."""
    types = {f.ecs: _ES_TYPE[f.kind] for f in AUTO.fields}
    types.update({
        F.INGESTED: "date", F.NODE: "keyword", F.CONTAINER: "keyword", F.PARENT_ID: "keyword",
        F.SPAN_NAME: "keyword", F.FILE_PATH: "keyword", F.OFFSET: "long", F.FILE_ID: "keyword", F.TYPE: "keyword",
    })
    return types


def resolve_field(name: str) -> str:
    """The indexed name of a short (``status``) or raw (``latency``) field name; others as written."""
    spec = AUTO.by_name(name)
    return spec.ecs if spec is not None else name


def es_regexp(pattern: str) -> str:
    """A search-semantics regex as Lucene's whole-value ``regexp``: unanchored ends get ``.*``."""
    body = pattern
    head = body.startswith("^")
    tail = body.endswith("$") and not body.endswith("\\$")
    if head:
        body = body[1:]
    if tail:
        body = body[:-1]
    # Lucene has no anchors inside the pattern; a literal ^ or $ elsewhere must be escaped for it.
    if re.search(r"(?<!\\)[\^$]", body):
        raise BadQuery(f"regex {pattern!r}: ^ and $ are only supported at the start and the end")
    return ("" if head else ".*") + body + ("" if tail else ".*")


@dataclass(frozen=True, slots=True)
class Names:
    """How an expression's names map to indexed fields: the log indices' by default; the trace
    summaries' (``logpipe trace find``) name their own."""

    resolve: Callable[[str], str] = resolve_field
    durations: Mapping[str, int] = field(default_factory=lambda: {F.DURATION: 1_000_000_000})
    """Fields holding durations, with their units per second: a text like ``"250ms"`` is converted."""


LOGS = Names()


def _value(field: str, value: str | int | float, names: Names) -> str | int | float:
    per_second = names.durations.get(field)
    if per_second is not None and isinstance(value, str):
        try:
            return int(parse_duration(value) * per_second)
        except ValueError as exc:
            raise BadQuery(f"{field}: {exc}") from None
    return value


def _compare(c: E.Compare, types: Mapping[str, str], names: Names) -> Query:
    field = names.resolve(c.field)
    if field not in types:
        raise UnknownField(c.field, list(types))
    kind = types[field]
    exists: Query = {"exists": {"field": field}}
    if c.op in ("~", "!~"):
        match: Query = {"regexp": {field: {"value": es_regexp(str(c.value))}}}
        return match if c.op == "~" else {"bool": {"filter": [exists], "must_not": [match]}}
    value = _value(field, c.value, names)
    if c.op in _RANGE_OPS:
        return {"range": {field: {_RANGE_OPS[c.op]: value}}}
    equal: Query = (
        {"match_phrase": {field: str(value)}} if kind in _TEXT_TYPES else {"term": {field: value}}
    )
    return equal if c.op == "=" else {"bool": {"filter": [exists], "must_not": [equal]}}


def where_query(text: str, types: Mapping[str, str], names: Names = LOGS) -> Query:
    """Parse ``text`` and translate it; ``types`` maps every indexed field name to its ES type.

    Raises :class:`BadQuery` (with the column) for a bad expression, :class:`UnknownField` for a
    field no index maps.
    """
    try:
        tree = E.parse(text)
    except E.ExprError as exc:
        raise BadQuery(f"--where: {exc}") from None
    return translate(tree, types, names)


def translate(tree: E.Expr, types: Mapping[str, str], names: Names = LOGS) -> Query:
    """The ES query for a parsed expression."""
    if isinstance(tree, E.Compare):
        return _compare(tree, types, names)
    if isinstance(tree, E.Not):
        return {"bool": {"must_not": [translate(tree.operand, types, names)]}}
    left, right = translate(tree.left, types, names), translate(tree.right, types, names)
    if isinstance(tree, E.And):
        return {"bool": {"filter": [left, right]}}
    return {"bool": {"should": [left, right], "minimum_should_match": 1}}


def fields_of(text: str, names: Names = LOGS) -> set[str]:
    """The indexed names of the fields an expression mentions (empty when it does not parse)."""
    try:
        return {names.resolve(n) for n in E.field_names(E.parse(text))}
    except E.ExprError:
        return set()
