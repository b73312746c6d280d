"""Command-line filters -> an Elasticsearch bool query, sort and index pattern. Pure: no I/O.

Every builder returns plain dicts for the ``query``/``sort`` parameters of the search API, so the
unit tests read the exact request and the integration tests prove that Elasticsearch agrees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logpipe.tools.search import docfields as F
from logpipe.tools.search.errors import BadArgument
from logpipe.tools.timerange import TimeRange

Query = dict[str, Any]

DEFAULT_PREFIX = "logpipe"


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What the user asked for; every tuple is OR-ed within itself and AND-ed with the others."""

    text: str | None = None
    components: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    pods: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    trace_id: str | None = None
    where: Query | None = None  # already translated by logpipe.tools.search.where_query


def index_pattern(prefix: str, types: Sequence[str] = ()) -> str:
    """``logpipe-app-*,logpipe-access-*``; with no types, every log type (never other indices)."""
    chosen = types or F.LOG_TYPES
    unknown = [t for t in chosen if t not in F.LOG_TYPES]
    if unknown:
        raise BadArgument(f"unknown --type {unknown[0]!r}: use one of {', '.join(F.LOG_TYPES)}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", prefix):
        raise BadArgument(f"invalid --index-prefix {prefix!r}: use lowercase letters, digits, '-', '_' or '.'")
    # Spans live in Jaeger's indices (docs/TRACES.md); older ones in <prefix>-trace-*.
    return ",".join(f"{prefix}-{t}-*" + (f",{prefix}-jaeger-span-*" if t == "trace" else "") for t in chosen)


def any_of(clauses: list[Query]) -> Query:
    return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}


def keyword_query(field: str, values: Sequence[str], *, case_insensitive: bool = False) -> Query:
    """Exact values, ``*``/``?`` wildcards allowed (pod names: ``pay-*``)."""
    clauses: list[Query] = []
    exact = [v for v in values if "*" not in v and "?" not in v]
    if exact and not case_insensitive:
        clauses.append({"terms": {field: exact}})
    else:
        clauses += [{"term": {field: {"value": v, "case_insensitive": True}}} for v in exact]
    clauses += [
        {"wildcard": {field: {"value": v, "case_insensitive": case_insensitive}}}
        for v in values
        if "*" in v or "?" in v
    ]
    return any_of(clauses)


_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)
_STATUS_CMP = re.compile(r"^(>=|<=|>|<)\s*(\d{3})$")
_STATUS_RANGE = re.compile(r"^(\d{3})-(\d{3})$")


def status_query(spec: str, field: str = F.STATUS) -> Query:
    """``500``, ``5xx``, ``>=500``, ``500-504`` -> a query on ``field`` (``http.response.status_code``)."""
    s = spec.strip()
    if s.isdigit():
        return {"term": {field: int(s)}}
    if m := _STATUS_CLASS.match(s):
        base = int(m.group(1)) * 100
        return {"range": {field: {"gte": base, "lte": base + 99}}}
    if m := _STATUS_CMP.match(s):
        op = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[m.group(1)]
        return {"range": {field: {op: int(m.group(2))}}}
    if m := _STATUS_RANGE.match(s):
        return {"range": {field: {"gte": int(m.group(1)), "lte": int(m.group(2))}}}
    raise BadArgument(f"invalid --status {spec!r}: use e.g. 500, 5xx, >=500 or 500-504")


def text_query(text: str) -> Query:
    """Free text over ``message``: words must all occur; "quoted phrase", -exclude, a|b, prefix*."""
    return {
        "simple_query_string": {
            "query": text,
            "fields": [F.MESSAGE],
            "default_operator": "and",
        }
    }


def filter_clauses(filters: SearchFilters) -> list[Query]:
    """The non-time clauses of ``filters`` (what both a search and a follow poll apply)."""
    out: list[Query] = []
    if filters.text and filters.text.strip():
        out.append(text_query(filters.text))
    if filters.components:
        out.append(keyword_query(F.COMPONENT, filters.components))
    if filters.namespaces:
        out.append(keyword_query(F.NAMESPACE, filters.namespaces))
    if filters.pods:
        out.append(keyword_query(F.POD, filters.pods))
    if filters.statuses:
        out.append(any_of([status_query(s) for s in filters.statuses]))
    if filters.levels:
        out.append(keyword_query(F.LEVEL, filters.levels, case_insensitive=True))
    if filters.trace_id:
        out.append({"term": {F.TRACE_ID: filters.trace_id}})
    if filters.where is not None:
        out.append(filters.where)
    return out


def _bool(clauses: list[Query]) -> Query:
    return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}


def search_query(filters: SearchFilters, time_range: TimeRange) -> Query:
    """The query of a one-shot search: the filters within the time range on ``@timestamp``."""
    clauses = filter_clauses(filters)
    bounds = time_range.to_es()
    if bounds:
        clauses.append({"range": {F.TIMESTAMP: bounds}})
    return _bool(clauses)


def ingested_since_query(filters: SearchFilters, ingested_from_ms: int) -> Query:
    """The query of one follow poll: the filters, on documents indexed at or after the bound."""
    clauses = filter_clauses(filters)
    clauses.append({"range": {F.INGESTED: {"gte": ingested_from_ms, "format": "epoch_millis"}}})
    return _bool(clauses)


def _sort(field: str, order: str, unmapped: str) -> Query:
    return {field: {"order": order, "unmapped_type": unmapped}}


def time_sort(order: str = "asc") -> list[Query]:
    """``@timestamp`` then the tiebreaker ``logpipe.file_id`` + ``log.offset`` (unique per line)."""
    return [
        _sort(F.TIMESTAMP, order, "date"),
        _sort(F.FILE_ID, order, "keyword"),
        _sort(F.OFFSET, order, "long"),
    ]


def ingested_sort() -> list[Query]:
    """Index time, then the same unique tiebreaker, so ``search_after`` pages never skip or repeat."""
    return [_sort(F.INGESTED, "asc", "date"), _sort(F.FILE_ID, "asc", "keyword"), _sort(F.OFFSET, "asc", "long")]


def context_queries(file_id: str, offset: int, lines: int) -> tuple[Query, Query]:
    """Two searches (body with query, sort and size): the ``lines`` lines before and after a line."""
    same_file = {"term": {F.FILE_ID: file_id}}
    before = {
        "query": {"bool": {"filter": [same_file, {"range": {F.OFFSET: {"lt": offset}}}]}},
        "sort": [_sort(F.OFFSET, "desc", "long")],
        "size": lines,
    }
    after = {
        "query": {"bool": {"filter": [same_file, {"range": {F.OFFSET: {"gt": offset}}}]}},
        "sort": [_sort(F.OFFSET, "asc", "long")],
        "size": lines,
    }
    return before, after


def trace_id_forms(trace_id: str) -> list[str]:
    """The spellings one trace id is stored under: as given (lower case), and as Jaeger prints it
    (a 32-digit id whose high half is zero as its 16-digit low half) or padded back to 32 digits."""
    given = trace_id.strip()
    tid = given.lower()
    forms = [given, tid]
    if len(tid) == 32 and tid.startswith("0" * 16):
        forms.append(tid[16:])
    elif len(tid) == 16:
        forms.append("0" * 16 + tid)
    return list(dict.fromkeys(forms))


def trace_query(trace_id: str) -> Query:
    """Every document of one trace."""
    return {"bool": {"filter": [{"terms": {F.TRACE_ID: trace_id_forms(trace_id)}}]}}


def referenced_fields(query: Mapping[str, Any] | Sequence[Any]) -> set[str]:
    """Field names a query mentions (for the unknown-field check against the mappings)."""
    found: set[str] = set()
    leaf_ops = {"term", "terms", "range", "wildcard", "regexp", "match_phrase", "match", "prefix"}

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                if k in leaf_ops and isinstance(v, Mapping):
                    found.update(name for name in v if name not in ("boost", "_name"))
                elif k == "exists" and isinstance(v, Mapping) and "field" in v:
                    found.add(str(v["field"]))
                else:
                    walk(v)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(query)
    return found
