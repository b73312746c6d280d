"""``--agg`` and ``--by`` specs: ``count``, ``sum(f)``, ``avg(f)``, ``min(f)``, ``max(f)``,
``distinct(f)`` and ``pNN(f)`` for any percentile (``p99``, ``p50``, ``p99.9``).

Percentiles interpolate linearly between the two nearest values (DuckDB ``quantile_cont``).
Each aggregate's output key is its text as written, e.g. ``"p99(request_time)"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from logpipe.tools.query.columns import Column

AggFunc = Literal["count", "sum", "avg", "min", "max", "distinct", "quantile"]
_AGG = re.compile(r"^\s*(?P<func>[A-Za-z]+|p\d+(?:\.\d+)?)\s*(?:\(\s*(?P<field>[^()]*?)\s*\))?\s*$")
_FUNCS = {"count", "sum", "avg", "min", "max", "distinct"}


class SpecError(ValueError):
    """A bad ``--agg``/``--by`` value; the message names it and the accepted forms."""


@dataclass(frozen=True, slots=True)
class Agg:
    """One aggregate: its function, field (None for ``count``), percentile fraction, and output key."""

    func: AggFunc
    field: str | None
    fraction: float
    key: str

    def sql(self, col: Column | None) -> str:
        """The aggregate over ``col`` (already resolved; None for ``count``)."""
        if self.func == "count":
            return "count(*)"
        assert col is not None
        if self.func == "distinct":
            return f"count(DISTINCT {col.sql})"
        if self.func in ("min", "max") and col.type in ("text", "time"):
            return f"{self.func}({col.sql})"
        num = f"TRY_CAST({col.sql} AS DOUBLE)"  # a no-op on columns that are DOUBLE already
        if self.func == "quantile":
            return f"quantile_cont({num}, {self.fraction!r})"
        return f"{self.func}({num})"


def split_list(text: str) -> list[str]:
    """Split on commas that are not inside parentheses (``p99(a),count`` -> two items)."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    return [i for i in items if i]


def parse_aggs(text: str | None) -> list[Agg]:
    """Parse ``--agg``; default ``count``."""
    if text is None or not text.strip():
        return [Agg("count", None, 0.0, "count")]
    return [parse_agg(item) for item in split_list(text)]


def parse_agg(item: str) -> Agg:
    """One aggregate spec."""
    forms = "count, sum(f), avg(f), min(f), max(f), distinct(f), pNN(f) such as p99(request_time)"
    m = _AGG.match(item)
    if m is None:
        raise SpecError(f"--agg: cannot read {item!r} — fix: use {forms}")
    func, fld = m.group("func").lower(), m.group("field")
    key = item.strip()
    if func == "count":
        if fld:
            raise SpecError(f"--agg: {item!r}: count takes no field — fix: count (or distinct({fld}))")
        return Agg("count", None, 0.0, key)
    if not fld:
        raise SpecError(f"--agg: {item!r} needs a field, e.g. {func}(request_time) — fix: use {forms}")
    if func.startswith("p") and func[1:2].isdigit():
        pct = float(func[1:])
        if pct > 100:
            raise SpecError(f"--agg: {item!r}: percentile {func[1:]} is over 100 — fix: e.g. p99.9 for 99.9%")
        return Agg("quantile", fld, pct / 100, key)
    if func not in _FUNCS:
        raise SpecError(f"--agg: unknown function {func!r} in {item!r} — fix: use {forms}")
    return Agg(func, fld, 0.0, key)  # type: ignore[arg-type]


def parse_by(text: str | None) -> list[str]:
    """Parse ``--by F1,F2``."""
    if text is None:
        return []
    return [f.strip() for f in text.split(",") if f.strip()]
