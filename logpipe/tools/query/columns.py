"""Field names users type -> SQL expressions over the raw keys of a JSON line.

A name is resolved in this order (the same dialect table the consumer indexes with):

* a **short name** (``status``, ``path``, ``request_time``) or an **ECS name** (``url.path``,
  ``http.response.status_code``): the first raw key of the dialect present on the line. Durations
  are normalised: the short name ``request_time`` is in **seconds**, the ECS name ``event.duration``
  in **nanoseconds** (as indexed), whatever unit each raw key was written in. The time field
  (``time``/``@timestamp``) reads ISO 8601 with or without an offset (no offset = UTC), epoch
  seconds/ms/us/ns and nginx ``time_local``; in ``--where`` it compares as ISO text in UTC
  (``2026-11-27T10:00:00.000000Z``). ``path`` drops the query string, like the consumer.
* a **raw key** of the dialect that is not a short name (``latency``, ``uri``): that key's own
  value, as written.
* any other name: a top-level key, if the first lines of the input have it; otherwise it is an
  :class:`UnknownField` error.

Like the consumer, the values ``""`` and ``"-"`` count as missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from logpipe.core.fields import NS_PER_UNIT, Dialect, FieldSpec, keeps_empty

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""How the time field reads in ``--where`` and in output: UTC, microseconds, ``Z``."""

ValueType = Literal["text", "number", "time"]


class UnknownField(ValueError):
    """A field name that is neither a known field, a raw key of the dialect, nor a key in the data."""

    def __init__(self, name: str, known: list[str], where: str) -> None:
        self.name = name
        super().__init__(
            f"unknown field {name!r}: not a field of the dialect and no line {where} has that key"
            f" — fix: use one of {', '.join(known)}, an ECS name (url.path), or a key of your logs"
        )


def quote_ident(name: str) -> str:
    """A DuckDB identifier for any string."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class Column:
    """A resolved field: ``sql`` is its value over the source's raw columns.

    ``type``: ``number`` (a DOUBLE), ``text`` (VARCHAR) or ``time`` (TIMESTAMPTZ).
    """

    name: str
    sql: str
    type: ValueType
    spec: FieldSpec | None


RawType = Literal["VARCHAR", "DOUBLE"]


@dataclass
class FieldResolver:
    """Resolves names for one query and registers the raw keys the reader must extract.

    ``raw(key, type)`` returns the SQL reading a raw key from the source; keys of numeric fields
    are read as DOUBLE (a value that is not a number reads as missing, as the consumer indexes it),
    all others as VARCHAR. ``has_key`` answers whether the data has an unknown top-level key.
    """

    dialect: Dialect
    raw: Callable[[str, RawType], str]
    has_key: Callable[[str], bool]
    sample_desc: str = "in the first lines of the input"
    keys_of: Callable[[FieldSpec], tuple[str, ...]] = lambda spec: spec.keys
    """The raw keys read for a field: all of the dialect's, or a prefix (see ``Engine.pruned_keys``)."""
    pruned: list[str] = field(default_factory=list)
    """SQL of each field read with fewer keys than the dialect has: NULL there makes a row a candidate."""
    _cache: dict[str, Column] = field(default_factory=dict)

    def _keys(self, spec: FieldSpec) -> tuple[str, ...]:
        keys = self.keys_of(spec)
        return keys if keys else spec.keys

    def _note(self, spec: FieldSpec, sql: str) -> str:
        if self._keys(spec) != spec.keys and sql not in self.pruned:
            self.pruned.append(sql)
        return sql

    def _raw(self, key: str) -> str:
        owner = next((f for f in self.dialect.fields if key in f.keys), None)
        if owner is not None and owner.kind == "duration" and key.startswith(_LIST_KEY_PREFIX):
            return duration_sql(self.raw(key, "VARCHAR"))
        if owner is not None and owner.kind in ("long", "duration"):
            return self.raw(key, "DOUBLE")
        if owner is not None and keeps_empty(owner):  # "" is a value, as in the consumer
            return f"NULLIF({self.raw(key, 'VARCHAR')}, '-')"
        return f"NULLIF(NULLIF({self.raw(key, 'VARCHAR')}, ''), '-')"

    def time_sql(self) -> str:
        """TIMESTAMPTZ of the line's time field (NULL when absent or unreadable)."""
        spec = self.dialect.spec("time")
        text = self._note(spec, "COALESCE(" + ", ".join(self._raw(k) for k in self._keys(spec)) + ")")
        return timestamp_sql(text)

    def resolve(self, name: str) -> Column:
        """The column for ``name``; raises :class:`UnknownField`."""
        col = self._cache.get(name)
        if col is None:
            col = self._resolve(name)
            self._cache[name] = col
        return col

    def _resolve(self, name: str) -> Column:
        spec = next((f for f in self.dialect.fields if name in (f.name, f.ecs)), None)
        if spec is not None:
            return self._canonical(name, spec, ecs=(name == spec.ecs and name != spec.name))
        owner = next((f for f in self.dialect.fields if name in f.keys), None)
        if owner is not None or self.has_key(name):
            numeric = owner is not None and owner.kind in ("long", "duration")
            return Column(name, self._raw(name), "number" if numeric else "text", owner)
        known = [f.name for f in self.dialect.fields]
        raise UnknownField(name, known, self.sample_desc)

    def _canonical(self, name: str, spec: FieldSpec, *, ecs: bool) -> Column:
        if spec.kind == "time":
            return Column(name, self.time_sql(), "time", spec)
        if spec.kind == "duration":
            # The first raw key present wins, each in its own unit.
            parts = []
            for key in self._keys(spec):
                ns = NS_PER_UNIT[self.dialect.unit_of(key)]
                factor = ns if ecs else ns / 1e9
                parts.append(f"{self._raw(key)} * {factor!r}" if factor != 1 else self._raw(key))
            return Column(name, self._note(spec, "COALESCE(" + ", ".join(parts) + ")"), "number", spec)
        text = self._note(spec, "COALESCE(" + ", ".join(self._raw(k) for k in self._keys(spec)) + ")")
        if spec.name == "path":
            text = f"split_part({text}, '?', 1)"  # "" stays "" (the consumer's url.path)
        return Column(name, text, "number" if spec.kind == "long" else "text", spec)


# nginx upstream lists as the consumer reads them (parsers/fieldmap.py to_number): numbers of digits
# with at most one dot, separated by "," or ":", a "-" or empty element being no value.
_NUM = r"[0-9]+\.?[0-9]*|\.[0-9]+"
# Only nginx's $upstream_* variables hold lists; other duration keys stay DOUBLE columns (cheaper).
_LIST_KEY_PREFIX = "upstream_"
_LIST = rf"\s*(-|{_NUM})?(\s*[,:]\s*(-|{_NUM})?)*\s*"


def duration_sql(text: str) -> str:
    """DOUBLE of a raw duration read as text: a number, or the SUM of an nginx upstream list
    (``"0.004, 0.002"`` after retries, ``"0.010 : 0.003"`` after an internal redirect), as the
    consumer maps it into ``event.duration``; NULL when absent, ``-`` or not a number."""
    listed = (
        f"CASE WHEN regexp_full_match({text}, '{_LIST}') AND regexp_matches({text}, '[0-9]')"
        f" THEN list_sum(CAST(regexp_extract_all({text}, '{_NUM}') AS DOUBLE[])) END"
    )
    return f"CASE WHEN contains({text}, ',') OR contains({text}, ':') THEN {listed} ELSE TRY_CAST({text} AS DOUBLE) END"


def number_text_sql(sql: str) -> str:
    """A DOUBLE as JSON would write it: ``500`` rather than ``500.0`` for whole numbers."""
    return (
        f"CASE WHEN {sql} = trunc({sql}) AND abs({sql}) < 1e15"
        f" THEN CAST(CAST({sql} AS BIGINT) AS VARCHAR) ELSE CAST({sql} AS VARCHAR) END"
    )


def timestamp_sql(text: str) -> str:
    """TIMESTAMPTZ from text holding ISO 8601, epoch s/ms/us/ns, or nginx ``time_local``."""
    num = f"TRY_CAST({text} AS DOUBLE)"
    epoch = (
        f"CASE WHEN abs({num}) >= 1e19 THEN NULL"
        f" WHEN abs({num}) >= 1e17 THEN to_timestamp({num} / 1e9)"
        f" WHEN abs({num}) >= 1e14 THEN to_timestamp({num} / 1e6)"
        f" WHEN abs({num}) >= 1e11 THEN to_timestamp({num} / 1e3)"
        f" ELSE to_timestamp({num}) END"
    )
    return f"COALESCE(TRY_CAST({text} AS TIMESTAMPTZ), {epoch}, try_strptime({text}, '%d/%b/%Y:%H:%M:%S %z'))"
