"""`logpipe trace stats` without Elasticsearch: the request, paging, the top groups, the table and the
argument checks (the figures against the real Elasticsearch: tests/integration/test_red_metrics.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from logpipe.tools.search.errors import BadArgument
from logpipe.tools.search.trace_stats import (
    PAGE,
    GroupBy,
    Stats,
    StatsOptions,
    StatsResult,
    fetch_stats,
    stats_aggs,
    table,
)

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def bucket(key: dict[str, Any], calls: int, errors: int, p50: float = 1e6) -> dict[str, Any]:
    values = {"50.0": p50, "95.0": p50 * 2, "99.0": p50 * 3}
    return {"key": key, "doc_count": calls, "errors": {"doc_count": errors}, "duration": {"values": values}}


class PagedAggs:
    """A search client answering the composite aggregation in pages, recording the requests."""

    def __init__(self, pages: list[list[dict[str, Any]]], total: int) -> None:
        self.pages = pages
        self.total = total
        self.requests: list[Mapping[str, Any]] = []

    async def aggregate(self, index: str, query: Mapping[str, Any], aggs: Mapping[str, Any]) -> Mapping[str, Any]:
        self.requests.append({"index": index, "query": query, "aggs": aggs})
        page = self.pages[len(self.requests) - 1]
        groups: dict[str, Any] = {"buckets": page}
        if page:
            groups["after_key"] = page[-1]["key"]
        out: dict[str, Any] = {"groups": groups}
        if len(self.requests) == 1:
            out.update(bucket({}, self.total, 7))
        return {"hits": {"total": {"value": self.total}}, "aggregations": out}


async def test_groups_are_read_over_every_page_and_the_top_ones_kept() -> None:
    first = [bucket({"g0": "cart", "g1": f"op-{i:04d}"}, 1, 0) for i in range(PAGE)]
    second = [bucket({"g0": "cart", "g1": "GET /cart"}, 50, 5), bucket({"g0": "pay", "g1": None}, 20, 2)]
    client = PagedAggs([first, second], total=PAGE + 70)
    o = StatsOptions(components=("cart", "pay"), limit=3, es_url="http://x", index_prefix="lp")

    result = await fetch_stats(client, o, NOW)  # type: ignore[arg-type]

    assert [r.group for r in result.rows] == [("cart", "GET /cart"), ("pay", "-"), ("cart", "op-0000")]
    assert result.other_groups == PAGE - 1
    assert (result.total.calls, result.total.errors) == (PAGE + 70, 7)
    first_req, second_req = client.requests
    assert first_req["index"] == "lp-trace-*,lp-jaeger-span-*"
    assert first_req["query"]["bool"]["filter"][1] == {"terms": {"service.name": ["cart", "pay"]}}
    assert first_req["query"]["bool"]["filter"][0]["range"]["@timestamp"] == {"gte": "2026-12-02T09:00:00.000Z"}
    hdr = first_req["aggs"]["duration"]["percentiles"]
    assert hdr["tdigest"] == {"compression": 200} and hdr["field"] == "event.duration"
    assert second_req["aggs"]["groups"]["composite"]["after"] == {"g0": "cart", "g1": "op-0999"}
    assert "duration" not in second_req["aggs"]  # the total is asked for once


class NoIndex:
    """Elasticsearch's answer when no index matches the pattern: no ``aggregations`` at all."""

    async def aggregate(self, index: str, query: Mapping[str, Any], aggs: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"hits": {"total": {"value": 0}}}


async def test_no_span_index_yet_is_no_spans_not_a_crash() -> None:
    o = StatsOptions(components=("nosuch",), es_url="http://x", index_prefix="empty")
    result = await fetch_stats(NoIndex(), o, NOW)  # type: ignore[arg-type]
    assert result.rows == [] and (result.total.calls, result.total.errors) == (0, 0)


def test_every_adds_a_time_source_before_the_group() -> None:
    aggs = stats_aggs(StatsOptions(by=GroupBy.status, every="5m"), 300)

    sources = aggs["groups"]["composite"]["sources"]
    assert sources == [
        {"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": "300s"}}},
        {"g0": {"terms": {"field": "service.name", "missing_bucket": True}}},
        {"g1": {"terms": {"field": "http.response.status_code", "missing_bucket": True}}},
    ]


@pytest.mark.parametrize(("every", "since", "message"), [
    ("1s", "1d", "86400 buckets"),
    ("500ms", "1h", "whole seconds"),
    ("soon", "1h", "--every"),
])
async def test_bad_every_is_refused_with_a_fix(every: str, since: str, message: str) -> None:
    client = PagedAggs([[]], total=0)
    with pytest.raises(BadArgument) as exc:
        await fetch_stats(client, StatsOptions(every=every, since=since), NOW)  # type: ignore[arg-type]
    assert message in str(exc.value)
    assert not client.requests


def test_the_table_aligns_numbers_right_and_ends_with_the_total() -> None:
    rows = [Stats(("cart", "GET /cart"), 120, 6, 12.3e6, 80e6, 1.42e9), Stats(("pay", "-"), 8, 0, 850e3, 1e6, None)]
    result = StatsResult(rows, Stats((), 128, 6, 12e6, 79e6, 1.4e9), other_groups=4)

    lines = table(StatsOptions(limit=2), result)

    assert lines == [
        "SERVICE  OPERATION  CALLS  ERRORS  ERR%     P50     P95    P99",
        "cart     GET /cart    120       6   5.0  12.3ms  80.0ms  1.42s",
        "pay      -              8       0   0.0   850µs   1.0ms      -",
        "(all)                 128       6   4.7  12.0ms  79.0ms  1.40s",
        "(4 more spans in groups past --limit 2)",
    ]
