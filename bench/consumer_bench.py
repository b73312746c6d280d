"""Consumer throughput: documents/s from Kafka into Elasticsearch, against the same cluster's ceiling.

    python bench/consumer_bench.py [--lines 200000] [--actions 4000] [--bytes 4MiB] [--concurrency 3]
                                   [--refresh 1s] [--rounds 5] [--kafka 127.0.0.1:9092] [--es http://127.0.0.1:9200]
    python bench/consumer_bench.py --steps [--lines 50000]   # CPU per step of the per-record path, no services
    python bench/consumer_bench.py --python-parser ...       # end to end without the native encoder
    python bench/consumer_bench.py --mix ...                 # a mixed stream (bench/mixed_stream_gen.py)

Per round, on the same Elasticsearch:

1. **ceiling**: the documents the consumer would write (the same lines parsed by the same parser,
   encoded as the same ``_bulk`` bodies) are built *before* timing, then posted by a tight loop with
   the same bulk size and concurrency — nothing but Elasticsearch's own indexing speed;
2. **end to end**: the same lines are produced to a fresh topic *before* timing (with the shipper's
   headers), then a :class:`ConsumerApp` is started and timed from its first fetched record until
   every record is resolved (indexed and committable) — fetch, parse, serialize, bulk, check.

Each round writes into fresh indices (deleted after), so both sides pay for creating the same
mapping. The ratio end-to-end / ceiling is the figure of merit (target >= 0.8). Bulk size and
concurrency default to the consumer's own defaults (``consumer/config.py`` BulkConfig). 200 000
lines a phase by default: with 100 000 the ceiling phase (~2.5 s) ends before Elasticsearch's merges
get going while the slower end-to-end phase pays for them, which understates the ratio of a
sustained load (measured: Elasticsearch 43-45 µs/doc in the short ceiling vs 49-51 end to end;
~50 and ~50 at 200 000). Each run also prints who used the CPU per document in each phase
(Elasticsearch and Kafka read from the pid files of ``logpipe dev up``: 0 for services started
otherwise; "other" is the rest of the machine, above 0 when a neighbour disturbed the run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from access_log_gen import line as gen_line
from mixed_stream_gen import make_mixed_records

from consumer.app import ConsumerApp
from consumer.bulk import BulkBatcher, BulkRequest, index_name, ingested_now
from consumer.config import BulkConfig, ConsumerConfig
from consumer.es_client import BULK_FILTER, make_client
from consumer.index_templates import install_templates, remove_templates
from consumer.work import Work
from logpipe.cli.consume import tune_gc
from logpipe.core.envelope import LineRecord, SourceMeta, decode_headers, document_id
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.processes import PidRecord
from parsers import LineParser, Many, Parsed
from parsers.access_encoder import NATIVE_AVAILABLE, AccessEncoder
from parsers.fieldmap import FieldMap


def make_records(n: int, run: str) -> list[LineRecord]:
    """``n`` access lines from 20 files, as the shipper would ship them."""
    rng = random.Random(7)
    out: list[LineRecord] = []
    offsets = [0] * 20
    metas = [
        SourceMeta(
            "node-1",
            "prod",
            f"pay-gw-{k}",
            f"uid-{k}",
            "app",
            "pay-gw",
            "access",
            f"/var/log/pay-gw-{k}/access.log",
            f"fingerprint::{run}-{k}",
        )
        for k in range(20)
    ]
    now_ms = int(time.time() * 1000)
    for i in range(n):
        k = i % 20
        value = gen_line(rng, i)
        out.append(LineRecord(metas[k], offsets[k], value, now_ms))
        offsets[k] += len(value) + 1
    return out


def config(args: argparse.Namespace, prefix: str, topic: str | list[str]) -> ConsumerConfig:
    return ConsumerConfig.model_validate(
        {
            "kafka": {
                "bootstrap": args.kafka,
                "group_id": f"{prefix}-g",
                "topics": topic if isinstance(topic, list) else [topic],
                "dead_letter_topic": f"{prefix}-dlq",
                "max_poll_records": args.actions,
            },
            "elasticsearch": {"url": args.es},
            "index": {"prefix": prefix, "refresh_interval": args.refresh, "retention_days": 36500},
            "bulk": {"max_actions": args.actions, "max_bytes": args.bytes, "concurrency": args.concurrency},
            "http": {"host": "127.0.0.1", "port": 0},
            "native_encoder": not args.python_parser,
        }
    )


def prebuilt_bodies(records: list[LineRecord], prefix: str, args: argparse.Namespace) -> list[BulkRequest]:
    parser = LineParser(None, index_prefix=prefix)  # as the consumer builds it
    batcher = BulkBatcher(args.bytes, args.actions)
    out: list[BulkRequest] = []
    now = time.time()
    for i, r in enumerate(records):
        res = parser.parse(r.value, decode_headers(r.headers()))
        parts = res.parts if isinstance(res, Many) else (res,)  # a span: its document and its service's
        for j, part in enumerate(parts):
            assert isinstance(part, Parsed), part
            w = Work(
                topic="t",
                partition=0,
                generation=1,
                offsets=[i],
                raw=r.value,
                headers=[],
                key=None,
                kafka_offset=i,
                doc=part.doc,
                log_type=part.log_type,
                index=part.index or index_name(prefix, part.log_type, part.doc, now),
                doc_id=part.doc_id or document_id(r.meta.file_id, r.offset if len(parts) == 1 else f"{r.offset}/{j}"),
            )
            closed = batcher.add(w)
            if closed is not None:
                out.append(closed)
    last = batcher.take()
    if last is not None:
        out.append(last)
    return out


async def ceiling(args: argparse.Namespace, records: list[LineRecord]) -> float:
    """Docs/s of a tight loop posting pre-built bodies with the consumer's bulk size and concurrency."""
    prefix = f"bench-ceil-{uuid.uuid4().hex[:8]}"
    cfg = config(args, prefix, "unused")
    es = make_client(cfg.elasticsearch)
    try:
        await install_templates(es, cfg.index)
        bodies = [req.body() for req in prebuilt_bodies(records, prefix, args)]
        queue = list(reversed(bodies))
        errors = 0

        async def worker() -> None:
            nonlocal errors
            while queue:
                body = queue.pop()
                # The response the consumer asks for (every item's status): the same work for Elasticsearch.
                resp = await es.bulk(operations=body, filter_path=BULK_FILTER)  # type: ignore[arg-type]
                errors += bool(resp.body.get("errors"))

        shares = CpuShares()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        SHARES["ceiling"].append(shares.per_doc(len(records)))
        if errors:
            raise RuntimeError(f"{errors} ceiling bulks had item errors")
        return len(records) / elapsed
    finally:
        await es.indices.delete(index=f"{prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_templates(es, prefix)
        await es.close()


def cpu_seconds() -> float:
    """CPU time (user + system) of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


CONSUMER_CPU_US: list[float] = []  # per end-to-end run: consumer CPU microseconds per document
_TICK = os.sysconf("SC_CLK_TCK")


def service_cpu(name: str) -> float:
    """CPU seconds used so far by a dev service started by ``logpipe dev up`` (all its processes)."""
    rec = PidRecord.load(DevPaths.from_env().pidfile(name))
    total = 0
    for pid in rec.members() if rec is not None else []:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2 :].split()
        total += int(rest[11]) + int(rest[12])
    return total / _TICK


def machine_cpu() -> float:
    """CPU seconds all processes of the machine used so far (busy, not idle or iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(f) - f[3] - f[4]) / _TICK


class CpuShares:
    """Who used the CPU during a timed phase, per document: Elasticsearch, the Kafka broker, this
    process, and everything else on the machine (other jobs make a ceiling or a run slower)."""

    def __init__(self) -> None:
        self.start = (service_cpu("elasticsearch"), service_cpu("kafka"), cpu_seconds(), machine_cpu())

    def per_doc(self, docs: int) -> dict[str, float]:
        now = (service_cpu("elasticsearch"), service_cpu("kafka"), cpu_seconds(), machine_cpu())
        es, kafka, me, busy = (b - a for a, b in zip(self.start, now, strict=True))
        us = 1e6 / docs
        return {"es": es * us, "kafka": kafka * us, "bench": me * us, "other": max(0.0, busy - es - kafka - me) * us}


SHARES: dict[str, list[dict[str, float]]] = {"ceiling": [], "end to end": []}


def shares_line(kind: str) -> str:
    rows = SHARES[kind]
    if not rows:
        return ""
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    return f"{kind}: " + ", ".join(f"{k} {v:.0f}" for k, v in med.items())


async def end_to_end(args: argparse.Namespace, records: list[LineRecord]) -> float:
    """Docs/s of the consumer indexing records already waiting in Kafka (also records its CPU per doc)."""
    prefix = f"bench-e2e-{uuid.uuid4().hex[:8]}"
    topics = [f"{prefix}-{t}" for t in sorted({r.meta.log_type for r in records})]  # a topic per log type
    admin = AIOKafkaAdminClient(bootstrap_servers=args.kafka)
    await admin.start()
    await admin.create_topics([NewTopic(t, num_partitions=args.partitions, replication_factor=1) for t in topics])
    producer = AIOKafkaProducer(
        bootstrap_servers=args.kafka, acks="all", linger_ms=20, max_batch_size=1 << 20, compression_type="lz4"
    )
    await producer.start()
    futs = [await producer.send(f"{prefix}-{r.meta.log_type}", value=r.value, key=r.key, headers=r.headers())
            for r in records]
    await asyncio.gather(*futs)
    await producer.stop()

    svc = ConsumerApp(config(args, prefix, topics), tune_gc=not args.default_gc)
    first_fetch: list[float] = []
    phase: list[CpuShares] = []
    orig_ingest = svc.loop.ingest.records

    def timed_ingest(tp: Any, recs: Any) -> None:
        if not first_fetch:
            first_fetch.append(time.perf_counter())
            first_fetch.append(cpu_seconds())
            phase.append(CpuShares())
        orig_ingest(tp, recs)

    svc.loop.ingest.records = timed_ingest  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(svc.run())
    try:
        while True:
            offsets = svc.loop.offsets
            done = sum((st.position or 0) for tp in offsets.partitions() if (st := offsets.state(tp)))
            if done >= len(records):
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - first_fetch[0]
        CONSUMER_CPU_US.append((cpu_seconds() - first_fetch[1]) / len(records) * 1e6)
        SHARES["end to end"].append(phase[0].per_doc(len(records)))
        return len(records) / elapsed
    finally:
        svc.request_stop()
        await task
        es = make_client(svc.cfg.elasticsearch)
        await es.indices.delete(index=f"{prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_templates(es, prefix)
        await es.close()
        await admin.delete_topics([*topics, f"{prefix}-dlq"])
        await admin.close()


def parse_bytes(text: str) -> int:
    units = {"kib": 1024, "mib": 1024**2, "kb": 1000, "mb": 1000**2}
    t = text.strip().lower()
    for u, m in units.items():
        if t.endswith(u):
            return int(float(t[: -len(u)]) * m)
    return int(t)


def steps(n: int) -> None:
    """CPU per document of each step of the consumer's per-record path, in-process, no services:
    best of 5 runs of ``n`` records (``time.process_time``), as the loop runs them."""
    records = make_records(n, "steps")
    kafka = [(r.value, r.headers(), r.key) for r in records]
    best: dict[str, float] = {}
    for _ in range(5):
        pt = time.process_time
        t0 = pt()
        hdrs = [decode_headers(h) for _, h, _ in kafka]
        t1 = pt()
        parser = LineParser(None)
        results = [parser.parse(v, h) for (v, _, _), h in zip(kafka, hdrs, strict=True)]
        t2 = pt()
        works: list[Work] = []
        now = time.time()
        for i, ((v, h, k), res) in enumerate(zip(kafka, results, strict=True)):
            assert isinstance(res, Parsed)
            w = Work("t", 0, 1, [i], v, h, k, i, doc=res.doc, log_type=res.log_type)
            w.index = index_name("logpipe", res.log_type, res.doc, now)
            w.doc_id = document_id(res.doc["logpipe"]["file_id"], res.doc["log"]["offset"])
            works.append(w)
        t3 = pt()
        batcher = BulkBatcher(4 << 20, 4000)
        for w in works:
            batcher.add(w)
        t4 = pt()
        for name, a, b in (("headers", t0, t1), ("parse", t1, t2), ("work+index+id", t2, t3), ("encode", t3, t4)):
            best[name] = min(best.get(name, float("inf")), (b - a) / n * 1e6)
        del hdrs, results, works, batcher
        if NATIVE_AVAILABLE:  # the consumer's fast path for the same records (parsers/access_encoder.py)
            encode = AccessEncoder(FieldMap(None), "logpipe").encode
            stamp = ingested_now()
            t5 = pt()
            items = [encode(v, h, stamp) for v, h, _ in kafka]
            t6 = pt()
            batcher = BulkBatcher(4 << 20, 4000)
            declined = 0
            for i, ((v, h, k), item) in enumerate(zip(kafka, items, strict=True)):
                if item is None:  # left to the Python path (not timed here)
                    declined += 1
                    continue
                w = Work("t", 0, 1, [i], v, h, k, i, None, "access")
                w.item, w.index, w.doc_id = item
                batcher.add(w)
            t7 = pt()
            for name, a, b in (("native encode", t5, t6), ("native work+batch", t6, t7)):
                best[name] = min(best.get(name, float("inf")), (b - a) / n * 1e6)
            del items, batcher
    python = ("headers", "parse", "work+index+id", "encode")
    print("python path: " + "  ".join(f"{k} {best[k]:.1f}" for k in python), end="")
    print(f"  total {sum(best[k] for k in python):.1f} us/doc")
    if NATIVE_AVAILABLE:
        native = ("native encode", "native work+batch")
        print("native path: " + "  ".join(f"{k} {best[k]:.1f}" for k in native), end="")
        print(f"  total {sum(best[k] for k in native):.1f} us/doc ({declined} of {n} lines left to Python)")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bulk = BulkConfig()  # the consumer's defaults
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--actions", type=int, default=bulk.max_actions)
    ap.add_argument("--bytes", type=parse_bytes, default=bulk.max_bytes)
    ap.add_argument("--concurrency", type=int, default=bulk.concurrency)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--refresh", default="1s")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kafka", default="127.0.0.1:9092")
    ap.add_argument("--es", default="http://127.0.0.1:9200")
    ap.add_argument("--default-gc", action="store_true", help="keep Python's default GC thresholds")
    ap.add_argument("--steps", action="store_true", help="only the per-step CPU cost, no services")
    ap.add_argument("--python-parser", action="store_true", help="end to end without the native encoder")
    ap.add_argument("--mix", action="store_true",
                    help="40%% JSON access, 40%% CRI stdout (some stack traces), 15%% app, 5%% spans")
    args = ap.parse_args()
    if args.steps:
        tune_gc()
        steps(args.lines)
        return

    run = uuid.uuid4().hex[:6]
    records = make_mixed_records(args.lines, run) if args.mix else make_records(args.lines, run)
    if not args.default_gc:
        tune_gc()  # as `logpipe consume` does
    # Warm-up of both sides, not counted: Elasticsearch's JIT and caches (a freshly started node
    # indexes at half speed for its first ~100 000 documents), the broker's and the consumer's.
    warm = records[: min(len(records), 50_000)]
    await ceiling(args, warm)
    await end_to_end(args, warm)
    for kind in SHARES.values():
        kind.clear()
    CONSUMER_CPU_US.clear()
    ceilings: list[float] = []
    e2es: list[float] = []
    for r in range(args.rounds):
        # Alternate the order so a slow phase of the (shared) machine does not always favour one side.
        if r % 2 == 0:
            c = await ceiling(args, records)
            e = await end_to_end(args, records)
        else:
            e = await end_to_end(args, records)
            c = await ceiling(args, records)
        ceilings.append(c)
        e2es.append(e)
        print(f"round {r + 1}: ceiling {c:,.0f} docs/s, end-to-end {e:,.0f} docs/s, ratio {e / c:.2f}", flush=True)
    c, e = statistics.median(ceilings), statistics.median(e2es)
    ratios = sorted(x / y for x, y in zip(e2es, ceilings, strict=True))
    load = f"{os.getloadavg()[0]:.1f}"
    print(
        f"{'mix ' if args.mix else ''}lines={args.lines} actions={args.actions} bytes={args.bytes} "
        f"concurrency={args.concurrency} "
        f"refresh={args.refresh}: ceiling {c:,.0f} docs/s, end-to-end {e:,.0f} docs/s, "
        f"ratio of medians {e / c:.2f}, median ratio {statistics.median(ratios):.2f} (load {load}); "
        f"consumer CPU {statistics.median(CONSUMER_CPU_US):.0f} us/doc "
        f"(= {1e6 / statistics.median(CONSUMER_CPU_US):,.0f} docs/s per core)"
    )
    print(
        "CPU us per document, medians (bench = the ceiling's loop / the consumer; other = the rest of the "
        f"machine): {shares_line('ceiling')}; {shares_line('end to end')}"
    )


if __name__ == "__main__":
    asyncio.run(main())
