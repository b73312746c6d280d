"""`logpipe search` against the real Elasticsearch, documents indexed under the consumer's templates."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

import orjson
import pytest

from logpipe.tools.search.errors import BadQuery, UnknownField
from logpipe.tools.search.search_command import SearchOptions, search_main
from tests.logpipe.tools.search.stories import LogStore, minutes_ago

pytestmark = pytest.mark.integration


async def run_search(store: LogStore, **kw: object) -> tuple[int, list[dict[str, object]], str]:
    """Exit code, the JSON documents printed, and the notes on stderr."""
    opts = SearchOptions(es_url=store.url, index_prefix=store.prefix,
                         as_json=True)
    opts = replace(opts, **kw)  # type: ignore[arg-type]
    out, notes = io.StringIO(), io.StringIO()
    code = await search_main(opts, out, notes)
    return code, [orjson.loads(line) for line in out.getvalue().splitlines()], notes.getvalue()


def messages(docs: list[dict[str, object]]) -> list[str]:
    return [str(d.get("message")) for d in docs]


async def test_component_limit_shows_newest_last_and_says_how_many_more(store: LogStore) -> None:
    pay = store.pod_file("pay", "pay-7d9f-a")
    cart = store.pod_file("cart", "cart-55c-b")
    lines = [store.app(pay, minutes_ago(10 - i), f"pay line {i}") for i in range(5)]
    lines += [store.app(cart, minutes_ago(10 - i), f"cart line {i}") for i in range(3)]
    await store.index(lines)

    code, docs, notes = await run_search(store, components=("pay",), limit=3)

    assert code == 0
    assert messages(docs) == ["pay line 2", "pay line 3", "pay line 4"]
    assert "newest 3 of 5" in notes


async def test_same_timestamp_is_ordered_by_file_offset(store: LogStore) -> None:
    f = store.pod_file("pay", "pay-1")
    at = minutes_ago(1)
    await store.index([store.app(f, at, f"burst {i}") for i in range(20)])

    code, docs, _ = await run_search(store, limit=20)

    assert code == 0
    assert messages(docs) == [f"burst {i}" for i in range(20)]


async def test_text_level_status_namespace_pod_and_type_filters(store: LogStore) -> None:
    app = store.pod_file("pay", "pay-1")
    other_ns = store.pod_file("pay", "pay-9", namespace="staging")
    access = store.pod_file("pay", "pay-2", "access")
    await store.index([
        store.app(app, minutes_ago(3), "upstream timeout calling bank", "ERROR"),
        store.app(app, minutes_ago(2), "upstream ok", "INFO"),
        store.app(app, minutes_ago(2), "timeout retried", "WARN"),
        store.app(other_ns, minutes_ago(2), "upstream timeout in staging", "ERROR"),
        store.access(access, minutes_ago(2), "/api/pay", 502),
        store.access(access, minutes_ago(1), "/api/pay", 200),
        store.access(access, minutes_ago(1), "/api/orders", 504),
    ])

    _, docs, _ = await run_search(store, text="upstream timeout", namespaces=("shop",))
    assert messages(docs) == ["upstream timeout calling bank"]

    _, docs, _ = await run_search(store, levels=("error",))
    assert sorted(messages(docs)) == ["upstream timeout calling bank", "upstream timeout in staging"]

    _, docs, _ = await run_search(store, types=("access",), statuses=("5xx",))
    assert [d["url"]["path"] for d in docs] == ["/api/pay", "/api/orders"]  # type: ignore[index]

    _, docs, _ = await run_search(store, pods=("pay-?",), text="upstream")
    assert len(docs) == 3

    code, docs, _ = await run_search(store, types=("access",), statuses=(">=500",), pods=("pay-2",),
                                     text="nothing-like-this")
    assert (code, docs) == (1, [])


async def test_time_range_default_15m_since_and_from_to(store: LogStore) -> None:
    f = store.pod_file("pay", "pay-1")
    await store.index([
        store.app(f, minutes_ago(120), "two hours ago"),
        store.app(f, minutes_ago(30), "half an hour ago"),
        store.app(f, minutes_ago(5), "five minutes ago"),
    ])

    assert messages((await run_search(store))[1]) == ["five minutes ago"]
    assert messages((await run_search(store, since="1h"))[1]) == ["half an hour ago", "five minutes ago"]
    _, docs, _ = await run_search(store, from_="3h", to="1h")
    assert messages(docs) == ["two hours ago"]
    assert len((await run_search(store, since="all"))[1]) == 3


async def test_to_is_exclusive_so_adjacent_ranges_split_the_lines(store: LogStore) -> None:
    """The same [--from, --to) as `logpipe query` (logpipe/tools/timerange.py)."""
    f = store.pod_file("pay", "pay-1")
    t0 = minutes_ago(10).replace(microsecond=0)
    await store.index([store.app(f, t0 + timedelta(minutes=m), f"minute {m}") for m in (0, 1, 2)])

    def at(m: int) -> str:
        return (t0 + timedelta(minutes=m)).isoformat()

    assert messages((await run_search(store, from_=at(0), to=at(2)))[1]) == ["minute 0", "minute 1"]
    assert messages((await run_search(store, from_=at(2), to=at(3)))[1]) == ["minute 2"]


async def test_where_expression_translates_and_reports_unknown_fields_and_bad_syntax(store: LogStore) -> None:
    f = store.pod_file("pay", "pay-1", "access")
    await store.index([
        store.access(f, minutes_ago(3), "/api/pay/refund", 500, latency_ms=900),
        store.access(f, minutes_ago(2), "/api/pay", 200, latency_ms=20),
        store.access(f, minutes_ago(1), "/api/orders", 503, latency_ms=30),
    ])

    _, docs, _ = await run_search(store, where='status>=500 and path~"^/api/pay"')
    assert [d["url"]["path"] for d in docs] == ["/api/pay/refund"]  # type: ignore[index]

    _, docs, _ = await run_search(store, where='request_time>"500ms" or status=503')
    assert [d["url"]["path"] for d in docs] == ["/api/pay/refund", "/api/orders"]  # type: ignore[index]

    _, docs, _ = await run_search(store, where='not path="/api/pay"')
    assert len(docs) == 2

    with pytest.raises(UnknownField, match="'colour'"):
        await run_search(store, where='colour="red"')
    with pytest.raises(BadQuery, match="column 9"):
        await run_search(store, where="status>=")


async def test_context_shows_neighbours_from_the_same_file_across_rotation(store: LogStore) -> None:
    f = store.pod_file("pay", "pay-1")
    noise = store.pod_file("pay", "pay-2")
    t0 = minutes_ago(5)
    lines = []
    for i in range(12):
        lines.append(store.app(f, t0 + timedelta(seconds=i), "boom" if i in (3, 8, 9) else f"line {i}"))
        lines.append(store.app(noise, t0 + timedelta(seconds=i), f"noise {i}"))
    # The file was rotated after line 5: same file id, new path (the documents say so).
    for ln in lines[12:]:
        ln.doc["log"]["file"]["path"] = "/var/log/pay-1/app.log.1"
    await store.index(lines)

    out, notes = io.StringIO(), io.StringIO()
    opts = SearchOptions(es_url=store.url, index_prefix=store.prefix,
                         text="boom", context=1, colour=False)
    assert await search_main(opts, out, notes) == 0

    text = [ln.split(" ", 1)[1] for ln in out.getvalue().splitlines() if ln != "--"]
    assert out.getvalue().count("\n--\n") == 1
    assert text == [
        "pay-1- INFO line 2", "pay-1: INFO boom", "pay-1- INFO line 4",
        "pay-1- INFO line 7", "pay-1: INFO boom", "pay-1: INFO boom", "pay-1- INFO line 10",
    ]

    code, docs, _ = await run_search(store, text="boom", context=2, limit=1)
    assert code == 0
    assert [d.get("_context") for d in docs] == ["before", "before", None, "after", "after"]
    assert messages(docs) == ["line 7", "boom", "boom", "line 10", "line 11"]


async def test_trace_filter_finds_lines_of_all_components_in_time_order(store: LogStore) -> None:
    gw = store.pod_file("gateway", "gw-1", "access")
    pay = store.pod_file("pay", "pay-1")
    bank = store.pod_file("bank", "bank-1")
    t0 = minutes_ago(2)
    await store.index([
        store.app(bank, t0 + timedelta(milliseconds=30), "bank call", trace_id="t-42"),
        store.access(gw, t0, "/api/pay", 200, trace_id="t-42"),
        store.app(pay, t0 + timedelta(milliseconds=10), "charging", trace_id="t-42"),
        store.app(pay, t0 + timedelta(milliseconds=20), "other request", trace_id="t-7"),
    ])

    _, docs, _ = await run_search(store, trace_id="t-42")

    assert [d["service"]["name"] for d in docs] == ["gateway", "pay", "bank"]  # type: ignore[index]


async def test_queries_elasticsearch_rejects_are_reported_with_its_reason(store: LogStore) -> None:
    f = store.pod_file("pay", "pay-1", "access")
    await store.index([store.access(f, minutes_ago(1), "/api/pay", 200)])

    with pytest.raises(BadQuery, match=r"Elasticsearch rejected the query: .*integer expected"):
        await run_search(store, where='path~"a{,3}"')  # fine for Python's re, not for Lucene
    with pytest.raises(BadQuery, match=r'For input string: "abc"$'):
        await run_search(store, where='status="abc"')
