"""The per-line layer of a query: derived field columns, the ``--where`` filter and the time range.

A :class:`Frame` hands out aliases (``c0``, ``c1``...) for resolved fields so each one is computed
once per line, however many times the filter, groups and aggregates use it; :meth:`Frame.sql`
renders ``WITH _f AS (...)`` with the hidden ``_bad`` flag of the source first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from logpipe.core.expr import And, Compare, Expr, Not, Or, compile_predicate, to_sql
from logpipe.tools.query.columns import ISO_FORMAT, Column, FieldResolver, number_text_sql
from logpipe.tools.query.source import Source
from logpipe.tools.timerange import TimeRange

_AS_TEXT = "\x00text:"


class Frame:
    """Derived columns over one source, plus the filter that selects lines."""

    def __init__(self, res: FieldResolver, source: Source, where: Expr | None, time_range: TimeRange) -> None:
        self.res = res
        self.source = source
        self.derived: dict[str, str] = {}  # SQL -> alias
        self.where = to_sql(_texts(where, self._numeric), self._text_of) if where is not None else "true"
        self.in_range = time_range.sql(self.ts()) if not time_range.empty else "true"

    def column(self, name: str) -> Column:
        """The resolved field with its ``sql`` replaced by its alias in ``_f``."""
        col = self.res.resolve(name)
        alias = self.derived.setdefault(col.sql, f"c{len(self.derived)}")
        return replace(col, sql=alias)

    def ts(self) -> str:
        """The alias of the line's TIMESTAMPTZ."""
        return self.column("time").sql

    def text(self, name: str) -> str:
        """The field as a group value: times as ISO text in UTC, everything else as is."""
        col = self.column(name)
        return f"strftime({col.sql}, '{ISO_FORMAT}')" if col.type == "time" else col.sql

    def _text_of(self, name: str) -> str:
        as_text = name.startswith(_AS_TEXT)
        col = self.column(name.removeprefix(_AS_TEXT))
        if col.type == "time":
            return f"strftime({col.sql}, '{ISO_FORMAT}')"
        return number_text_sql(col.sql) if as_text else col.sql

    def _numeric(self, name: str) -> bool:
        return self.res.resolve(name).type == "number"

    @property
    def condition(self) -> str:
        """Lines the query keeps, plus the source's candidate rows (``_bad``), counted apart."""
        return f"_bad OR (({self.where}) AND {self.in_range})"

    def sql(self) -> str:
        """``WITH _f AS (SELECT _bad, <derived> FROM <source>)``: call after every :meth:`column`."""
        derived = "".join(f", {sql} AS {alias}" for sql, alias in self.derived.items())
        return f"WITH _f AS (SELECT _bad{derived} FROM ({self.source.relation()}))"


def _texts(expr: Expr, numeric: Callable[[str], bool]) -> Expr:
    """Mark string comparisons and regexes on numeric fields: they compare the number's text (``500``)."""
    if isinstance(expr, Compare):
        if isinstance(expr.value, str) and numeric(expr.field):
            return Compare(_AS_TEXT + expr.field, expr.op, expr.value)
        return expr
    if isinstance(expr, Not):
        return Not(_texts(expr.operand, numeric))
    if isinstance(expr, And):
        return And(_texts(expr.left, numeric), _texts(expr.right, numeric))
    assert isinstance(expr, Or)
    return Or(_texts(expr.left, numeric), _texts(expr.right, numeric))


def keeps_missing(where: Expr | None, time_range: TimeRange) -> bool:
    """Whether a line with none of the fields passes the filter (then it counts in a result)."""
    if not time_range.empty:
        return False
    return where is None or compile_predicate(where, lambda _name: lambda _row: None)({})
