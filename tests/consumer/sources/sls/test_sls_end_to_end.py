"""Files -> ``logpipe ship`` (SLS sink) -> SLS -> ``logpipe consume`` (SLS source) -> Elasticsearch.

The local SLS server speaks the real protocol to the unmodified SDK on both sides; the consumers
are real ``logpipe consume`` processes. The documents must equal what the Kafka path makes of the
same files, a keyword rule must fire in the real Alertmanager, and kill -9, a second replica dying,
a shard split and quota errors must lose and duplicate nothing.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from elasticsearch import AsyncElasticsearch

from logpipe.dev.services.sls import SlsServer
from tests.shipper.live import Shipper, Tree

pytestmark = pytest.mark.integration

KEY_ID, SECRET = "e2e-ak", "e2e-secret-0123456789"
PROJECT = "shop-prod"
# event.ingested: the consumer's indexing time; event.created: the read time of each of the two shippers
VOLATILE = ("ingested", "created")


@pytest.fixture
async def sls() -> AsyncIterator[SlsServer]:
    host = f"127.79.{random.randint(1, 254)}.{random.randint(1, 254)}"
    server = SlsServer({KEY_ID: SECRET}, host=host, port=80, shard_count=2)
    await server.start()
    yield server
    await server.stop()


class Consume:
    """A ``logpipe consume`` child process."""

    def __init__(self, root: Path, name: str, cfg: dict[str, Any]) -> None:
        self.config = root / f"consume-{name}.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.stderr = root / f"consume-{name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logpipe.cli.main", "consume", "--config", str(self.config)],
                stdout=subprocess.DEVNULL, stderr=err,
            )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")[-3000:]


def sls_source(server: SlsServer, group: str, name: str) -> dict[str, Any]:
    return {
        "type": "sls", "endpoint": server.host, "project": PROJECT,
        "logstores": ["logpipe-access", "logpipe-app"], "consumer_group": group, "consumer_name": name,
        "access_key_id": KEY_ID, "access_key_secret": SECRET, "heartbeat_interval": "500ms", "timeout": 5,
        "fetch_groups": 20,
    }


def consumer_config(es_url: str, prefix: str, source: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "elasticsearch": {"url": es_url},
        "index": {"prefix": prefix, "retention_days": 36500},
        "bulk": {"flush_interval": "100ms", "retry_max": "1s"},
        "http": {"host": "127.0.0.1", "port": 0},
        "shutdown_grace": "5s",
        **extra,
    }
    if source is not None:
        cfg["source"] = source
    return cfg


def shipper(tree: Tree, name: str, bootstrap: str, prefix: str, **overrides: Any) -> Shipper:
    """A ``logpipe ship`` of its own (config, registry, log) over the shared tree."""
    s = Shipper(tree, bootstrap, prefix, **overrides)
    cfg = yaml.safe_load(s.config.read_text())
    s.registry = tree.root / f"registry-{name}.json"
    cfg["registry"]["path"] = str(s.registry)
    if cfg.get("sink", {}).get("type") == "sls":
        del cfg["kafka"]  # the SLS sink refuses a kafka: section it would ignore
    s.config = tree.root / f"shipper-{name}.yaml"
    s.config.write_text(yaml.safe_dump(cfg))
    s.stderr = tree.root / f"shipper-{name}.stderr"
    return s


def sls_sink(server: SlsServer) -> dict[str, Any]:
    return {"type": "sls", "endpoint": f"http://{server.host}:80", "project": PROJECT,
            "access_key_id": KEY_ID, "access_key_secret": SECRET}


def access_line(i: int, pod: str) -> bytes:
    status = 502 if i % 7 == 3 else 200
    return orjson.dumps({
        "time": f"2026-11-27T10:{(i // 60) % 60:02d}:{i % 60:02d}.123+08:00", "method": "GET",
        "path": f"/api/pay/{i}", "status": status, "request_time": 0.012, "traceId": f"t-{pod}-{i}",
        "ua": "curl/8 \u00fcnicode",
    })


def write(tree: Tree, pod: str, name: str, lines: list[bytes]) -> None:
    with open(tree.path(pod, name), "ab") as f:
        f.write(b"".join(x + b"\n" for x in lines))
    tree.written.extend(lines)


async def documents(es: AsyncElasticsearch, prefix: str) -> dict[str, dict[str, Any]]:
    await es.indices.refresh(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
    out: dict[str, dict[str, Any]] = {}
    resp = await es.search(index=f"{prefix}-*", size=5000, query={"match_all": {}}, ignore_unavailable=True,
                           allow_no_indices=True)
    for hit in resp["hits"]["hits"]:
        out[hit["_id"]] = hit["_source"]
    return out


async def count(es: AsyncElasticsearch, prefix: str) -> int:
    await es.indices.refresh(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
    resp = await es.count(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
    return int(resp["count"])


async def wait_count(
    es: AsyncElasticsearch, prefix: str, want: int, consumers: list[Consume], timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    got = -1
    while time.monotonic() < deadline:
        got = await count(es, prefix)
        if got >= want:
            return
        await asyncio.sleep(0.5)
    logs = "\n---\n".join(c.log() for c in consumers)
    raise AssertionError(f"{got} of {want} documents in {prefix}-*\n{logs}")


def without_volatile(doc: dict[str, Any]) -> dict[str, Any]:
    doc = orjson.loads(orjson.dumps(doc))
    if doc.get("@timestamp") == doc.get("event", {}).get("created"):
        del doc["@timestamp"]  # a line without a time of its own is stamped with its read time
    for key in VOLATILE:
        doc.get("event", {}).pop(key, None)
    return doc


async def alerts_named(url: str, name: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(url + "/api/v2/alerts",
                                                   params={"filter": f'alertname="{name}"'}) as resp:
        resp.raise_for_status()
        return list(await resp.json())


async def test_sls_path_indexes_what_the_kafka_path_indexes_and_alerts(
    tmp_path: Path, sls: SlsServer, es_url: str, kafka_bootstrap: str, alertmanager_url: str, unique_name: str,
) -> None:
    tree = Tree(tmp_path, unique_name)
    tree.add_pod("pay-gw-7d9f8b6c4-x2k9p")
    tree.add_pod("cart-5c8d7b9f6-abcde")
    pay, cart = "pay-gw-7d9f8b6c4-x2k9p", "cart-5c8d7b9f6-abcde"
    write(tree, pay, "access.log", [access_line(i, "pay") for i in range(60)])
    write(tree, cart, "access.log", [access_line(i, "cart") for i in range(40)])
    app_lines = [b"2026-11-27 10:00:0%d INFO payment ok id=%d" % (i % 10, i) for i in range(20)]
    app_lines.insert(5, b"2026-11-27 10:00:05 ERROR payment declined by issuer \xff\xfe")
    write(tree, pay, "app.log", app_lines)
    expected = len(tree.written)

    alertname = f"{unique_name}-declined"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({
        "channels": {"am": {"type": "alertmanager", "url": alertmanager_url}},
        "rules": [{"name": alertname, "severity": "critical", "channels": ["am"],
                   "match": {"components": ["pay-gw"], "keywords": ["payment declined"]},
                   "condition": {"count": 1, "within": "1m"}}],
    }))

    sls_prefix, kafka_prefix = f"{unique_name}-sls", f"{unique_name}-kafka"
    sls_shipper = shipper(tree, "sls", kafka_bootstrap, f"{unique_name}-", sink=sls_sink(sls))
    kafka_shipper = shipper(tree, "kafka", kafka_bootstrap, f"{unique_name}-")  # the same files, to Kafka

    via_sls = Consume(tmp_path, "sls", consumer_config(
        es_url, sls_prefix, sls_source(sls, unique_name, "a"),
        alerts={"rules": str(rules), "alertmanager_url": alertmanager_url},
    ))
    via_kafka = Consume(tmp_path, "kafka", consumer_config(
        es_url, kafka_prefix, None,
        kafka={"bootstrap": kafka_bootstrap, "group_id": f"{unique_name}-g", "commit_interval": "200ms",
               "topics": [f"{unique_name}-access", f"{unique_name}-app"], "dead_letter_topic": f"{unique_name}-dlq"},
    ))
    es = AsyncElasticsearch(es_url, request_timeout=30)
    try:
        sls_shipper.start()
        kafka_shipper.start()
        via_sls.start()
        via_kafka.start()
        await wait_count(es, sls_prefix, expected, [via_sls])
        await wait_count(es, kafka_prefix, expected, [via_kafka])
        from_sls, from_kafka = await documents(es, sls_prefix), await documents(es, kafka_prefix)
        assert len(from_sls) == expected  # one document per line, none twice
        assert set(from_sls) == set(from_kafka)  # the same _id for the same line
        for doc_id, doc in from_sls.items():
            assert without_volatile(doc) == without_volatile(from_kafka[doc_id]), doc_id
        deadline = time.monotonic() + 30
        while not await alerts_named(alertmanager_url, alertname):
            assert time.monotonic() < deadline, via_sls.log()
            await asyncio.sleep(0.5)
    finally:
        for proc in (via_sls, via_kafka):
            proc.stop()
        sls_shipper.stop()
        kafka_shipper.stop()
        await es.options(ignore_status=404).indices.delete(index=f"{unique_name}-*")
        await es.close()


async def test_kill_9_a_dead_replica_a_shard_split_and_quota_errors_lose_and_duplicate_nothing(
    tmp_path: Path, sls: SlsServer, es_url: str, kafka_bootstrap: str, unique_name: str,
) -> None:
    tree = Tree(tmp_path, unique_name)
    pods = [tree.add_pod(f"svc{i}-5c8d7b9f6-abcd{i}").name for i in range(3)]
    ship = shipper(tree, "sls", kafka_bootstrap, f"{unique_name}-", sink=sls_sink(sls))
    prefix = f"{unique_name}-sls"
    a = Consume(tmp_path, "a", consumer_config(es_url, prefix, sls_source(sls, unique_name, "a")))
    b = Consume(tmp_path, "b", consumer_config(es_url, prefix, sls_source(sls, unique_name, "b")))
    es = AsyncElasticsearch(es_url, request_timeout=30)
    n = 0
    traces: set[str] = set()

    def more(k: int) -> None:
        nonlocal n
        for pod in pods:
            write(tree, pod, "access.log", [access_line(n + i, pod) for i in range(k)])
            traces.update(f"t-{pod}-{n + i}" for i in range(k))
        n += k

    try:
        more(30)
        ship.start()
        a.start()
        b.start()
        await wait_count(es, prefix, len(tree.written) // 2, [a, b])
        a.kill9()  # mid-stream; its shards go to b after the 5 s group timeout
        more(30)
        sls.fail_next(4, 403, "ReadQuotaExceed", "Read quota is exceeded", only="pull")
        await asyncio.sleep(1)
        sls.split_shard(PROJECT, "logpipe-access", 0)
        more(30)
        a.start()  # the same member name comes back
        more(30)
        await wait_count(es, prefix, len(tree.written), [a, b], timeout=120)
        await asyncio.sleep(3)  # a re-read after the restart would show up as more documents now
        assert await count(es, prefix) == len(tree.written)  # nothing lost, nothing twice
        docs = await documents(es, prefix)
        assert {d["trace"]["id"] for d in docs.values()} == traces
        assert sls.shards(PROJECT, "logpipe-access")[0]["status"] == "readonly"  # the split happened
    finally:
        for proc in (a, b):
            proc.stop()
        ship.stop()
        await es.options(ignore_status=404).indices.delete(index=f"{unique_name}-*")
        await es.close()
