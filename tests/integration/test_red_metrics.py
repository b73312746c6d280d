"""RED figures end to end: OpenTelemetry SDK spans -> Kafka -> a real `logpipe consume` -> Elasticsearch,
then its /metrics and `logpipe trace stats` against figures computed independently from the spans.

The SDK (``tests/integration/span_producers.py``: its own OTLP encoder, protobuf's JSON mapping)
writes spans with chosen start and end times, every duration distinct: three groups of 200 spans
(1 ms x 1.02^i: where Elasticsearch's TDigest is still exact) and one of 3 000 (past it, where the
stated error applies: a rank error of at most 1 % of the group's spans).
"""

from __future__ import annotations

import asyncio
import io
import math
import random
import socket
import subprocess
import sys
import time
import urllib.request
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from consumer.spanmetrics.config import DEFAULT_BUCKETS
from logpipe.core.envelope import LineRecord
from logpipe.tools.search.trace_stats import GroupBy, StatsOptions, stats_main
from tests.consumer.story import ConsumerStory
from tests.integration.span_producers import BufferedExporter, otel_tracer_provider

pytestmark = pytest.mark.integration

PER_GROUP = 200
BIG = 3000  # spans of pricing "GET /quotes"
KIND_NAMES = {SpanKind.SERVER: "SPAN_KIND_SERVER", SpanKind.CLIENT: "SPAN_KIND_CLIENT"}


@dataclass(frozen=True)
class Gen:
    """One generated span as the test knows it (independently of everything logpipe computes)."""

    service: str
    name: str
    kind: SpanKind
    status: str  # STATUS_CODE_OK / _ERROR / _UNSET
    http_status: int | None
    start_ns: int
    duration_ns: int


def generate(tmp: Path, now_ns: int) -> tuple[list[Gen], dict[str, list[bytes]]]:
    """The spans, and the OTLP/JSON lines the SDK wrote for them (per service, 100 spans a line)."""
    rnd = random.Random(16)
    groups = [("cart", "GET /cart", SpanKind.SERVER, PER_GROUP), ("cart", "price", SpanKind.CLIENT, PER_GROUP),
              ("pricing", "quote", SpanKind.SERVER, PER_GROUP), ("pricing", "GET /quotes", SpanKind.SERVER, BIG)]
    spans: list[Gen] = []
    lines: dict[str, list[bytes]] = {}
    for service in ("cart", "pricing"):
        path = tmp / f"{service}-trace.log"
        batch = BufferedExporter(path)
        provider = otel_tracer_provider(path, service, batch)
        tracer = provider.get_tracer("shop")
        mine = [(svc, n, k, i, size) for svc, n, k, size in groups if svc == service for i in range(size)]
        rnd.shuffle(mine)
        for k, (svc, name, kind, i, size) in enumerate(mine):
            # ns precision, all distinct: 2 % apart in the small groups, a long tail in the big one
            duration = round(1_000_000 * (1.02**i if size == PER_GROUP else 1.001**i)) + rnd.randrange(1000)
            start = now_ns - rnd.randrange(1, 40 * 60) * 1_000_000_000 - rnd.randrange(10**9)
            status = ("STATUS_CODE_ERROR" if i % 7 == 0 else "STATUS_CODE_OK" if i % 3 == 0 else "STATUS_CODE_UNSET")
            http_status = (503 if status == "STATUS_CODE_ERROR" else 200) if kind is SpanKind.SERVER else None
            span = tracer.start_span(name, kind=kind, start_time=start)
            if http_status is not None:
                span.set_attribute("http.response.status_code", http_status)
            if status == "STATUS_CODE_ERROR":
                span.set_status(Status(StatusCode.ERROR, "upstream failed"))
            elif status == "STATUS_CODE_OK":
                span.set_status(Status(StatusCode.OK))
            span.end(end_time=start + duration)
            spans.append(Gen(svc, name, kind, status, http_status, start, duration))
            if k % 100 == 99:
                batch.flush_line()
        batch.flush_line()
        provider.shutdown()
        lines[service] = [ln.encode() for ln in path.read_text().splitlines()]
    return spans, lines


def rank_error(values: list[int], got_ms: float, p: float) -> float:
    """How far (as a fraction of the spans) the reported percentile is from rank ceil(p·n): 0 when the
    value is that of the span at that rank (or between it and a neighbour: TDigest interpolates)."""
    s = sorted(values)
    got = got_ms * 1e6
    below, at_most = bisect_left(s, got - 0.5), bisect_right(s, got + 0.5)
    k = max(1, math.ceil(p / 100 * len(s)))
    lo, hi = below, max(at_most, below + 1)  # the ranks the value stands at
    return 0.0 if lo <= k <= hi else min(abs(k - lo), abs(k - hi)) / len(s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def story(kafka_bootstrap: str, es_url: str, unique_name: str) -> AsyncIterator[ConsumerStory]:
    env = ConsumerStory(kafka_bootstrap, es_url, unique_name)
    env.topics = {"trace": f"{unique_name}-trace"}
    await env.create_topics(partitions=2)
    try:
        yield env
    finally:
        await env.cleanup()


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("traces_span_metrics_"):
                out[s.name].append((s.labels, s.value))
    return out


async def test_metrics_and_trace_stats_equal_the_generated_spans(story: ConsumerStory, tmp_path: Path) -> None:
    spans, lines = generate(tmp_path, time.time_ns())
    records = []
    for service, service_lines in lines.items():
        meta = story.meta("trace", pod=f"{service}-1", file_no=0 if service == "cart" else 1)
        offset = 0
        for line in service_lines:
            records.append(LineRecord(meta, offset, line, int(time.time() * 1000)))
            offset += len(line) + 1
    await story.produce(records)
    port = free_port()
    cfg = story.config(**{"http.port": port, "trace_dependencies.enabled": False})
    proc = story.spawn_cli(cfg, tmp_path)
    try:
        # /metrics of the real process: counted as Elasticsearch accepts the spans.
        deadline = time.monotonic() + 90
        metrics: dict[str, list[tuple[dict[str, str], float]]] = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"logpipe consume exited {proc.returncode}"
            try:
                metrics = await asyncio.to_thread(scrape, port)
            except OSError:
                metrics = {}
            if sum(v for _, v in metrics.get("traces_span_metrics_calls_total", ())) >= len(spans):
                break
            await asyncio.sleep(0.5)
        want_calls = Counter((g.service, g.name, KIND_NAMES[g.kind], g.status) for g in spans)
        got_calls = {(lb["service_name"], lb["span_name"], lb["span_kind"], lb["status_code"]): v
                     for lb, v in metrics["traces_span_metrics_calls_total"]}
        assert got_calls == want_calls
        bounds = [b * 1000 for b in DEFAULT_BUCKETS]
        key = ("pricing", "quote", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET")
        durations_ms = [g.duration_ns / 1e6 for g in spans if (g.service, g.name, KIND_NAMES[g.kind], g.status) == key]
        per_bucket = Counter(bisect_left(bounds, d) for d in durations_ms)
        want_cumulative = [sum(per_bucket[j] for j in range(i + 1)) for i in range(len(bounds) + 1)]
        got_buckets = [v for lb, v in metrics["traces_span_metrics_duration_milliseconds_bucket"]
                       if (lb["service_name"], lb["span_name"], lb["span_kind"], lb["status_code"]) == key]
        assert got_buckets == want_cumulative
        [got_sum] = [v for lb, v in metrics["traces_span_metrics_duration_milliseconds_sum"]
                     if (lb["service_name"], lb["span_name"], lb["span_kind"], lb["status_code"]) == key]
        assert got_sum == pytest.approx(sum(durations_ms))

        await story.es.indices.refresh(index=f"{story.prefix}-jaeger-span-*")
        # `logpipe trace stats --json` per operation, in-process, against the independent figures.
        out = io.StringIO()
        opts = StatsOptions(since="2h", as_json=True, es_url=story.es_url, index_prefix=story.prefix)
        assert await stats_main(opts, out) == 0
        rows = {(r["service"], r["operation"]): r for r in map(orjson.loads, out.getvalue().splitlines())}
        by_op: dict[tuple[str, str], list[Gen]] = defaultdict(list)
        for g in spans:
            by_op[(g.service, g.name)].append(g)
        assert set(rows) == set(by_op)
        for group, gens in by_op.items():
            row = rows[group]
            errors = sum(g.status == "STATUS_CODE_ERROR" for g in gens)
            assert (row["calls"], row["errors"]) == (len(gens), errors)
            assert row["error_rate"] == pytest.approx(errors / len(gens), abs=1e-6)
            for p in (50, 95, 99):
                error = rank_error([g.duration_ns for g in gens], row[f"p{p}_ms"], p)
                assert error <= (0.01 if len(gens) == BIG else 1 / len(gens)), (group, p, error)

        # --by status -c cart --every 10m: per bucket of the span's start, service + HTTP status.
        out = io.StringIO()
        opts = StatsOptions(components=("cart",), since="2h", every="10m", by=GroupBy.status, as_json=True,
                            limit=50, es_url=story.es_url, index_prefix=story.prefix)
        assert await stats_main(opts, out) == 0
        got = {(r["bucket"], r["status"]): (r["calls"], r["errors"]) for r in map(orjson.loads, out.getvalue().split())}
        want: dict[tuple[str, int | None], list[int]] = defaultdict(lambda: [0, 0])
        for g in spans:
            if g.service == "cart":
                start_ms = g.start_ns // 1_000_000
                bucket = datetime.fromtimestamp(start_ms // 600_000 * 600, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                want[(bucket, g.http_status)][0] += 1
                want[(bucket, g.http_status)][1] += g.status == "STATUS_CODE_ERROR"
        assert got == {k: tuple(v) for k, v in want.items()}

        # The table of the real command line, for one Component.
        cli = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "logpipe.cli.main", "trace", "stats", "-c", "pricing", "--since", "2h",
            "--by", "service", "--es-url", story.es_url, "--index-prefix", story.prefix,
        ], capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        table = cli.stdout.splitlines()
        assert table[0].split() == ["SERVICE", "CALLS", "ERRORS", "ERR%", "P50", "P95", "P99"]
        pricing_errors = sum(g.status == "STATUS_CODE_ERROR" for g in by_op[("pricing", "quote")])
        pricing = PER_GROUP + BIG
        pricing_errors += sum(g.status == "STATUS_CODE_ERROR" for g in by_op[("pricing", "GET /quotes")])
        assert table[1].split()[:4] == ["pricing", str(pricing), str(pricing_errors),
                                        f"{100 * pricing_errors / pricing:.1f}"]
        assert table[2].split()[:2] == ["(all)", str(pricing)]
        none = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "logpipe.cli.main", "trace", "stats", "-c", "nobody", "--es-url", story.es_url,
            "--index-prefix", story.prefix,
        ], capture_output=True, text=True, timeout=60)
        assert (none.returncode, none.stdout) == (1, "")
        assert "no spans of nobody" in none.stderr
    finally:
        proc.terminate()
        proc.wait(30)
