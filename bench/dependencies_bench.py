"""Dependency stage throughput: span links/s from the links topic to Jaeger's dependency documents.

    python bench/dependencies_bench.py [--traces 20000] [--spans 7] [--partitions 1] [--summaries both|on|off]
                                       [--store-rounds N]
                                       [--kafka 127.0.0.1:9092] [--es http://127.0.0.1:9200]

The link records of ``--traces`` traces (``--spans`` each: a chain of services, client/server pairs)
are produced to a fresh links topic *before* timing; then one :class:`DependencyStage` is timed from
its first fetched link until every link's offset is resolved — join, linker, the realtime ``_mget``
of the stored traces, the trace documents (``refresh=wait_for``) and the bucket rollups. Compare the
figure with the spans/s of the consumer (docs/BENCHMARKS.md): one link is produced per span.

``--summaries both`` (the default) runs the stage twice on the same links, with trace summaries off
and on (``trace_summaries.enabled``), and prints the stage's own CPU time per link of each
(``time.process_time`` of this process; Elasticsearch's work is not in it). That CPU includes the
loop's idle polling, which grows with wall time on a loaded machine, so ``--store-rounds N`` also
times the store step alone (``DependencyStore.write_traces`` + ``rollup``, where summaries are
built and written), alternating off and on N times over the same traces, and prints the median
CPU per span of each and their difference: what maintaining the summaries adds per span.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from consumer.config import ConsumerConfig, ElasticsearchConfig, IndexConfig
from consumer.dependencies.join import TraceFlush
from consumer.dependencies.link import SpanLink
from consumer.dependencies.stage import DependencyStage
from consumer.dependencies.store import DependencyStore
from consumer.dependencies.summary import summarize, summary_document, unchanged
from consumer.dependencies.templates import install_dependency_templates, remove_dependency_templates
from consumer.es_client import make_client
from consumer.index_templates import install_templates, remove_templates


def trace_links(i: int, spans: int, now_us: int) -> list[SpanLink]:
    t = f"{i + 1:032x}"
    out = [SpanLink(t, f"{1:016x}", (), "svc-0", "server", False, now_us, "", "GET /api/item", 90_000, 200)]
    for k in range(1, spans):
        kind = "client" if k % 2 else "server"
        service = f"svc-{(k + 1) // 2}"
        out.append(SpanLink(t, f"{k + 1:016x}", (f"{k:016x}",), service, kind, k == spans - 1, now_us + k, "",
                            f"op-{k}", 80_000 - k * 1000, 200 if kind == "server" else 0))
    return out


async def store_rounds(args: argparse.Namespace) -> None:
    """The store step alone, summaries off and on alternately: median CPU µs per span of each."""
    name = f"bench-store-{uuid.uuid4().hex[:8]}"
    cfg = IndexConfig(prefix=name)
    es = make_client(ElasticsearchConfig(url=args.es))
    await install_templates(es, cfg)
    await install_dependency_templates(es, cfg)
    now_us = int(time.time()) * 1_000_000
    per_span: dict[bool, list[float]] = {False: [], True: []}
    try:
        for r in range(args.store_rounds):
            for summaries in (False, True) if r % 2 == 0 else (True, False):
                # Fresh trace ids each pass: every pass writes new traces, as a live stage mostly does.
                base = (r * 2 + summaries) * args.traces
                traces = [trace_links(base + i, args.spans, now_us) for i in range(args.traces)]
                store = DependencyStore(es, name, 300, summary_horizon=3600 if summaries else None)
                c0 = time.process_time()
                for b in range(0, len(traces), 500):
                    batch = [TraceFlush(t[0].trace_id, 0, tuple(t), ()) for t in traces[b:b + 500]]
                    written = await store.write_traces(batch)
                    await store.rollup(written.buckets)
                per_span[summaries].append((time.process_time() - c0) / (args.traces * args.spans) * 1e6)
    finally:
        await es.indices.delete(index=f"{name}-*", ignore_unavailable=True, allow_no_indices=True)
        await remove_dependency_templates(es, name)
        await remove_templates(es, name)
        await es.close()
    # The summaries' own work without any I/O: build, compare, serialise (best of 3, the least disturbed).
    traces = [trace_links(i, args.spans, now_us) for i in range(args.traces)]
    best = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        for links in traces:
            content = summarize(links[0].trace_id, links)
            unchanged(None, content)
            orjson.dumps(summary_document(content, None, "2026-12-02T00:00:00Z"))
        best = min(best, (time.process_time() - c0) / (args.traces * args.spans) * 1e6)
    print(f"summary build + serialise alone: {best:.2f} µs of CPU per span")
    off, on = statistics.median(per_span[False]), statistics.median(per_span[True])
    rounds = " ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(per_span[False], per_span[True], strict=True))
    print(f"store step, {args.store_rounds} rounds (off/on µs per span: {rounds}): median {off:.1f} -> {on:.1f};"
          f" trace summaries add {on - off:.1f} µs of CPU per span")


async def main(args: argparse.Namespace) -> None:
    if args.store_rounds:
        await store_rounds(args)
        return
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.summaries]
    cpu: dict[bool, float] = {}
    for summaries in modes:
        cpu[summaries] = await run_once(args, summaries)
    if len(cpu) == 2:
        print(f"trace summaries add {cpu[True] - cpu[False]:.1f} µs of stage CPU per span"
              f" ({cpu[False]:.1f} -> {cpu[True]:.1f} µs/link)")


async def run_once(args: argparse.Namespace, summaries: bool) -> float:
    """One stage over fresh links; returns its CPU µs per link."""
    name = f"bench-deps-{uuid.uuid4().hex[:8]}"
    cfg = ConsumerConfig.model_validate({
        "kafka": {"bootstrap": args.kafka, "group_id": name},
        "elasticsearch": {"url": args.es},
        "index": {"prefix": name},
        "trace_dependencies": {"topic": f"{name}-links", "horizon": "1s", "flush_interval": "500ms"},
        "trace_summaries": {"enabled": summaries},
    })
    admin = AIOKafkaAdminClient(bootstrap_servers=args.kafka)
    await admin.start()
    await admin.create_topics([NewTopic(cfg.trace_dependencies.topic, args.partitions, 1)])
    es = make_client(cfg.elasticsearch)
    await install_templates(es, cfg.index)
    now_us = int(time.time()) * 1_000_000
    producer = AIOKafkaProducer(bootstrap_servers=args.kafka, acks="all", linger_ms=20)
    await producer.start()
    total = 0
    for i in range(args.traces):
        for link in trace_links(i, args.spans, now_us):
            await producer.send(cfg.trace_dependencies.topic, link.encode(), key=link.trace_id.encode())
            total += 1
    await producer.flush()
    await producer.stop()

    stage = DependencyStage(cfg, es)
    task = asyncio.create_task(stage.run())
    try:
        while stage.links_read == 0:
            await asyncio.sleep(0.01)
        t0, c0 = time.monotonic(), time.process_time()
        while not (stage.links_read >= total and len(stage.join) == 0 and _resolved(stage, total)):
            await asyncio.sleep(0.05)
        elapsed, cpu_s = time.monotonic() - t0, time.process_time() - c0
    finally:
        stage.request_stop()
        await task
    # The horizon (1 s) and one flush interval are waiting, not work: reported beside the rate.
    per_link = cpu_s / total * 1e6
    print(f"summaries {'on ' if summaries else 'off'}: {total} links of {args.traces} traces in {elapsed:.2f} s:"
          f" {total / elapsed:,.0f} links/s, {args.traces / elapsed:,.0f} traces/s (includes the 1 s horizon);"
          f" stage CPU {per_link:.1f} µs/link")
    await es.indices.delete(index=f"{name}-*", ignore_unavailable=True, allow_no_indices=True)
    await remove_dependency_templates(es, name)  # first: they use the settings component
    await remove_templates(es, name)
    await es.close()
    await admin.delete_topics([cfg.trace_dependencies.topic])
    await admin.close()
    return per_link


def _resolved(stage: DependencyStage, total: int) -> bool:
    return sum(stage.committable.values()) >= total  # each partition's links start at offset 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--traces", type=int, default=20_000)
    p.add_argument("--spans", type=int, default=7)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--summaries", choices=("both", "on", "off"), default="both")
    p.add_argument("--store-rounds", type=int, default=0, help="time the store step alone, this many rounds")
    p.add_argument("--kafka", default="127.0.0.1:9092")
    p.add_argument("--es", default="http://127.0.0.1:9200")
    asyncio.run(main(p.parse_args()))
