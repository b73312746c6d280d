"""How DuckDB reads the lines: a fast columnar reader, and an exact one for malformed lines.

* :class:`FastSource` -- ``read_json(format='newline_delimited', ignore_errors=true, columns=...)``
  with only the raw keys the query needs (unknown keys cost nothing), numbers as DOUBLE. A malformed
  line becomes a row whose columns are all NULL; so does a valid line that has none of the keys.
  Such rows, and rows where a field read with fewer keys than its dialect has is NULL
  (``also_bad``), are *candidates* (``_bad``): the engine counts them in the same pass, and only
  when there are some does it find out how many are malformed (:func:`malformed_sql`).
* :class:`ExactSource` -- ``read_ndjson_objects`` + one ``json_extract_string`` per line: ``_bad`` is
  exactly "not a JSON object". About 1.3x slower; used when the fast source cannot tell (valid lines
  without any of the keys, and a ``--where`` that keeps missing fields) or cannot read the keys
  (raw keys that differ only in case, like ``traceId``/``traceid``, which DuckDB column names cannot).

Both expose the same relation: ``_bad`` plus one SQL reference per raw key (:meth:`raw`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from logpipe.core.expr import sql_string
from logpipe.tools.query.columns import RawType, quote_ident


def file_list(paths: list[Path]) -> str:
    """A DuckDB list literal of the files, in read order."""
    return "[" + ", ".join(sql_string(str(p)) for p in paths) + "]"


class Source(Protocol):
    """A relation with ``_bad`` and the raw keys requested through :meth:`raw`."""

    keys: list[str]

    def raw(self, key: str, type: RawType) -> str:
        """SQL reading raw key ``key`` as ``type`` (NULL when absent or not of it); registers the key."""
        ...

    def relation(self) -> str:
        """A SELECT producing ``_bad`` and the raw keys requested so far."""
        ...


class FastSource:
    """``read_json`` with an explicit VARCHAR column per raw key (see module doc)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.keys: list[str] = []
        self.types: dict[str, RawType] = {}
        self.also_bad: list[str] = []
        """More candidate conditions: fields read with fewer keys than the dialect has, when NULL."""

    def raw(self, key: str, type: RawType) -> str:
        # DuckDB converts a JSON number straight into a DOUBLE column, cheaper than via text.
        # The resolver always asks for a key with the same type (the kind of the field owning it).
        if key not in self.keys:
            self.keys.append(key)
            self.types[key] = type
        return quote_ident(key)

    def usable(self) -> bool:
        """False with no key to read, or two differing only in case (DuckDB names are case-insensitive)."""
        return bool(self.keys) and len({k.lower() for k in self.keys}) == len(self.keys)

    def relation(self) -> str:
        cols = "{" + ", ".join(f"{sql_string(k)}: '{self.types[k]}'" for k in self.keys) + "}"
        cand = " AND ".join(f"{quote_ident(k)} IS NULL" for k in self.keys) or "false"
        cand = " OR ".join([f"({cand})", *(f"({sql}) IS NULL" for sql in self.also_bad)])
        return (
            f"SELECT ({cand}) AS _bad, * FROM read_json({file_list(self.paths)},"
            f" format='newline_delimited', ignore_errors=true, compression='auto_detect', columns={cols})"
        )


def json_path(key: str) -> str:
    """A JSON path for a top-level key, whatever characters it has."""
    return "$." + '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ExactSource:
    """``read_ndjson_objects``: ``_bad`` is exactly "not one JSON object" (see module doc)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.keys: list[str] = []

    def raw(self, key: str, type: RawType) -> str:
        if key not in self.keys:
            self.keys.append(key)
        ref = f"_v[{self.keys.index(key) + 1}]"
        return ref if type == "VARCHAR" else f"TRY_CAST({ref} AS {type})"

    def relation(self) -> str:
        paths = "[" + ", ".join(sql_string(json_path(k)) for k in self.keys) + "]"
        extract = f"json_extract_string(json, {paths}::VARCHAR[])" if self.keys else "[]::VARCHAR[]"
        return (
            f"SELECT (json IS NULL OR left(json, 1) <> '{{') AS _bad, {extract} AS _v"
            f" FROM read_ndjson_objects({file_list(self.paths)}, ignore_errors=true, compression='auto_detect')"
        )


def malformed_sql(paths: list[Path]) -> str:
    """Malformed lines: the total, the first file holding one, and ``{file_index: count}`` (a validating scan)."""
    return (
        "SELECT sum(n), min(file_index), map(list(file_index), list(n)) FROM ("
        "SELECT file_index, count(*) AS n FROM ("
        "SELECT (json IS NULL OR left(json, 1) <> '{') AS _bad, file_index"
        f" FROM read_ndjson_objects({file_list(paths)}, ignore_errors=true, compression='auto_detect'))"
        " WHERE _bad GROUP BY file_index)"
    )
