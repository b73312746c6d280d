"""`logpipe trace` against the real Elasticsearch: the span tree and the log lines of one trace."""

from __future__ import annotations

import io
from datetime import timedelta

import orjson
import pytest

from logpipe.tools.search.trace_command import TraceOptions, trace_main
from tests.logpipe.tools.search.stories import LogStore, minutes_ago

pytestmark = pytest.mark.integration


async def index_checkout_trace(store: LogStore) -> None:
    """gateway -> pay -> (bank, ledger), plus lines of each Component and an unrelated trace."""
    gw_spans = store.pod_file("gateway", "gw-1", "trace")
    pay_spans = store.pod_file("pay", "pay-1", "trace")
    gw_log = store.pod_file("gateway", "gw-1", "access")
    pay_log = store.pod_file("pay", "pay-1")
    t0 = minutes_ago(3)
    ms = lambda n: t0 + timedelta(milliseconds=n)  # noqa: E731
    await store.index([
        store.span(pay_spans, "tr-1", "b1", "p1", "POST /bank/charge", ms(20), 60_000, service="bank"),
        store.span(gw_spans, "tr-1", "g1", None, "GET /api/pay", ms(0), 120_000),
        store.span(pay_spans, "tr-1", "p1", "g1", "charge", ms(10), 100_000),
        store.span(pay_spans, "tr-1", "l1", "p1", "ledger.write", ms(85), 20_000),
        store.span(pay_spans, "tr-9", "x1", None, "other", ms(0), 5_000),
        store.access(gw_log, ms(120), "/api/pay", 200, trace_id="tr-1"),
        store.app(pay_log, ms(15), "charging card", trace_id="tr-1"),
        store.app(pay_log, ms(16), "unrelated", trace_id="tr-9"),
    ])


async def test_trace_shows_the_span_tree_with_durations_and_the_log_lines(store: LogStore) -> None:
    await index_checkout_trace(store)
    out = io.StringIO()

    code = await trace_main(TraceOptions("tr-1", es_url=store.url, index_prefix=store.prefix), out)

    assert code == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trace tr-1  4 spans, 3 services, 120.0ms")
    rows = [ln.split("|")[0].split() for ln in lines[1:5]]
    assert rows == [
        ["gateway", "GET", "/api/pay", "120.0ms"],
        ["pay", "└─", "charge", "100.0ms"],
        ["bank", "├─", "POST", "/bank/charge", "60.0ms"],
        ["pay", "└─", "ledger.write", "20.0ms"],
    ]
    bars = [ln.split("|")[1] for ln in lines[1:5]]
    assert bars[0] == "█" * 40
    assert bars[1].index("█") == 3 and bars[3].index("█") == 28  # 10ms and 85ms of 120ms on 40 cells
    assert "log lines (2):" in lines
    tail = lines[lines.index("log lines (2):") + 1 :]
    assert [t.split()[1] for t in tail] == ["pay-1", "gw-1"]
    assert "charging card" in tail[0]


async def test_trace_json_and_unknown_trace(store: LogStore) -> None:
    await index_checkout_trace(store)
    out = io.StringIO()

    assert await trace_main(TraceOptions("tr-1", es_url=store.url, index_prefix=store.prefix, as_json=True), out) == 0
    doc = orjson.loads(out.getvalue())
    assert [(s["span"]["id"], s["depth"]) for s in doc["spans"]] == [("g1", 0), ("p1", 1), ("b1", 2), ("l1", 2)]
    assert [d["message"] for d in doc["logs"] if d["logpipe"]["type"] == "app"] == ["charging card"]

    empty = io.StringIO()
    assert await trace_main(TraceOptions("nope", es_url=store.url, index_prefix=store.prefix), empty) == 1
    assert empty.getvalue() == ""
