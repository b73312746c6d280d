"""Render a result: ``table`` (aligned; coloured on a TTY), ``json`` (one object per line), ``csv``.

JSON lines are the default when stdout is not a terminal: each group is one object whose keys are
the group fields and the aggregates exactly as written (``"count"``, ``"p99(request_time)"``),
so ``| jq`` works and types survive (numbers stay numbers).
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TextIO

import orjson

from logpipe.tools.query.columns import ISO_FORMAT
from logpipe.tools.query.engine import Table

Format = Literal["table", "json", "csv"]


def _number_text(text: str) -> Any:
    """A group value of a numeric field: ``"500"`` -> 500, ``"0.5"`` -> 0.5, anything else unchanged."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def value(kind: str, v: Any) -> Any:
    """A result cell as a JSON-ready value."""
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.strftime(ISO_FORMAT)
    if isinstance(v, Decimal):
        v = float(v)
    if kind == "group:number" and isinstance(v, str):
        return _number_text(v)
    if kind == "group:number" and isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    if kind in ("agg:sum", "agg:min", "agg:max") and isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def records(table: Table) -> list[dict[str, Any]]:
    """The rows as dicts keyed by column (group fields then aggregates, as written)."""
    return [{c: value(k, v) for c, k, v in zip(table.columns, table.kinds, row, strict=True)} for row in table.rows]


def write_json(table: Table, out: TextIO) -> None:
    for rec in records(table):
        out.write(orjson.dumps(rec).decode() + "\n")


def write_csv(table: Table, out: TextIO) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(table.columns)
    for rec in records(table):
        w.writerow(["" if v is None else v for v in rec.values()])


def cell_text(v: Any) -> str:
    """How a value reads in the table: integers plain, floats to 6 significant digits."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}" if abs(v) < 1e15 else f"{v:.4e}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    return str(v)


def write_table(table: Table, out: TextIO, *, color: bool) -> None:
    """An aligned table; numbers right-aligned, 5xx/4xx status values coloured when ``color``."""
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = Console(file=out, force_terminal=color, no_color=not color, width=None if color else 10_000)
    t = RichTable(box=None, header_style="bold" if color else "", pad_edge=False, show_edge=False)
    recs = records(table)
    for name, kind in zip(table.columns, table.kinds, strict=True):
        numeric = (kind.startswith("agg:") and not kind.endswith(("min", "max"))) or kind == "group:number"
        t.add_column(name, justify="right" if numeric else "left", style="cyan" if color and numeric else None)
    for rec in recs:
        cells: list[Text | str] = []
        for (name, v), kind in zip(rec.items(), table.kinds, strict=True):
            text = cell_text(v)
            style = _status_style(name, v) if color and kind.startswith("group") else ""
            cells.append(Text(text, style=style) if style else text)
        t.add_row(*cells)
    console.print(t, soft_wrap=not color)


def _status_style(name: str, v: Any) -> str:
    if name not in ("status", "http.response.status_code") or not isinstance(v, int):
        return ""
    return "red" if v >= 500 else "yellow" if v >= 400 else "green" if v < 300 else ""


def write(table: Table, fmt: Format, out: TextIO, *, color: bool) -> None:
    """Write ``table`` to ``out`` in ``fmt``."""
    if fmt == "json":
        write_json(table, out)
    elif fmt == "csv":
        write_csv(table, out)
    else:
        write_table(table, out, color=color)
