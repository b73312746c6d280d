"""Consumer failover: time until every partition is consumed again after a replica goes away.

Runs real ``logpipe consume`` processes against the local Kafka and Elasticsearch (``logpipe dev up``)
on a fresh 6-partition topic and group. After each event a marker record is produced to every
partition; the figure is the time from the event until the group's committed offset of every
partition has passed its marker (read with the admin client, so the probe never joins the group).

    python bench/failover.py                       # all scenarios, static membership on and off
    python bench/failover.py --session-timeout 10

Scenarios: (a) kill -9 and immediate restart of the same replica; (b) kill -9 of one of two replicas
(no restart); (c) SIGTERM of one of two replicas (no restart). Each runs with static membership
(``--instance-id r1``/``r2``) and without (``--instance-id ""``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from logpipe.core.envelope import LineRecord, SourceMeta

PARTITIONS = 6


class Rig:
    def __init__(self, bootstrap: str, es: str, session_timeout: float, static: bool) -> None:
        run = uuid.uuid4().hex[:8]
        self.bootstrap, self.es, self.static = bootstrap, es, static
        self.topic = f"failover-{run}"
        self.group = f"failover-{run}"
        self.dir = Path(tempfile.mkdtemp(prefix="failover-"))
        self.config = self.dir / "consumer.yaml"
        self.config.write_text(yaml.safe_dump({
            "kafka": {"bootstrap": bootstrap, "group_id": self.group, "topics": [self.topic],
                      "session_timeout": f"{session_timeout}s", "commit_interval": "200ms"},
            "elasticsearch": {"url": es},
            "index": {"prefix": f"failover-{run}"},
            "http": {"host": "127.0.0.1", "port": 0},
            "shutdown_grace": "5s",
        }))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.offset = 0
        self.meta = SourceMeta("node-1", "shop", "web-1", "uid-1", "web", "web", "app", "/p/app.log",
                               f"fingerprint::{run}")

    async def setup(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(self.topic, PARTITIONS, 1)])
        await admin.close()
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await self.producer.start()
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self.admin.start()

    def start(self, name: str) -> None:
        instance = name if self.static else ""
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "logpipe.cli.main", "consume", "--config", str(self.config),
             "--instance-id", instance],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / f"{name}.stderr", "ab"), env=env)

    def note(self, what: str) -> None:
        """A wall-clock line in events.log, next to the consumers' logs (to read their timelines by)."""
        with (self.dir / "events.log").open("a") as f:
            f.write(f"{time.strftime('%H:%M:%S', time.gmtime())}.{int(time.time() * 1000) % 1000:03d}Z {what}\n")

    def kill9(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)

    def sigterm(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGTERM)

    async def markers(self) -> dict[int, int]:
        """One record per partition; returns partition -> its offset."""
        out: dict[int, int] = {}
        for p in range(PARTITIONS):
            self.offset += 100
            r = LineRecord(self.meta, self.offset, orjson.dumps({"message": f"marker {self.offset}"}),
                           int(time.time() * 1000))  # today: an index retention keeps (1970 was deleted at start)
            md = await self.producer.send_and_wait(self.topic, r.value, key=r.key, headers=r.headers(), partition=p)
            out[p] = md.offset
        return out

    async def wait_consumed(self, marks: dict[int, int], since: float, timeout: float = 120.0) -> float:
        while time.monotonic() - since < timeout:
            got = await self.admin.list_consumer_group_offsets(self.group)
            done = {tp.partition for tp, meta in got.items()
                    if tp.topic == self.topic and meta.offset > marks.get(tp.partition, 1 << 62)}
            if done >= set(marks):
                return time.monotonic() - since
            await asyncio.sleep(0.05)
        raise TimeoutError(f"partitions not consumed within {timeout}s")

    async def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(10)
        await self.producer.stop()
        await self.admin.close()


async def scenario(kind: str, args: argparse.Namespace, static: bool) -> float:
    rig = Rig(args.bootstrap, args.es, args.session_timeout, static)
    await rig.setup()
    try:
        names = ["r1"] if kind == "a" else ["r1", "r2"]
        for n in names:
            rig.start(n)
        await rig.wait_consumed(await rig.markers(), time.monotonic(), timeout=90)  # warm: all assigned
        await asyncio.sleep(2)
        await rig.wait_consumed(await rig.markers(), time.monotonic(), timeout=60)
        t0 = time.monotonic()
        rig.note(f"event {kind}")
        if kind == "a":
            rig.kill9("r1")
            rig.start("r1")
        elif kind == "b":
            rig.kill9("r2")
        else:
            rig.sigterm("r2")
        took = await rig.wait_consumed(await rig.markers(), t0)
        rig.note(f"consumed again after {took:.1f}s")
        return took
    finally:
        await rig.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--es", default="http://127.0.0.1:9200")
    ap.add_argument("--session-timeout", type=float, default=10.0)
    ap.add_argument("--scenarios", default="abc")
    args = ap.parse_args()
    labels = {"a": "(a) kill -9 + restart of the same replica",
              "b": "(b) kill -9 of one of two replicas",
              "c": "(c) SIGTERM of one of two replicas"}
    print(f"session_timeout {args.session_timeout:g}s, {PARTITIONS} partitions")
    for kind in args.scenarios:
        for static in (True, False):
            took = await scenario(kind, args, static)
            print(f"{labels[kind]:<45} static membership {'on ' if static else 'off'}: "
                  f"every partition consumed again after {took:.1f}s", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
