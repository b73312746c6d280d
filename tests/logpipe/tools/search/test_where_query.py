"""--where expressions -> Elasticsearch queries (unit): semantics of logpipe.core.expr kept."""

from __future__ import annotations

import pytest

from logpipe.tools.search.errors import BadQuery, UnknownField
from logpipe.tools.search.where_query import es_regexp, fields_of, where_query

TYPES = {
    "http.response.status_code": "long",
    "url.path": "keyword",
    "message": "text",
    "event.duration": "long",
    "log.level": "keyword",
}


def test_short_names_resolve_to_indexed_fields_and_and_or_not_nest() -> None:
    q = where_query('status>=500 and (path="/api/pay" or not level="debug")', TYPES)
    assert q == {
        "bool": {
            "filter": [
                {"range": {"http.response.status_code": {"gte": 500}}},
                {
                    "bool": {
                        "should": [
                            {"term": {"url.path": "/api/pay"}},
                            {"bool": {"must_not": [{"term": {"log.level": "debug"}}]}},
                        ],
                        "minimum_should_match": 1,
                    }
                },
            ]
        }
    }


def test_not_equal_and_negated_regex_require_the_field_to_exist() -> None:
    assert where_query("status!=200", TYPES) == {
        "bool": {
            "filter": [{"exists": {"field": "http.response.status_code"}}],
            "must_not": [{"term": {"http.response.status_code": 200}}],
        }
    }
    assert where_query('path!~"^/health"', TYPES) == {
        "bool": {
            "filter": [{"exists": {"field": "url.path"}}],
            "must_not": [{"regexp": {"url.path": {"value": "/health.*"}}}],
        }
    }


def test_text_fields_match_a_phrase_and_durations_convert_to_nanoseconds() -> None:
    assert where_query('message="card declined"', TYPES) == {"match_phrase": {"message": "card declined"}}
    assert where_query('latency>"250ms"', TYPES) == {"range": {"event.duration": {"gt": 250_000_000}}}
    assert where_query("event.duration>1000", TYPES) == {"range": {"event.duration": {"gt": 1000}}}


@pytest.mark.parametrize(
    ("pattern", "lucene"),
    [
        ("^/api/pay", "/api/pay.*"),
        ("pay$", ".*pay"),
        ("^exact$", "exact"),
        ("mid", ".*mid.*"),
        (r"cost\$", r".*cost\$.*"),
    ],
)
def test_search_regex_becomes_a_whole_value_lucene_regex(pattern: str, lucene: str) -> None:
    assert es_regexp(pattern) == lucene


def test_inner_anchor_is_refused() -> None:
    with pytest.raises(BadQuery, match="only supported at the start and the end"):
        es_regexp("a^b")


def test_unknown_field_and_bad_syntax() -> None:
    with pytest.raises(UnknownField, match=r"unknown field 'colour' — known fields include: event\.duration"):
        where_query('colour="red"', TYPES)
    with pytest.raises(BadQuery, match="column 8"):
        where_query("status=", TYPES)


def test_fields_of_resolves_names() -> None:
    assert fields_of('status>=500 and path~"x"') == {"http.response.status_code", "url.path"}
    assert fields_of("status>=") == set()


def test_before_any_index_exists_the_template_fields_are_known() -> None:
    from logpipe.tools.search.where_query import known_types

    types = known_types()
    assert where_query("status>=500", types) == {"range": {"http.response.status_code": {"gte": 500}}}
    assert where_query('kubernetes.node.name="n1"', types) == {"term": {"kubernetes.node.name": "n1"}}
    with pytest.raises(UnknownField):
        where_query('colour="red"', types)
