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
    """gateway -> pay -> (bank, cache in parallel with bank, ledger), plus lines of each Component
    (pay's names its span) and an unrelated trace."""
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
        store.span(pay_spans, "tr-1", "c1", "p1", "cache.get", ms(30), 20_000),
        store.span(pay_spans, "tr-9", "x1", None, "other", ms(0), 5_000),
        store.access(gw_log, ms(120), "/api/pay", 200, trace_id="tr-1"),
        store.app(pay_log, ms(15), "charging card", trace_id="tr-1", span_id="p1"),
        store.app(pay_log, ms(16), "unrelated", trace_id="tr-9"),
    ])


async def test_trace_shows_the_span_tree_with_durations_and_the_log_lines(store: LogStore) -> None:
    await index_checkout_trace(store)
    out = io.StringIO()

    code = await trace_main(TraceOptions("tr-1", es_url=store.url, index_prefix=store.prefix), out)

    assert code == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trace tr-1  5 spans, 3 services, 120.0ms")
    assert lines[0].endswith("critical path 4 spans")
    rows = [ln.split("|")[0].split() for ln in lines[2:8]]
    assert rows[:2] + rows[3:] == [
        ["◆", "gateway", "GET", "/api/pay", "120.0ms", "20.0ms"],
        ["◆", "pay", "└─", "charge", "100.0ms", "20.0ms"],
        ["◆", "bank", "├─", "POST", "/bank/charge", "60.0ms", "60.0ms"],
        ["pay", "├─", "cache.get", "20.0ms", "20.0ms"],  # in parallel with bank: not on the path
        ["◆", "pay", "└─", "ledger.write", "20.0ms", "20.0ms"],
    ]
    assert rows[2][:2] == ["│", "·"] and rows[2][3:] == ["pay-1", "INFO", "charging", "card"]  # under its span
    bars = [ln.split("|")[1] for ln in lines[2:8] if "|" in ln]
    assert bars[0] == "████" + "░" * 32 + "████"  # the gateway holds 0-10ms and 110-120ms of 120ms
    assert bars[1].index("█") == 3 and bars[4].index("█") == 28  # 10ms and 85ms of 120ms on 40 cells
    assert "█" not in bars[3] and "░" in bars[3]
    assert "log lines without a span of the trace (1):" in lines
    tail = lines[lines.index("log lines without a span of the trace (1):") + 1 :]
    assert [t.split()[1] for t in tail] == ["gw-1"]


async def test_trace_json_and_unknown_trace(store: LogStore) -> None:
    await index_checkout_trace(store)
    out = io.StringIO()

    assert await trace_main(TraceOptions("tr-1", es_url=store.url, index_prefix=store.prefix, as_json=True), out) == 0
    doc = orjson.loads(out.getvalue())
    spans = [(s["span"]["id"], s["depth"], s["critical"], s["self_ns"] // 1_000_000) for s in doc["spans"]]
    assert spans == [
        ("g1", 0, True, 20), ("p1", 1, True, 20), ("b1", 2, True, 60), ("c1", 2, False, 20), ("l1", 2, True, 20),
    ]
    assert [d["message"] for d in doc["spans"][1]["logs"]] == ["charging card"]
    assert [d["logpipe"]["type"] for d in doc["logs"]] == ["access"]  # the line naming no span
    assert doc["duration_ns"] == 120_000_000
    assert [p["span_id"] for p in doc["critical_path"]] == ["g1", "p1", "b1", "p1", "l1", "p1", "g1"]

    empty = io.StringIO()
    assert await trace_main(TraceOptions("nope", es_url=store.url, index_prefix=store.prefix), empty) == 1
    assert empty.getvalue() == ""
