"""End-to-end latency: a line appended to a pod's log until it is searchable in Elasticsearch.

    python bench/latency_bench.py [--samples 200] [--rate 10] [--background 200] [--fast-poll]
                                  [--kafka 127.0.0.1:9092] [--es http://127.0.0.1:9200]

Runs ``logpipe ship`` and ``logpipe consume`` as processes on a kubelet-shaped tree, with their
default tuning (the shipper's file poll, the consumer's 200 ms flush, the indices' 1 s refresh)
unless ``--fast-poll`` (shipper polls every 50 ms, consumer flushes every 100 ms, as the tests do).
``--background`` lines/s of ordinary traffic keep the pipeline busy while ``--samples`` marker
lines (``url.path = /lat/<n>``) are appended at ``--rate`` per second; a poller searches for the
markers every 20 ms and records, per marker, the time from its ``write()`` until a search returns
it. Prints p50, p90, p99 and max.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from elasticsearch import AsyncElasticsearch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consumer.index_templates import remove_templates
from tests.end_to_end import Pipeline


def append(path: Path, data: bytes) -> None:
    """One write(2) at the end of ``path``, as an application logs a line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


async def run(args: argparse.Namespace) -> None:
    name = f"bench-lat-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        p = Pipeline(Path(tmp), args.kafka, args.es, name, fast_poll=args.fast_poll)
        pod = p.sim.add_pod("pay-gw")
        noise = p.sim.add_pod("order-svc")
        p.sim.write_access(pod, 1)  # so discovery finds the file before timing starts
        p.start_consumer()
        p.start_shipper()
        es = AsyncElasticsearch(args.es)
        index = f"{name}-access-*"
        written: dict[str, float] = {}
        seen: dict[str, float] = {}
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # wait for the pipeline to carry the first line
                p.check_alive()
                await es.indices.refresh(index=index, allow_no_indices=True, ignore_unavailable=True)
                if (await es.count(index=index, allow_no_indices=True, ignore_unavailable=True))["count"]:
                    break
                await asyncio.sleep(0.2)
            else:
                raise SystemExit("the pipeline did not index the first line within 60 s")

            async def writer() -> None:
                for n in range(args.samples):
                    marker = f"/lat/{n}"
                    if args.background:
                        p.sim.write_access(noise, max(1, int(args.background / args.rate)))
                    line = p.sim.access_line(pod, datetime.now(UTC), path=marker)
                    written[marker] = time.monotonic()
                    append(pod.access_log, line + b"\n")
                    await asyncio.sleep(1 / args.rate)

            async def poller() -> None:
                end = time.monotonic() + args.samples / args.rate + 30
                while len(seen) < args.samples and time.monotonic() < end:
                    resp = await es.search(
                        index=index, size=args.samples, source_includes=["url.path"],
                        query={"prefix": {"url.path": "/lat/"}},
                        allow_no_indices=True, ignore_unavailable=True,
                    )
                    now = time.monotonic()
                    for hit in resp["hits"]["hits"]:
                        marker = hit["_source"]["url"]["path"]
                        if marker not in seen and marker in written:
                            seen[marker] = now
                    await asyncio.sleep(0.02)

            await asyncio.gather(writer(), poller())
        finally:
            await es.indices.delete(index=f"{name}-*", allow_no_indices=True, ignore_unavailable=True)
            await remove_templates(es, name)
            await es.close()
            await asyncio.to_thread(p.stop)
            admin = AIOKafkaAdminClient(bootstrap_servers=args.kafka)
            await admin.start()
            try:
                await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(name)])
            finally:
                await admin.close()

    lat = [seen[m] - written[m] for m in seen]
    missing = len(written) - len(seen)
    print(
        f"samples={len(lat)} missing={missing} rate={args.rate}/s background={args.background} lines/s: "
        f"p50 {statistics.median(lat):.3f}s  p90 {percentile(lat, 0.9):.3f}s  "
        f"p99 {percentile(lat, 0.99):.3f}s  max {max(lat):.3f}s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--background", type=int, default=200, help="ordinary access lines per second")
    ap.add_argument("--kafka", default="127.0.0.1:9092")
    ap.add_argument("--es", default="http://127.0.0.1:9200")
    ap.add_argument("--fast-poll", action="store_true", help="shipper polls files every 50 ms (default: its own)")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
