"""CPU cost per span of the consumer's span metrics (``consumer/spanmetrics/``), beside the span parse it rides on.

    python bench/span_metrics_bench.py [--spans 200000] [--services 20] [--operations 50] [--rounds 3]

OTLP/JSON lines (10 spans each, real field shapes: kind, status, attributes) are parsed by the
consumer's own ``LineParser`` once, outside the timing; then the documents are timed through
``SpanMetrics.observe_all`` (what ``Dispatch._indexed`` calls per accepted bulk) in CPU time of this
process (``time.process_time``), and the parse of the same lines for comparison. Prints µs/span for
both and the share the metrics add; also the series held and the time of one ``/metrics`` render.
"""

from __future__ import annotations

import argparse
import random
import time

import orjson

from consumer.spanmetrics.config import DEFAULT_BUCKETS
from consumer.spanmetrics.exposition import render
from consumer.spanmetrics.store import SpanMetrics
from logpipe.core.envelope import H_TYPE
from parsers import LineParser, Many, Parsed

HEADERS = {H_TYPE: "trace", "lp.component": "shop", "lp.pod": "shop-1", "lp.namespace": "shop",
           "lp.path": "/var/log/pods/x/trace.log", "lp.offset": "0", "lp.file_id": "f", "lp.read_ts": "1795744805000"}


def lines(n: int, services: int, operations: int, seed: int = 11) -> list[bytes]:
    rnd = random.Random(seed)
    start = time.time_ns() - 600 * 10**9
    out = []
    for k in range(0, n, 10):
        service = f"svc-{rnd.randrange(services)}"
        spans = []
        for j in range(10):
            dur = int(rnd.lognormvariate(16, 1.2))  # ~10 ms median, a long tail
            spans.append({
                "traceId": f"{k + 1:032x}", "spanId": f"{j + 1:016x}", "name": f"op-{rnd.randrange(operations)}",
                "kind": rnd.choice((1, 2, 3)), "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + dur),
                "attributes": [{"key": "http.response.status_code", "value": {"intValue": "200"}}],
                "status": {"code": 2 if rnd.random() < 0.05 else 1},
            })
        out.append(orjson.dumps({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}],
        }]}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--services", type=int, default=20)
    ap.add_argument("--operations", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    raw = lines(a.spans, a.services, a.operations)
    parser = LineParser(None, index_prefix="bench")  # as the consumer builds it
    t0 = time.process_time()
    parsed = [parser.parse(line, HEADERS) for line in raw]
    parse_us = (time.process_time() - t0) / a.spans * 1e6
    docs = [p.doc for r in parsed for p in (r.parts if isinstance(r, Many) else (r,))
            if isinstance(p, Parsed) and p.log_type == "trace"]
    assert len(docs) == a.spans, (len(docs), a.spans)
    bounds = [round(b * 1000, 6) for b in DEFAULT_BUCKETS]
    costs = []
    for _ in range(a.rounds):
        store = SpanMetrics(1000, 200, bounds)
        t0 = time.process_time()
        store.observe_all(docs)
        costs.append((time.process_time() - t0) / len(docs) * 1e6)
    render(store)  # the first scrape builds each series' label text
    t0 = time.process_time()
    text = render(store)
    render_ms = (time.process_time() - t0) * 1e3
    best = min(costs)
    print(f"spans {a.spans}, services {a.services}, operations {a.operations}: {store.series_count} series")
    print(f"span metrics: {', '.join(f'{c:.2f}' for c in costs)} µs/span (best {best:.2f})")
    print(f"span parse (LineParser, same lines): {parse_us:.1f} µs/span -> metrics add {100 * best / parse_us:.1f} %")
    print(f"/metrics render: {render_ms:.1f} ms CPU for {len(text)} characters")


if __name__ == "__main__":
    main()
