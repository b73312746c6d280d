"""Plan a query into one DuckDB statement, run it, and account for malformed lines.

The statement groups by a hidden ``_bad`` flag first, so the same pass that answers the query
also counts the *candidate* rows of the fast reader (:mod:`logpipe.tools.query.source`): rows where
every key read is NULL (malformed lines look like that) or where a field read with fewer keys is
NULL. The first pass reads, for each field, only the dialect's keys up to the one the sampled
first lines use (a homogeneous file pays for three columns, not thirteen).

* No candidates (the usual case): that is the answer, and there are no malformed lines.
* Otherwise a validating scan (about a third of a query's time) counts the malformed lines. If
  they are all the candidates, the answer stands. If not, the query runs again reading every key
  of the dialect, and if valid lines without any of the keys remain and the filter keeps such
  lines, once more on the exact reader.

The first malformed line's position comes from a scan of the one file holding it
(:func:`logpipe.tools.query.inputs.first_malformed`).
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from logpipe.core.expr import Expr
from logpipe.core.fields import Dialect, FieldSpec
from logpipe.tools.query.aggregates import Agg, SpecError
from logpipe.tools.query.columns import ISO_FORMAT, FieldResolver
from logpipe.tools.query.encoding import replaced_copy
from logpipe.tools.query.frame import Frame, keeps_missing
from logpipe.tools.query.inputs import Inputs, first_malformed, sample
from logpipe.tools.query.source import ExactSource, FastSource, Source, malformed_sql
from logpipe.tools.timerange import TimeRange

BUCKET_KEY = "time"
"""The output key of the ``--every`` bucket."""


@dataclass(frozen=True)
class QuerySpec:
    """What to compute: a filter, group fields, aggregates, top N, time buckets and range."""

    where: Expr | None = None
    by: tuple[str, ...] = ()
    aggs: tuple[Agg, ...] = (Agg("count", None, 0.0, "count"),)
    top: int | None = None
    every: float | None = None
    range: TimeRange = field(default_factory=TimeRange)


@dataclass(frozen=True)
class Malformed:
    """How many lines were skipped as not one JSON object, and where the first one is; and how many
    lines that were not UTF-8 were read decoded with replacement (``encoding.py``), not skipped."""

    count: int = 0
    first: str | None = None
    replaced: int = 0

    def message(self) -> str | None:
        """The stderr line(s), e.g. ``3 malformed lines skipped, first at access.log:1042``."""
        out: list[str] = []
        if self.replaced:
            noun = "line" if self.replaced == 1 else "lines"
            out.append(f"{self.replaced} {noun} not UTF-8 decoded with replacement (U+FFFD) and counted")
        if self.count:
            noun = "line" if self.count == 1 else "lines"
            where = f", first at {self.first}" if self.first else ""
            out.append(f"{self.count} malformed {noun} skipped{where}")
        return "\n".join(out) or None


@dataclass
class Table:
    """A result: column names (group keys then aggregates, as written), their kinds, and rows."""

    columns: list[str]
    kinds: list[str]  # "group:<text|number|time>" or "agg:<func>"
    rows: list[tuple[Any, ...]]


class Engine:
    """One DuckDB connection over one set of inputs, read with one dialect."""

    def __init__(self, inputs: Inputs, dialect: Dialect, *, progress: bool = False) -> None:
        self.inputs = inputs
        self.dialect = dialect
        self.progress = progress
        self.con = duckdb.connect()
        # Session time zone UTC: naive timestamps mean UTC and output is UTC on every machine.
        self.con.execute("SET TimeZone = 'UTC'").fetchall()
        # Progress is tracked for the bar on stderr but never printed by DuckDB itself.
        self.con.execute(f"SET enable_progress_bar = {'true' if progress else 'false'}").fetchall()
        self.con.execute("SET enable_progress_bar_print = false").fetchall()
        self._sample: list[dict[str, Any]] | None = None
        self._keys: set[str] = set()
        self._bad: Malformed | None = None
        self._checked_encoding = False
        self.generation = 0
        """Bumped when inputs are swapped for copies decoded with replacement: results read before are stale."""

    # ------------------------------------------------------------------------------------- plumbing

    def sample(self) -> set[str]:
        """The top-level keys of the first lines of each input (read once)."""
        self.sample_docs()
        return self._keys

    def sample_docs(self) -> list[dict[str, Any]]:
        """The JSON objects of the first lines of each input (read once)."""
        if self._sample is None:
            self._sample = sample(self.inputs)
            self._keys = {k for doc in self._sample for k in doc}
        return self._sample

    def has_key(self, name: str) -> bool:
        """Whether the first lines of an input have the top-level key ``name``."""
        return name in self.sample()

    def pruned_keys(self, spec: FieldSpec) -> tuple[str, ...]:
        """The dialect's keys of ``spec`` up to the one every sampled line uses, or all of them.

        When each sampled line has a usable value under the same key K, only the keys up to K are
        read (the first present still wins). A line that turns out to lack K is a candidate row,
        so a wrong guess costs a second pass, never a wrong answer.
        """
        docs = self.sample_docs()
        chosen: set[str] = set()
        numeric = spec.kind in ("long", "duration")
        for doc in docs:
            key = next((k for k in spec.keys if _usable(doc.get(k), numeric)), None)
            if key is None:
                return spec.keys
            chosen.add(key)
            if len(chosen) > 1:
                return spec.keys
        if not chosen:
            return spec.keys
        return spec.keys[: spec.keys.index(chosen.pop()) + 1]

    def resolver(self, source: Source, *, prune: bool = False) -> FieldResolver:
        first = self.inputs.names[0] if self.inputs.names else "-"
        res = FieldResolver(self.dialect, source.raw, self.has_key, f"in the first lines of {first}")
        if prune:
            res.keys_of = self.pruned_keys
        return res

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql``; with ``progress`` a bar on stderr follows DuckDB's own progress."""
        if not self.progress:
            return self.con.execute(sql).fetchall()
        return _with_progress_bar(self.con, sql)

    def malformed(self, candidates: int) -> Malformed:
        """The malformed lines of the inputs; ``candidates`` = 0 from a fast pass proves there are none."""
        if self._bad is not None:
            return self._bad
        if candidates == 0:
            self._bad = Malformed()
            return self._bad
        count, file_index, per_file = self.execute(malformed_sql(self.inputs.paths))[0]
        replaced = 0
        if count and not self._checked_encoding:
            self._checked_encoding = True
            replaced = self._replace_invalid_utf8(dict(per_file))
            if replaced:
                count, file_index, per_file = self.execute(malformed_sql(self.inputs.paths))[0]
        first = None
        if count and file_index is not None:
            expected = int(dict(per_file).get(file_index, 0))
            line = first_malformed(self.inputs.paths[file_index], expected=expected)
            if line is not None:
                first = f"{self.inputs.display(file_index)}:{line}"
        self._bad = Malformed(int(count or 0), first, replaced)
        return self._bad

    def _replace_invalid_utf8(self, per_file: dict[int, int]) -> int:
        """Swap each input holding malformed lines for a copy decoded with replacement when that
        recovers lines (``encoding.py``); returns how many. Bumps ``generation`` when it swapped."""
        total = 0
        for index in sorted(per_file):
            copy = replaced_copy(self.inputs.paths[index])
            if copy is not None:
                self.inputs.replace(index, copy[0])
                total += copy[1]
        if total:
            self.generation += 1
            self._sample = None  # the first lines may have been unreadable
        return total

    def _passes(self, spec: QuerySpec, attempt: Callable[[Source, bool], int | None]) -> Malformed:
        """Run ``attempt(source, prune)`` on ever safer readers until its candidate rows are accounted for.

        1. the fast reader with pruned keys; 2. the fast reader with every key of the dialect;
        3. the exact reader. ``attempt`` returns the number of candidate rows, or None when that
        reader does not apply (nothing to prune, or keys the fast reader cannot read).
        """
        generation = self.generation
        for step in ("pruned", "fast", "exact"):
            source: Source = ExactSource(self.inputs.paths) if step == "exact" else FastSource(self.inputs.paths)
            candidates = attempt(source, step == "pruned")
            if candidates is None:
                continue
            bad = self.malformed(candidates)
            if self.generation != generation:
                return self._passes(spec, attempt)  # inputs decoded with replacement: read them again (once)
            if step == "exact" or candidates == bad.count:
                return bad
            if step == "fast" and not keeps_missing(spec.where, spec.range):
                return bad  # the valid candidates hold none of the fields, and the filter drops them
        raise AssertionError("the exact reader always accounts for its candidates")

    # ---------------------------------------------------------------------------------------- query

    def query(self, spec: QuerySpec) -> tuple[Table, Malformed]:
        """Run ``spec``; the table excludes malformed lines, which are counted in the second value."""
        result: list[Table] = []
        rows: list[tuple[Any, ...]] = []

        def attempt(source: Source, prune: bool) -> int | None:
            nonlocal rows
            planned = self.plan(spec, source, prune=prune)
            if planned is None:
                return None
            sql, table = planned
            rows = self.execute(sql)
            result[:] = [table]
            return int(rows[0][-1]) if rows and rows[0][0] else 0

        bad = self._passes(spec, attempt)
        table = result[0]
        table.rows = [tuple(r[1:-1]) for r in rows if not r[0]]
        if spec.top is not None and spec.every is None:
            table.rows = table.rows[: spec.top]
        if not table.rows and not spec.by and spec.every is None:
            table.rows = [tuple(0 if a.func in ("count", "distinct") else None for a in spec.aggs)]
        return table, bad

    def frame(self, spec: QuerySpec, source: Source, *, prune: bool = False) -> Frame:
        """The per-line layer of ``spec`` over ``source`` (check :meth:`_applies` once it is complete)."""
        return Frame(self.resolver(source, prune=prune), source, spec.where, spec.range)

    def _applies(self, f: Frame, prune: bool) -> bool:
        """Whether the frame's reader can run: see :meth:`_passes`."""
        source = f.source
        if not isinstance(source, FastSource):
            return True
        if prune and not f.res.pruned:
            return False
        if not f.res.pruned:
            # Sentinels: a valid line rarely lacks its time, so reading the time keys the data uses
            # keeps the candidate rows down to the malformed lines (unused keys cost nothing).
            for key in self.dialect.spec("time").keys:
                if self.has_key(key):
                    source.raw(key, "VARCHAR")
        source.also_bad = list(f.res.pruned)
        return source.usable()

    def plan(self, spec: QuerySpec, source: Source, *, prune: bool = False) -> tuple[str, Table] | None:
        """The SQL for ``spec`` over ``source`` and the (empty) table it fills; None if the reader does not apply."""
        f = self.frame(spec, source, prune=prune)
        select: list[str] = ["_bad"]
        columns: list[str] = []
        kinds: list[str] = []
        groups: list[str] = []
        if spec.every is not None:
            if BUCKET_KEY in spec.by:
                raise SpecError(f"--by {BUCKET_KEY} with --every: the bucket is already the {BUCKET_KEY} key")
            micros = round(spec.every * 1_000_000)
            select.append(f"strftime(time_bucket(to_microseconds({micros}), {f.ts()}), '{ISO_FORMAT}') AS _bucket")
            groups.append("_bucket")
            columns.append(BUCKET_KEY)
            kinds.append("group:time")
        for i, name in enumerate(spec.by):
            select.append(f"{f.text(name)} AS g{i}")
            groups.append(f"g{i}")
            columns.append(name)
            kinds.append(f"group:{f.column(name).type}")
        for i, agg in enumerate(spec.aggs):
            col = f.column(agg.field) if agg.field is not None else None
            select.append(f"{agg.sql(col)} AS a{i}")
            columns.append(agg.key)
            kinds.append(f"agg:{agg.func}")
        select.append("count(*) AS _n")

        order_groups = [g for g in groups if g != "_bucket"]
        by_agg = ["a0 DESC NULLS LAST", *(f"{g} ASC NULLS LAST" for g in order_groups)]
        tail = ""
        if spec.every is not None:
            if spec.top is not None:
                tail += (
                    f" QUALIFY _bad OR row_number() OVER (PARTITION BY _bad, _bucket ORDER BY"
                    f" {', '.join(by_agg)}) <= {int(spec.top)}"
                )
            tail += " ORDER BY _bad DESC, _bucket ASC NULLS LAST, " + ", ".join(by_agg)
        else:
            tail += " ORDER BY _bad DESC, " + ", ".join(by_agg)
            if spec.top is not None:
                tail += f" LIMIT {int(spec.top) + 1}"
        if not self._applies(f, prune):
            return None
        sql = (
            f"{f.sql()} SELECT {', '.join(select)} FROM _f WHERE {f.condition}"
            f" GROUP BY {', '.join(['_bad', *groups])}{tail}"
        )
        return sql, Table(columns, kinds, [])

    def materialize(self, name: str, spec: QuerySpec, columns: dict[str, str]) -> Malformed:
        """``CREATE TEMP TABLE name`` holding the lines ``spec`` selects, one column per ``alias: sql``.

        The SQL of each column is written over ``_f`` (see :meth:`frame`): use ``{field}`` placeholders,
        e.g. ``{"status": "{status}", "minute": "time_bucket(INTERVAL 1 minute, {time})"}``.
        """

        def attempt(source: Source, prune: bool) -> int | None:
            f = self.frame(spec, source, prune=prune)
            cols = ", ".join(f"{_fill(sql, f)} AS {alias}" for alias, sql in columns.items())
            if not self._applies(f, prune):
                return None
            select = f"{f.sql()} SELECT _bad, {cols} FROM _f WHERE {f.condition}"
            self.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}")
            return int(self.con.execute(f"SELECT count(*) FROM {name} WHERE _bad").fetchall()[0][0])

        bad = self._passes(spec, attempt)
        self.con.execute(f"DELETE FROM {name} WHERE _bad").fetchall()
        return bad


def _usable(value: Any, numeric: bool) -> bool:
    """Whether the reader would see a value (not missing, ``""``, ``"-"``; a number for numeric fields)."""
    if value is None or value in ("", "-") or isinstance(value, bool):
        return False
    if not numeric or isinstance(value, int | float):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _fill(template: str, f: Frame) -> str:
    """Replace ``{field}`` placeholders with the field's alias in the frame."""
    return re.sub(r"\{([^{}]+)\}", lambda m: f.column(m.group(1)).sql, template)


def _with_progress_bar(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["rows"] = con.execute(sql).fetchall()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="duckdb-query", daemon=True)
    columns = (TextColumn("reading"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("query", total=100.0)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.1)
                done = con.query_progress()
                if done >= 0:
                    bar.update(task, completed=done)
        except KeyboardInterrupt:
            con.interrupt()
            worker.join()
            raise
    if "error" in outcome:
        raise outcome["error"]
    rows: list[tuple[Any, ...]] = outcome["rows"]
    return rows
