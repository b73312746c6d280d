"""``--sql``: the user's SQL over a view ``logs`` with one column per field of the dialect.

Columns: every short name of the dialect (``time`` TIMESTAMPTZ in UTC, ``status``/``bytes`` BIGINT,
``request_time`` DOUBLE seconds, the rest VARCHAR), each top-level key seen in the first lines that
is not already a column (VARCHAR, as written), and ``raw``: the whole line as JSON, for
``json_extract_string(raw, '$.any.path')``. Malformed lines are not in ``logs``; they are counted.

Each column extracts its key on demand, so a query pays only for the columns it uses.
"""

from __future__ import annotations

from typing import Any

from logpipe.core.expr import sql_string
from logpipe.tools.query.columns import RawType, quote_ident
from logpipe.tools.query.engine import Engine, Malformed, Table
from logpipe.tools.query.source import file_list, json_path


class _LineSource:
    """Each raw key read with its own ``json_extract_string`` (pruned when a query does not use it)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def raw(self, key: str, type: RawType) -> str:
        if key not in self.keys:
            self.keys.append(key)
        ref = f"json_extract_string(json, {sql_string(json_path(key))})"
        return ref if type == "VARCHAR" else f"TRY_CAST({ref} AS {type})"

    def relation(self) -> str:
        return "json"


def logs_view_sql(engine: Engine) -> str:
    """``CREATE VIEW logs AS ...`` over the engine's inputs."""
    source = _LineSource()
    res = engine.resolver(source)
    cols: list[str] = []
    taken: set[str] = set()
    for spec in engine.dialect.fields:
        col = res.resolve(spec.name)
        expr = f"TRY_CAST({col.sql} AS BIGINT)" if spec.kind == "long" else col.sql
        cols.append(f"{expr} AS {quote_ident(spec.name)}")
        taken.add(spec.name.lower())
    for key in sorted(engine.sample()):
        if key.lower() not in taken and key:
            cols.append(f"{source.raw(key, 'VARCHAR')} AS {quote_ident(key)}")
            taken.add(key.lower())
    cols.append("json AS raw")
    return (
        f"CREATE OR REPLACE TEMP VIEW logs AS SELECT {', '.join(cols)}"
        f" FROM read_ndjson_objects({file_list(engine.inputs.paths)}, ignore_errors=true,"
        " compression='auto_detect') WHERE json IS NOT NULL AND left(json, 1) = '{'"
    )


def run_sql(engine: Engine, sql: str) -> tuple[Table, Malformed]:
    """Run the user's ``sql`` over ``logs``; every column of the result is a group-like value."""
    bad = engine.malformed(1)  # first: it may swap inputs for copies decoded with replacement
    engine.con.execute(logs_view_sql(engine)).fetchall()
    cursor = engine.con.execute(sql)
    names = [d[0] for d in cursor.description or []]
    rows: list[tuple[Any, ...]] = cursor.fetchall()
    return Table(names, ["sql"] * len(names), rows), bad
