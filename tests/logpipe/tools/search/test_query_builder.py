"""Flags -> Elasticsearch query: the exact request bodies (unit, no Elasticsearch)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logpipe.tools.search.errors import BadArgument
from logpipe.tools.search.query_builder import (
    SearchFilters,
    context_queries,
    index_pattern,
    ingested_since_query,
    referenced_fields,
    search_query,
    status_query,
    time_sort,
)
from logpipe.tools.timerange import TimeRange

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 27, 9, 15, 0, 250_000, tzinfo=UTC)


def test_index_pattern_names_each_type_and_nothing_else() -> None:
    assert index_pattern("logpipe") == (
        "logpipe-access-*,logpipe-app-*,logpipe-stdout-*,logpipe-trace-*,logpipe-jaeger-span-*"
    )
    assert index_pattern("staging", ["app"]) == "staging-app-*"
    with pytest.raises(BadArgument, match="unknown --type 'nginx'"):
        index_pattern("logpipe", ["nginx"])
    with pytest.raises(BadArgument, match="invalid --index-prefix"):
        index_pattern("Logs*", [])


def test_no_filters_and_no_time_bounds_match_everything() -> None:
    assert search_query(SearchFilters(), TimeRange(None, None)) == {"match_all": {}}


def test_every_flag_becomes_one_filter_clause_with_the_time_range() -> None:
    q = search_query(
        SearchFilters(
            text="upstream timeout",
            components=("pay",),
            namespaces=("shop", "staging"),
            pods=("pay-*",),
            statuses=("5xx", "429"),
            levels=("error",),
            trace_id="t-1",
        ),
        TimeRange(T0, T1),
    )
    assert q == {
        "bool": {
            "filter": [
                {
                    "simple_query_string": {
                        "query": "upstream timeout", "fields": ["message"], "default_operator": "and"
                    }
                },
                {"terms": {"service.name": ["pay"]}},
                {"terms": {"kubernetes.namespace": ["shop", "staging"]}},
                {"wildcard": {"kubernetes.pod.name": {"value": "pay-*", "case_insensitive": False}}},
                {
                    "bool": {
                        "should": [
                            {"range": {"http.response.status_code": {"gte": 500, "lte": 599}}},
                            {"term": {"http.response.status_code": 429}},
                        ],
                        "minimum_should_match": 1,
                    }
                },
                {"term": {"log.level": {"value": "error", "case_insensitive": True}}},
                {"term": {"trace.id": "t-1"}},
                {"range": {"@timestamp": {"gte": "2026-11-27T09:00:00.000Z", "lt": "2026-11-27T09:15:00.250Z"}}},
            ]
        }
    }


@pytest.mark.parametrize(
    ("spec", "query"),
    [
        ("404", {"term": {"http.response.status_code": 404}}),
        ("4XX", {"range": {"http.response.status_code": {"gte": 400, "lte": 499}}}),
        (">=500", {"range": {"http.response.status_code": {"gte": 500}}}),
        ("<400", {"range": {"http.response.status_code": {"lt": 400}}}),
        ("500-504", {"range": {"http.response.status_code": {"gte": 500, "lte": 504}}}),
    ],
)
def test_status_forms(spec: str, query: dict[str, object]) -> None:
    assert status_query(spec) == query


@pytest.mark.parametrize("spec", ["5x", "ok", ">=5000", "6xx", ""])
def test_bad_status_is_an_error_naming_the_forms(spec: str) -> None:
    with pytest.raises(BadArgument, match=r"use e\.g\. 500, 5xx"):
        status_query(spec)


def test_follow_polls_by_index_time_without_a_timestamp_bound() -> None:
    q = ingested_since_query(SearchFilters(components=("pay",)), 1_795_000_000_000)
    assert q == {
        "bool": {
            "filter": [
                {"terms": {"service.name": ["pay"]}},
                {"range": {"event.ingested": {"gte": 1_795_000_000_000, "format": "epoch_millis"}}},
            ]
        }
    }


def test_sort_has_a_unique_tiebreaker_and_survives_unmapped_fields() -> None:
    assert time_sort("desc") == [
        {"@timestamp": {"order": "desc", "unmapped_type": "date"}},
        {"logpipe.file_id": {"order": "desc", "unmapped_type": "keyword"}},
        {"log.offset": {"order": "desc", "unmapped_type": "long"}},
    ]


def test_context_searches_the_same_file_by_offset_nearest_first() -> None:
    before, after = context_queries("fingerprint::ab", 4096, 3)
    assert before["query"] == {
        "bool": {"filter": [{"term": {"logpipe.file_id": "fingerprint::ab"}}, {"range": {"log.offset": {"lt": 4096}}}]}
    }
    assert before["sort"] == [{"log.offset": {"order": "desc", "unmapped_type": "long"}}]
    assert after["sort"] == [{"log.offset": {"order": "asc", "unmapped_type": "long"}}]
    assert (before["size"], after["size"]) == (3, 3)


def test_referenced_fields_walks_nested_bools() -> None:
    q = search_query(SearchFilters(components=("a",), statuses=("5xx",)), TimeRange(T0, None))
    assert referenced_fields(q) == {"service.name", "http.response.status_code", "@timestamp"}


def test_a_trace_id_is_searched_in_every_spelling_it_is_stored_under() -> None:
    from logpipe.tools.search.query_builder import trace_id_forms

    assert trace_id_forms("0000000000000000A3CE929D0E0E4736") == [
        "0000000000000000A3CE929D0E0E4736", "0000000000000000a3ce929d0e0e4736", "a3ce929d0e0e4736"]
    assert trace_id_forms("a3ce929d0e0e4736") == ["a3ce929d0e0e4736", "0000000000000000a3ce929d0e0e4736"]
    assert trace_id_forms("4bf92f3577b34da6a3ce929d0e0e4736") == ["4bf92f3577b34da6a3ce929d0e0e4736"]
