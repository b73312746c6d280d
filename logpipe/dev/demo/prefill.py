"""Old records in a shared topic, as earlier runs leave them: ``python -m logpipe.dev.demo.prefill``.

Produces ``n`` access lines with the shipper's headers (``logpipe.core.envelope``) from a node name of
their own, so a reader that wrongly re-reads them is seen by that name in Elasticsearch. Used by the
demo's "used machine" test and to measure a warm demo by hand against a large backlog::

    python -m logpipe.dev.demo.prefill --records 600000      # into logpipe-access on 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson
from aiokafka import AIOKafkaProducer

from logpipe.core.envelope import LineRecord, SourceMeta
from logpipe.dev.demo.group_start import ensure_topics

BATCH = 2000


def _meta(node: str) -> SourceMeta:
    return SourceMeta(
        node=node,
        namespace="shop",
        pod="backlog-0",
        pod_uid=f"uid-{node}",
        container="backlog",
        component="backlog",
        log_type="access",
        path="/var/lib/kubelet/pods/backlog/volumes/kubernetes.io~empty-dir/logs/access.log",
        file_id=f"fingerprint::{node}",
    )


async def prefill(bootstrap: str, n: int, node: str, topic: str = "logpipe-access", partitions: int = 3) -> int:
    """Produce ``n`` access records from ``node`` into ``topic`` (created like the shipper's if missing)."""
    await ensure_topics(bootstrap, [topic], partitions)
    meta = _meta(node)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        offset, now_ms = 0, int(time.time() * 1000)
        for first in range(0, n, BATCH):
            sends = []
            for i in range(first, min(n, first + BATCH)):
                line = orjson.dumps({
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now_ms / 1000)),
                    "method": "GET", "path": f"/api/backlog/{i % 50}", "status": 200,
                    "request_time": 0.004, "bytes_sent": 512,
                })
                rec = LineRecord(meta, offset, line, now_ms)
                sends.append(await producer.send(topic, line, key=rec.key, headers=rec.headers()))
                offset += len(line) + 1
            await asyncio.gather(*sends)
        return n
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m logpipe.dev.demo.prefill", description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--topic", default="logpipe-access")
    p.add_argument("--records", type=int, default=600_000)
    p.add_argument("--node", default=f"backlog-{int(time.time())}")
    a = p.parse_args(argv)
    began = time.monotonic()
    asyncio.run(prefill(a.bootstrap, a.records, a.node, a.topic))
    print(f"{a.records} records from node {a.node} in {a.topic} ({time.monotonic() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
