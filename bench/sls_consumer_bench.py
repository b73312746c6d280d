"""SLS-source throughput: documents/s from SLS logstores into Elasticsearch, against the same cluster's ceiling.

    python bench/sls_consumer_bench.py [--lines 200000] [--rounds 3] [--shards 4] [--es http://127.0.0.1:9200]

As ``bench/consumer_bench.py`` does for Kafka, per round on the same Elasticsearch:

1. **ceiling**: the same lines, parsed and encoded as the consumer would, posted by a tight ``_bulk``
   loop with the consumer's bulk size and concurrency (``consumer_bench.ceiling``);
2. **end to end**: the lines are first written to the local SLS server (a separate process, the
   real wire protocol: protobuf LogGroups, lz4 bodies, signatures) by the shipper's own SLS sink;
   then a :class:`ConsumerApp` with ``source: {type: sls}`` is timed from its first fetched record
   until every record is resolved (indexed and checkpointable): heartbeat, PullLogs through the
   SDK, records back into lines and headers, parse, bulk, check.

The local server stands in for the cloud: its own CPU (decoding, lz4) is on this machine too, which
a real SLS would not cost; the figure is a floor. The ratio end-to-end / ceiling is printed per round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import consumer_bench as kb

from consumer.app import ConsumerApp
from consumer.config import BulkConfig, ConsumerConfig
from consumer.es_client import make_client
from consumer.index_templates import remove_templates
from logpipe.core.envelope import LineRecord
from shipper.sinks.sls.config import SlsSinkConfig
from shipper.sinks.sls.sink import SlsSink

KEY_ID, SECRET = "bench-ak", "bench-secret-0123456789"


def start_server(shards: int) -> tuple[subprocess.Popen[bytes], str]:
    host = f"127.81.{random.randint(1, 254)}.{random.randint(1, 254)}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpipe.dev.services.sls", "--host", host, "--port", "80", "--shards", str(shards),
         "--key", f"{KEY_ID}:{SECRET}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import socket

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, 80), timeout=1).close()
            return proc, host
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the local SLS server did not start")


async def fill(host: str, project: str, records: list[LineRecord]) -> None:
    """Write the lines as the shipper does (its SLS sink, one LogGroup per file per request)."""
    sink = SlsSink(SlsSinkConfig.model_validate({
        "endpoint": f"http://{host}:80", "project": project, "access_key_id": KEY_ID, "access_key_secret": SECRET,
        "logstore": project + "-{log_type}", "max_in_flight": 8,
    }))
    await sink.start()
    try:
        step = 4096
        for i in range(0, len(records), step * 8):
            chunk = [records[j : j + step] for j in range(i, min(len(records), i + step * 8), step)]
            statuses = await asyncio.gather(*(sink.send(c) for c in chunk))
            assert all(s.name == "DELIVERED" for s in statuses), statuses
    finally:
        await sink.close()


def sls_config(args: argparse.Namespace, host: str, prefix: str, logstores: list[str]) -> ConsumerConfig:
    base = kb.config(args, prefix, "unused").model_dump(mode="python")
    base.pop("kafka")
    base["source"] = {
        "type": "sls", "endpoint": host, "project": prefix, "logstores": logstores, "consumer_group": f"{prefix}-g",
        "consumer_name": "bench", "access_key_id": KEY_ID, "access_key_secret": SECRET,
        "heartbeat_interval": "1s", "fetch_groups": 50, "max_inflight_pulls": args.pulls,
    }
    return ConsumerConfig.model_validate(base)


async def end_to_end(args: argparse.Namespace, host: str, records: list[LineRecord]) -> float:
    prefix = f"bench-sls-{uuid.uuid4().hex[:8]}"
    logstores = [f"{prefix}-{t}" for t in sorted({r.meta.log_type for r in records})]
    await fill(host, prefix, records)
    svc = ConsumerApp(sls_config(args, host, prefix, logstores), tune_gc=not args.default_gc)
    seen: list[int] = [0]
    first: list[float] = []
    orig = svc.loop.ingest.records

    def timed(tp: Any, recs: Any) -> None:
        if not first:
            first.append(time.perf_counter())
            first.append(kb.cpu_seconds())
        seen[0] += len(recs)
        orig(tp, recs)

    svc.loop.ingest.records = timed  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(svc.run())
    try:
        offsets = svc.loop.offsets
        while not (seen[0] >= len(records) and all(offsets.unresolved(tp) == 0 for tp in offsets.partitions())):
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - first[0]
        kb.CONSUMER_CPU_US.append((kb.cpu_seconds() - first[1]) / len(records) * 1e6)
        return len(records) / elapsed
    finally:
        svc.request_stop()
        await task
        es = make_client(svc.cfg.elasticsearch)
        await es.indices.delete(index=f"{prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        await remove_templates(es, prefix)
        await es.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bulk = BulkConfig()
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--pulls", type=int, default=4, help="PullLogs requests in flight (source.max_inflight_pulls)")
    ap.add_argument("--actions", type=int, default=bulk.max_actions)
    ap.add_argument("--bytes", type=kb.parse_bytes, default=bulk.max_bytes)
    ap.add_argument("--concurrency", type=int, default=bulk.concurrency)
    ap.add_argument("--refresh", default="1s")
    ap.add_argument("--kafka", default="127.0.0.1:9092", help="unused; the shared config helper wants it")
    ap.add_argument("--es", default="http://127.0.0.1:9200")
    ap.add_argument("--default-gc", action="store_true")
    ap.add_argument("--python-parser", action="store_true")
    args = ap.parse_args()
    records = kb.make_records(args.lines, uuid.uuid4().hex[:6])
    if not args.default_gc:
        kb.tune_gc()
    server, host = start_server(args.shards)
    try:
        warm = records[: min(len(records), 20_000)]
        await kb.ceiling(args, warm)
        await end_to_end(args, host, warm)
        kb.CONSUMER_CPU_US.clear()
        ceilings, e2es = [], []
        for r in range(args.rounds):
            if r % 2 == 0:
                c = await kb.ceiling(args, records)
                e = await end_to_end(args, host, records)
            else:
                e = await end_to_end(args, host, records)
                c = await kb.ceiling(args, records)
            ceilings.append(c)
            e2es.append(e)
            print(f"round {r + 1}: ceiling {c:,.0f} docs/s, SLS end-to-end {e:,.0f} docs/s, ratio {e / c:.2f}",
                  flush=True)
        c, e = statistics.median(ceilings), statistics.median(e2es)
        ratios = sorted(x / y for x, y in zip(e2es, ceilings, strict=True))
        print(
            f"sls lines={args.lines} shards={args.shards} pulls={args.pulls}: ceiling {c:,.0f} docs/s, "
            f"SLS end-to-end {e:,.0f} docs/s, median ratio {statistics.median(ratios):.2f} "
            f"(load {os.getloadavg()[0]:.1f}); consumer CPU {statistics.median(kb.CONSUMER_CPU_US):.0f} us/doc"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
