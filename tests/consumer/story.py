"""A story-like harness for the consumer's integration tests, on the real Kafka and Elasticsearch.

    env = ConsumerStory(kafka_bootstrap, es_url, unique_name)
    await env.create_topics(partitions=2)
    await env.produce(env.access_lines(100))
    async with env.consumer():
        await env.wait_for_docs(100)
    assert await env.doc_ids() == env.expected_ids()

Every name (topics, group, index prefix, dead-letter topic) derives from ``unique_name``; ``cleanup``
deletes the topics, indices and templates.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from elasticsearch import AsyncElasticsearch

from consumer.app import ConsumerApp
from consumer.config import ConsumerConfig
from consumer.dependencies.templates import remove_dependency_templates
from consumer.index_templates import remove_templates
from logpipe.core.envelope import LineRecord, SourceMeta, document_id


class ConsumerStory:
    """Topics, lines, a consumer (in-process or a subprocess) and the checks on what got indexed."""

    def __init__(self, kafka_bootstrap: str, es_url: str, name: str) -> None:
        self.kafka = kafka_bootstrap
        self.es_url = es_url
        self.name = name
        self.prefix = name
        self.group = f"{name}-group"
        self.dlq_topic = f"{name}-dlq"
        self.links_topic = f"{name}-links"
        self.topics = {"access": f"{name}-access", "stdout": f"{name}-stdout"}
        self.es = AsyncElasticsearch(es_url, request_timeout=30)
        self.produced: list[tuple[LineRecord, bool]] = []  # (record, expected to become a document)
        self._seq = 0
        self._next_offset: dict[str, int] = {}  # file_id -> next line's byte offset
        self._partition: dict[str, int] = {}  # file_id -> partition
        self.partitions = 1

    # --- setup -----------------------------------------------------------------------------

    async def create_topics(self, partitions: int = 2) -> None:
        self.partitions = partitions
        admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in self.topics.values()]
                + [NewTopic(self.dlq_topic, num_partitions=1, replication_factor=1)]
            )
        finally:
            await admin.close()

    def config(self, **overrides: Any) -> ConsumerConfig:
        """A config for this story: its topics, group, prefix; small bulks; a free HTTP port."""
        data: dict[str, Any] = {
            "kafka": {
                "bootstrap": self.kafka,
                "group_id": self.group,
                "topics": list(self.topics.values()),
                "dead_letter_topic": self.dlq_topic,
                "commit_interval": "200ms",
                "session_timeout": "10s",
            },
            "elasticsearch": {"url": self.es_url},
            # The lines carry fixed dates: retention must not delete their indices whenever the test runs.
            "index": {"prefix": self.prefix, "retention_days": 36500},
            "bulk": {"flush_interval": "100ms", "retry_max": "1s"},
            "http": {"host": "127.0.0.1", "port": 0},
            "shutdown_grace": "5s",
            # This story's own links topic: the dependency stage reads nobody else's span links.
            "trace_dependencies": {"topic": self.links_topic, "partitions": 2},
        }
        for dotted, value in overrides.items():
            *parents, leaf = dotted.split(".")
            node = data
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        return ConsumerConfig.model_validate(data)

    # --- lines -----------------------------------------------------------------------------

    def meta(self, log_type: str, pod: str = "pay-gw-1", file_no: int = 0) -> SourceMeta:
        return SourceMeta(
            node="node-1", namespace="shop", pod=pod, pod_uid=f"uid-{pod}", container="app",
            component="pay-gw", log_type=log_type, path=f"/var/log/{pod}/{log_type}-{file_no}.log",
            file_id=f"fingerprint::{self.name}-{log_type}-{file_no}",
        )

    def access_lines(self, n: int, day: str = "2026-11-27", file_no: int = 0) -> list[LineRecord]:
        """``n`` JSON access lines (one file), each with a traceId, status, path and latency in ms."""
        meta = self.meta("access", file_no=file_no)
        out = []
        offset = self._next_offset.get(meta.file_id, 0)
        for _ in range(n):
            i = self._seq
            self._seq += 1
            line = orjson.dumps(
                {
                    "time": f"{day}T10:{(i // 60) % 60:02d}:{i % 60:02d}.123+08:00",
                    "method": "GET" if i % 3 else "POST",
                    "path": f"/api/pay/{i}",
                    "status": 200 if i % 10 else 503,
                    "latency": 12,
                    "traceId": f"trace-{i:08d}",
                    "client_ip": "10.1.2.3",
                    "seq": i,
                }
            )
            out.append(LineRecord(meta, offset, line, int(time.time() * 1000)))
            offset += len(line) + 1
        self._next_offset[meta.file_id] = offset
        return out

    def cri_lines(self, messages: Sequence[str], split: int = 0, file_no: int = 0) -> list[LineRecord]:
        """CRI stdout records; with ``split`` > 0 every message is cut into P fragments of that size."""
        meta = self.meta("stdout", file_no=file_no)
        out = []
        offset = self._next_offset.get(meta.file_id, 0)
        for msg in messages:
            parts = [msg[i : i + split] for i in range(0, len(msg), split)] if split else [msg]
            for k, part in enumerate(parts):
                tag = "F" if k == len(parts) - 1 else "P"
                line = f"2026-11-27T02:00:00.123456789Z stdout {tag} {part}".encode()
                out.append(LineRecord(meta, offset, line, int(time.time() * 1000)))
                offset += len(line) + 1
        self._next_offset[meta.file_id] = offset
        return out

    def partition_of(self, file_id: str) -> int:
        """Files are spread over the partitions round-robin (one file stays in one partition, in order);
        the shipper keys by Component, which would put every line of these stories in one partition."""
        if file_id not in self._partition:
            self._partition[file_id] = len(self._partition) % self.partitions
        return self._partition[file_id]

    async def produce(self, records: Sequence[LineRecord], indexable: bool = True) -> None:
        """Send ``records`` to the topic of their log type, as the shipper does (key, headers, value)."""
        producer = AIOKafkaProducer(bootstrap_servers=self.kafka, acks="all", linger_ms=5)
        await producer.start()
        try:
            futs = [
                await producer.send(
                    self.topics[r.meta.log_type], value=r.value, key=r.key, headers=r.headers(),
                    partition=self.partition_of(r.meta.file_id),
                )
                for r in records
            ]
            await asyncio.gather(*futs)
        finally:
            await producer.stop()
        self.produced.extend((r, indexable) for r in records)

    @property
    def line_count(self) -> int:
        """Lines expected as documents (a CRI line cut into fragments counts once)."""
        return len(self.expected_ids())

    def expected_ids(self) -> set[str]:
        """Document ids of the indexable lines; a reassembled CRI line has its first fragment's offset."""
        ids: set[str] = set()
        first_fragment: dict[str, int] = {}
        for r, indexable in self.produced:
            fid = r.meta.file_id
            if r.meta.log_type == "stdout" and b" stdout P " in r.value:
                first_fragment.setdefault(fid, r.offset)
                continue
            start = first_fragment.pop(fid, r.offset)
            if indexable:
                ids.add(document_id(fid, start))
        return ids

    # --- consumers -------------------------------------------------------------------------

    @asynccontextmanager
    async def consumer(self, cfg: ConsumerConfig | None = None) -> AsyncIterator[ConsumerApp]:
        """An in-process consumer running for the body of the ``async with``, stopped gracefully after."""
        svc = ConsumerApp(cfg or self.config())
        task = asyncio.create_task(svc.run())
        try:
            await self._until(lambda: svc.started or task.done(), 60, "the consumer to start")
            if task.done():
                task.result()
            yield svc
        finally:
            svc.request_stop()
            await asyncio.wait_for(task, 60)

    def spawn_cli(self, cfg: ConsumerConfig, tmp: Path) -> subprocess.Popen[bytes]:
        """``logpipe consume --config FILE`` as a subprocess (stderr to a file next to the config)."""
        path = tmp / f"consumer-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        err = (tmp / f"{path.stem}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "logpipe.cli.main", "consume", "--config", str(path)],
            stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    @staticmethod
    def kill9(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    # --- checks ----------------------------------------------------------------------------

    async def count(self) -> int:
        await self.es.indices.refresh(index=f"{self.prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        resp = await self.es.count(index=f"{self.prefix}-*", allow_no_indices=True, ignore_unavailable=True)
        return int(resp["count"])

    async def wait_for_docs(
        self, n: int, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
    ) -> int:
        """Poll until at least ``n`` documents are searchable; returns the count (fails if ``proc`` exits)."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the consumer exited with {proc.returncode}: see its log next to {proc.args!r}")
            try:
                last = await self.count()
            except Exception:  # Elasticsearch restarting
                last = -1
            if last >= n:
                return last
            await asyncio.sleep(0.3)
        raise AssertionError(f"{last} documents after {timeout}s, expected {n}")

    async def docs(self) -> list[dict[str, Any]]:
        """Every document (``_id`` and ``_source``) under the prefix."""
        await self.es.indices.refresh(index=f"{self.prefix}-*")
        out: list[dict[str, Any]] = []
        resp = await self.es.search(index=f"{self.prefix}-*", size=5000, scroll="1m", sort=["_doc"])
        while resp["hits"]["hits"]:
            out.extend(resp["hits"]["hits"])
            resp = await self.es.scroll(scroll_id=resp["_scroll_id"], scroll="1m")
        await self.es.clear_scroll(scroll_id=resp["_scroll_id"])
        return out

    async def doc_ids(self) -> list[str]:
        return [h["_id"] for h in await self.docs()]

    async def dead_letters(self, n: int, timeout: float = 30.0) -> list[Any]:
        """Read ``n`` records from the dead-letter topic (from the beginning)."""
        c = AIOKafkaConsumer(self.dlq_topic, bootstrap_servers=self.kafka, auto_offset_reset="earliest")
        await c.start()
        out: list[Any] = []
        try:
            deadline = time.monotonic() + timeout
            while len(out) < n and time.monotonic() < deadline:
                for recs in (await c.getmany(timeout_ms=500)).values():
                    out.extend(recs)
        finally:
            await c.stop()
        return out

    async def committed_lag(self) -> int:
        """Records of this story's topics not yet committed by the group."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka)
        await admin.start()
        c = AIOKafkaConsumer(bootstrap_servers=self.kafka, group_id=None)
        await c.start()
        try:
            described = await admin.describe_topics(list(self.topics.values()))
            tps = [
                TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
            ]
            assert tps, f"no partitions found for {list(self.topics.values())}"
            ends = await c.end_offsets(tps)
            committed = await admin.list_consumer_group_offsets(self.group)
            return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
        finally:
            await c.stop()
            await admin.close()

    async def wait_committed(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        lag = -1
        while time.monotonic() < deadline:
            lag = await self.committed_lag()
            if lag == 0:
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"{lag} records still uncommitted after {timeout}s")

    @staticmethod
    async def _until(pred: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def cleanup(self) -> None:
        try:
            await self.es.indices.delete(index=f"{self.prefix}-*", allow_no_indices=True, ignore_unavailable=True)
            await remove_dependency_templates(self.es, self.prefix)  # first: they use the settings component
            await remove_templates(self.es, self.prefix)
        except Exception:
            pass
        finally:
            await self.es.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka)
        try:
            await admin.start()
            await admin.delete_topics([*self.topics.values(), self.dlq_topic])
            await admin.delete_topics([self.links_topic])  # may not exist: no consumer ran
        except Exception:
            pass
        finally:
            await admin.close()
