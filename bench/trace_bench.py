"""Trace processor throughput and latency: spans/s from Kafka into Elasticsearch against the same
cluster's ``_bulk`` ceiling, and span -> visible in Jaeger's API.

    python bench/trace_bench.py [--spans 20000] [--per-line 1,20] [--rounds 3] [--latency-spans 200]
                                [--kafka 127.0.0.1:9092] [--es http://127.0.0.1:9200]

Throughput, per round and per line shape (OTLP/JSON requests of 1 and of 20 spans, in protobuf's
JSON mapping as the OpenTelemetry SDK's encoder writes them: base64 ids, enum names, string
integers, SDK resource attributes), as ``bench/consumer_bench.py`` does for access lines:

1. **ceiling**: the span documents the consumer would write (the same lines parsed by the same
   parser into the same ``_bulk`` bodies) are built before timing and posted by a tight loop with
   the consumer's bulk size and concurrency — Elasticsearch's own indexing speed for them;
2. **end to end**: the same lines produced to a fresh topic before timing; a ``ConsumerApp`` timed
   from its first fetched record until every record is resolved.

Latency: a consumer runs on a topic of its own; single-span lines are produced one by one (every
``--gap`` seconds), and for each the time from the produce call to Jaeger's
``/api/traces/{id}`` returning it is measured (a private Jaeger over the bench's prefix, polled
every 50 ms); p50/p99/max printed. Targets (issue 11): ratio >= 0.8, p99 < 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consumer.app import ConsumerApp
from consumer.bulk import BulkBatcher, BulkRequest
from consumer.config import BulkConfig, ConsumerConfig
from consumer.es_client import BULK_FILTER, make_client
from consumer.index_templates import install_templates, remove_templates
from consumer.work import Work
from logpipe.cli.consume import tune_gc
from logpipe.core.envelope import LineRecord, SourceMeta, decode_headers
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.sharing import ServiceUseLock
from parsers import LineParser, Many, Parsed
from tests.integration.jaeger_api import private_jaeger

SPAN_TRACE = 20  # spans per trace
IN_ES: list[float] = []  # latency: seconds until the span is searchable in Elasticsearch


def _b64(n: int, size: int) -> str:
    return base64.b64encode(n.to_bytes(size, "big")).decode()


def kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def otlp_line(rng: random.Random, first: int, count: int, start_ns: int, service: str) -> bytes:
    spans = []
    for i in range(first, first + count):
        trace, pos = i // SPAN_TRACE + 1, i % SPAN_TRACE
        begin = start_ns + i * 1000
        spans.append(
            {
                "traceId": _b64((trace << 64) | 0xABC, 16),
                "spanId": _b64(i + 1, 8),
                **({"parentSpanId": _b64(i - pos + 1, 8)} if pos else {}),
                "name": f"GET /api/{pos % 5}",
                "kind": "SPAN_KIND_SERVER" if pos == 0 else "SPAN_KIND_CLIENT",
                "startTimeUnixNano": str(begin),
                "endTimeUnixNano": str(begin + rng.randint(100_000, 90_000_000)),
                "attributes": [
                    kv("http.request.method", "GET"),
                    kv("http.route", f"/api/{pos % 5}"),
                    kv("http.response.status_code", 200 if rng.random() > 0.02 else 503),
                    kv("net.peer.name", "orders"),
                ],
                "status": {"code": "STATUS_CODE_ERROR"} if rng.random() < 0.02 else {},
                "flags": 256,
            }
        )
    resource = [
        kv("service.name", service),
        kv("telemetry.sdk.language", "python"),
        kv("telemetry.sdk.name", "opentelemetry"),
        kv("telemetry.sdk.version", "1.45.2"),
        kv("k8s.namespace.name", "prod"),
        kv("k8s.pod.name", f"{service}-7d9f"),
    ]
    return orjson.dumps(
        {
            "resourceSpans": [
                {"resource": {"attributes": resource}, "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}
            ]
        }
    )


def make_records(spans: int, per_line: int, run: str) -> list[LineRecord]:
    rng = random.Random(11)
    start_ns = time.time_ns() - 60_000_000_000
    metas = [
        SourceMeta(
            "node-1",
            "prod",
            f"svc-{k}-7d9f",
            f"uid-{k}",
            "app",
            f"svc-{k}",
            "trace",
            f"/var/log/svc-{k}/trace.log",
            f"fingerprint::{run}-{k}",
        )
        for k in range(8)
    ]
    offsets = [0] * len(metas)
    out: list[LineRecord] = []
    now_ms = int(time.time() * 1000)
    for n, first in enumerate(range(0, spans, per_line)):
        k = n % len(metas)
        value = otlp_line(rng, first, min(per_line, spans - first), start_ns, metas[k].component)
        out.append(LineRecord(metas[k], offsets[k], value, now_ms))
        offsets[k] += len(value) + 1
    return out


def config(args: argparse.Namespace, prefix: str, topic: str) -> ConsumerConfig:
    return ConsumerConfig.model_validate(
        {
            "kafka": {
                "bootstrap": args.kafka,
                "group_id": f"{prefix}-g",
                "topics": [topic],
                "dead_letter_topic": f"{prefix}-dlq",
                "commit_interval": "200ms",
            },
            "elasticsearch": {"url": args.es},
            "index": {"prefix": prefix, "retention_days": 36500},
            "bulk": {"flush_interval": args.flush},
            "http": {"host": "127.0.0.1", "port": 0},
        }
    )


def prebuilt_bodies(records: list[LineRecord], prefix: str) -> tuple[list[BulkRequest], int]:
    bulk = BulkConfig()
    parser = LineParser(None, index_prefix=prefix)
    batcher = BulkBatcher(bulk.max_bytes, bulk.max_actions)
    out: list[BulkRequest] = []
    docs = 0
    for i, r in enumerate(records):
        res = parser.parse(r.value, decode_headers(r.headers()))
        for part in res.parts if isinstance(res, Many) else (res,):
            assert isinstance(part, Parsed), part
            w = Work(
                topic="t",
                partition=0,
                generation=1,
                offsets=[i],
                raw=b"",
                headers=[],
                key=None,
                kafka_offset=i,
                doc=part.doc,
                log_type=part.log_type,
                index=part.index or "",
                doc_id=part.doc_id or "",
            )
            docs += 1
            closed = batcher.add(w)
            if closed is not None:
                out.append(closed)
    last = batcher.take()
    if last is not None:
        out.append(last)
    return out, docs


async def ceiling(args: argparse.Namespace, records: list[LineRecord], spans: int) -> float:
    prefix = f"bench-tceil-{uuid.uuid4().hex[:8]}"
    cfg = config(args, prefix, "unused")
    es = make_client(cfg.elasticsearch)
    try:
        await install_templates(es, cfg.index)
        requests, _ = prebuilt_bodies(records, prefix)
        queue = list(reversed([req.body() for req in requests]))
        errors = 0

        async def worker() -> None:
            nonlocal errors
            while queue:
                resp = await es.bulk(operations=queue.pop(), filter_path=BULK_FILTER)  # type: ignore[arg-type]
                errors += bool(resp.body.get("errors"))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(cfg.bulk.concurrency)))
        elapsed = time.perf_counter() - started
        if errors:
            raise RuntimeError(f"{errors} ceiling bulks had item errors")
        return spans / elapsed
    finally:
        await es.indices.delete(index=f"{prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_templates(es, prefix)
        await es.close()


async def produce(args: argparse.Namespace, topic: str, records: list[LineRecord]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=args.kafka,
        acks="all",
        linger_ms=20,
        max_batch_size=1 << 20,
        max_request_size=8 << 20,
        compression_type="lz4",
    )
    await producer.start()
    try:
        futs = [await producer.send(topic, value=r.value, key=r.key, headers=r.headers()) for r in records]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


CPU_US: list[float] = []  # the consumer's own CPU per span in each end-to-end phase (this process)


async def end_to_end(args: argparse.Namespace, records: list[LineRecord], spans: int) -> float:
    prefix = f"bench-te2e-{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}-trace"
    admin = AIOKafkaAdminClient(bootstrap_servers=args.kafka)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    await produce(args, topic, records)
    app = ConsumerApp(config(args, prefix, topic))
    first: list[float] = []
    orig = app.loop.ingest.records

    def timed(tp: Any, recs: Any) -> None:
        if not first:
            first.append(time.perf_counter())
            first.append(time.process_time())
        orig(tp, recs)

    app.loop.ingest.records = timed  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(app.run())
    try:
        while True:
            offsets = app.loop.offsets
            done = sum((st.position or 0) for tp in offsets.partitions() if (st := offsets.state(tp)))
            if done >= len(records):
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        CPU_US.append((time.process_time() - first[1]) / spans * 1e6)
        return spans / (time.perf_counter() - first[0])
    finally:
        app.request_stop()
        await task
        es = make_client(app.cfg.elasticsearch)
        await es.indices.delete(index=f"{prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_templates(es, prefix)
        await es.close()
        await admin.delete_topics([topic, f"{prefix}-dlq"])
        await admin.close()


def _in_es(es_url: str, prefix: str, trace_hex: str) -> bool:
    body = orjson.dumps({"query": {"term": {"traceID": trace_hex}}})
    req = urllib.request.Request(
        f"{es_url}/{prefix}-jaeger-span-*/_count", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(orjson.loads(resp.read())["count"]) > 0
    except Exception:
        return False


def _visible(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(orjson.loads(resp.read()).get("data"))
    except Exception:
        return False


async def latency(args: argparse.Namespace) -> list[float]:
    """Seconds from producing a one-span line to Jaeger returning its trace, per span."""
    prefix = f"bench-tlat-{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}-trace"
    admin = AIOKafkaAdminClient(bootstrap_servers=args.kafka)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    app = ConsumerApp(config(args, prefix, topic))
    task = asyncio.create_task(app.run())
    producer = AIOKafkaProducer(bootstrap_servers=args.kafka, acks="all", linger_ms=0)
    await producer.start()
    meta = SourceMeta("node-1", "prod", "lat-7d9f", "uid-lat", "app", "lat", "trace", "/lat/trace.log", f"fp::{prefix}")
    rng = random.Random(5)
    out: list[float] = []
    try:
        with private_jaeger(args.es, prefix, Path(tempfile.mkdtemp(prefix="trace-bench-"))) as jaeger:
            await asyncio.sleep(3)  # the consumer has joined its group and installed the templates
            for n in range(args.latency_spans):
                i = n * SPAN_TRACE  # a root span of its own trace
                value = otlp_line(rng, i, 1, time.time_ns(), "lat")
                trace_hex = format(((i // SPAN_TRACE + 1) << 64) | 0xABC, "032x")
                rec = LineRecord(meta, n * 1000, value, int(time.time() * 1000))
                sent = time.perf_counter()
                await producer.send_and_wait(topic, value=value, key=rec.key, headers=rec.headers())
                url = f"{jaeger}/api/traces/{trace_hex}"
                while not await asyncio.to_thread(_in_es, args.es, prefix, trace_hex):
                    await asyncio.sleep(0.05)
                IN_ES.append(time.perf_counter() - sent)
                while not await asyncio.to_thread(_visible, url):
                    if time.perf_counter() - sent > 30:
                        raise RuntimeError(f"span {n} not visible in Jaeger after 30 s")
                    await asyncio.sleep(0.05)
                out.append(time.perf_counter() - sent)
                await asyncio.sleep(args.gap)
    finally:
        await producer.stop()
        app.request_stop()
        await task
        es = make_client(app.cfg.elasticsearch)
        await es.indices.delete(index=f"{prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_templates(es, prefix)
        await es.close()
        await admin.delete_topics([topic, f"{prefix}-dlq"])
        await admin.close()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--per-line", default="1,20")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency-spans", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.05)
    ap.add_argument("--flush", default="100ms", help="the consumer's bulk.flush_interval (its default)")
    ap.add_argument("--kafka", default="127.0.0.1:9092")
    ap.add_argument("--es", default="http://127.0.0.1:9200")
    args = ap.parse_args()
    tune_gc()
    # Hold the services as the tests do: another process's outage test waits until the bench is done.
    use = ServiceUseLock(DevPaths.from_env().in_use)
    use.shared()
    try:
        await run(args)
    finally:
        use.release()


async def run(args: argparse.Namespace) -> None:
    for per_line in (int(x) for x in args.per_line.split(",") if x):
        records = make_records(args.spans, per_line, uuid.uuid4().hex[:6])
        warm = make_records(min(args.spans, 10_000), per_line, uuid.uuid4().hex[:6])
        await ceiling(args, warm, min(args.spans, 10_000))  # warm-up of both sides, not counted
        await end_to_end(args, warm, min(args.spans, 10_000))
        ceilings, e2es = [], []
        CPU_US.clear()
        for r in range(args.rounds):
            if r % 2 == 0:
                c = await ceiling(args, records, args.spans)
                e = await end_to_end(args, records, args.spans)
            else:
                e = await end_to_end(args, records, args.spans)
                c = await ceiling(args, records, args.spans)
            ceilings.append(c)
            e2es.append(e)
            print(
                f"{per_line} span(s)/line, round {r + 1}: ceiling {c:,.0f} spans/s, end-to-end {e:,.0f} "
                f"spans/s, ratio {e / c:.2f}, consumer CPU {CPU_US[-1]:.0f} us/span",
                flush=True,
            )
        ratios = sorted(x / y for x, y in zip(e2es, ceilings, strict=True))
        print(
            f"{per_line} span(s)/line, {args.spans} spans: ceiling {statistics.median(ceilings):,.0f} spans/s, "
            f"end-to-end {statistics.median(e2es):,.0f} spans/s, median ratio {statistics.median(ratios):.2f}, "
            f"consumer CPU {statistics.median(CPU_US):.0f} us/span (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    if args.latency_spans:
        lat = sorted(await latency(args))
        p = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]  # noqa: E731
        es_lat = sorted(IN_ES)
        q = lambda xs, f: xs[min(len(xs) - 1, int(f * len(xs)))]  # noqa: E731
        print(
            f"span -> visible in Jaeger's API, {len(lat)} spans: p50 {p(0.5) * 1000:.0f} ms, "
            f"p99 {p(0.99) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms (searchable in Elasticsearch: "
            f"p50 {q(es_lat, 0.5) * 1000:.0f} ms, p99 {q(es_lat, 0.99) * 1000:.0f} ms; load {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    asyncio.run(main())
