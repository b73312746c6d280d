"""The consumer under its supervisor, on the real Kafka and Elasticsearch: a fetch that fails makes it
commit what is indexed and exit 1 (the kubelet restarts it) and the next run loses and duplicates
nothing; a fetch that hangs turns ``/healthz`` failing; an Elasticsearch outage does not. Failures
injected into bulk delivery and commits (bugs: exit 1, state intact), commits Kafka refuses, dead
letters that cannot be sent and an alert channel that fails (outages: retried, recovered)."""

from __future__ import annotations

import asyncio
import logging
import types
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from consumer.alerts.channels.alertmanager import AlertmanagerSender
from consumer.alerts.engine import AlertEngine
from consumer.alerts.rules import validate_rule_file
from consumer.app import ConsumerApp
from consumer.deadletter import DeadLetterWriter
from consumer.dependencies.join import TraceJoin
from consumer.dependencies.linker import count_links, trace_edges
from consumer.dependencies.store import DependencyStore
from consumer.es_client import ElasticsearchBulk
from consumer.ports import BulkUnreachable
from consumer.sources.kafka import KafkaSource
from tests.consumer.dependencies.test_stage import produce, shop_trace
from tests.consumer.dependencies.test_store import jaeger_view
from tests.consumer.story import ConsumerStory
from tests.logpipe.event_capture import records_of

pytestmark = pytest.mark.integration


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)


async def test_a_failing_fetch_exits_1_with_what_is_indexed_committed(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    total = 20_000
    await story.produce(story.access_lines(total // 2, file_no=1) + story.access_lines(total // 2, file_no=2))
    real = KafkaSource.fetch
    fetched = {"records": 0}

    async def indexed() -> int:
        try:
            return await story.count()
        except Exception:  # the new index's shards not searchable yet (503): nothing to count
            return 0

    async def fetch_then_fail(self: KafkaSource, timeout_s: float) -> Any:
        # fail once some of what was fetched is indexed (a new index can take seconds to create)
        if fetched["records"] >= 1000 and await indexed() >= 200:
            raise RuntimeError("injected: the fetch path is broken")
        got = await real(self, timeout_s)
        fetched["records"] += sum(map(len, got.values()))
        return got

    monkeypatch.setattr(KafkaSource, "fetch", fetch_then_fail)
    app = ConsumerApp(story.config(**{"bulk.max_actions": 200, "kafka.max_poll_records": 500}), tune_gc=False)
    with records_of("logpipe.supervisor", logging.ERROR) as recs:
        code = await asyncio.wait_for(app.run(), 120)
    assert code == 1
    consume = [r.fields for r in recs if r.fields["task"] == "consume"]  # type: ignore[attr-defined]
    assert [f["action"] for f in consume] == ["exit"]
    ok, detail = app._healthy()
    assert not ok and "injected" in detail["failed"]
    lag = await story.committed_lag()
    assert 0 < lag < total, f"lag {lag}"  # what was indexed is committed, the rest is not

    monkeypatch.undo()  # the restarted container
    async with story.consumer():
        await story.wait_for_docs(total, timeout=120)
        await story.wait_committed()
    ids = await story.doc_ids()
    assert len(ids) == len(set(ids)) == total and set(ids) == story.expected_ids()


async def test_a_hung_fetch_turns_healthz_failing(story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    await story.produce(story.access_lines(100))
    hang = asyncio.Event()
    real = KafkaSource.fetch

    async def fetch(self: KafkaSource, timeout_s: float) -> Any:
        if hang.is_set():
            await asyncio.Event().wait()  # a client stuck on a dead connection
        return await real(self, timeout_s)

    monkeypatch.setattr(KafkaSource, "fetch", fetch)
    async with story.consumer(story.config(**{"health.stall_after": 1.0})) as app:
        await story.wait_for_docs(100)
        await asyncio.sleep(1.5)
        assert app._healthy() == (True, {})  # idle but turning: healthy
        hang.set()
        await until(lambda: not app._healthy()[0], 10, "healthz failing")
        detail = app._healthy()[1]
        assert detail["stalled"] == "consume" and detail["seconds"] >= 1.0


async def test_a_hung_fetch_in_the_dependency_stage_turns_healthz_failing(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    await story.produce(story.access_lines(100))
    hang = asyncio.Event()
    async with story.consumer(story.config(**{"health.stall_after": 1.0})) as app:
        stage = app.dependencies
        assert stage is not None
        real = stage.source.fetch

        async def fetch(timeout_s: float) -> Any:
            if hang.is_set():
                await asyncio.Event().wait()  # the links topic's client stuck on a dead connection
            return await real(timeout_s)

        monkeypatch.setattr(stage.source, "fetch", fetch)
        await story.wait_for_docs(100)
        await until(lambda: stage.started, 30, "the dependency stage started")
        await asyncio.sleep(1.5)
        assert app._healthy() == (True, {})  # both loops idle but turning
        hang.set()
        await until(lambda: not app._healthy()[0], 10, "healthz failing")
        detail = app._healthy()[1]
        assert detail["stalled"] == "dependencies" and detail["seconds"] >= 1.0
        assert app.loop.heartbeat.age() < 1.0  # the consume loop itself still turns


# --- failures injected into delivery, commit, dead letters and alerts ------------------------------


async def _exits_1_then_a_restart_loses_nothing(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch, app: ConsumerApp, total: int, injected: str) -> None:
    """``app`` must fail for good: exit 1, one ``exit`` event, ``/healthz`` failing, what is committed
    indexed; then the restarted container (injection undone) indexes every line exactly once."""
    with records_of("logpipe.supervisor", logging.ERROR) as recs:
        code = await asyncio.wait_for(app.run(), 120)
    assert code == 1
    consume = [r.fields for r in recs if r.fields["task"] == "consume"]  # type: ignore[attr-defined]
    assert [f["action"] for f in consume] == ["exit"] and injected in consume[0]["error"]
    ok, detail = app._healthy()
    assert not ok and injected in detail["failed"]
    lag = await story.committed_lag()
    assert 0 < lag < total, f"lag {lag}"
    assert await story.count() >= total - lag  # nothing is committed that is not indexed

    monkeypatch.undo()  # the restarted container
    async with story.consumer():
        await story.wait_for_docs(total, timeout=120)
        await story.wait_committed()
    ids = await story.doc_ids()
    assert len(ids) == len(set(ids)) == total and set(ids) == story.expected_ids()


async def test_a_bulk_delivery_that_raises_exits_1_with_what_is_indexed_committed(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not an Elasticsearch error (those are retried): a bug in the delivery path. Its works could never
    # resolve, so before this the process lived on with its commits stuck behind them.
    total = 6_000
    await story.produce(story.access_lines(total // 2, file_no=1) + story.access_lines(total // 2, file_no=2))
    real = ElasticsearchBulk.bulk
    calls = {"n": 0}

    async def bulk_then_fail(self: ElasticsearchBulk, body: bytes) -> Any:
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("injected: the bulk path is broken")
        return await real(self, body)

    monkeypatch.setattr(ElasticsearchBulk, "bulk", bulk_then_fail)
    app = ConsumerApp(story.config(**{"bulk.max_actions": 200, "kafka.max_poll_records": 200}), tune_gc=False)
    await _exits_1_then_a_restart_loses_nothing(story, monkeypatch, app, total, "bulk task failed")


async def test_a_commit_that_raises_exits_1_with_only_indexed_offsets_committed(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    total = 6_000
    await story.produce(story.access_lines(total // 2, file_no=1))
    second_half = story.access_lines(total // 2, file_no=2)
    real = KafkaSource.commit
    committed = {"n": 0}

    async def commit_then_fail(self: KafkaSource, positions: Any) -> bool:
        # broken for good once something is committed, the final commit on the way out included
        if committed["n"] >= 1:
            raise RuntimeError("injected: the commit path is broken")
        ok = await real(self, positions)
        committed["n"] += ok and any(positions.values())
        return ok

    async def produce_after_the_first_commit() -> None:
        # Only then: had every line been fetched before the new index was created, one commit could
        # carry them all and the injection would never be reached (the test hung in a loaded suite).
        await until(lambda: committed["n"] >= 1, 60, "a first commit")
        await story.produce(second_half)

    app = ConsumerApp(story.config(**{"bulk.max_actions": 200, "kafka.max_poll_records": 200}), tune_gc=False)
    # The consume loop's source only: the dependency stage has a KafkaSource of its own (the links
    # topic), whose commits are another task kind.
    assert isinstance(app.source, KafkaSource)
    monkeypatch.setattr(app.source, "commit", types.MethodType(commit_then_fail, app.source))
    producing = asyncio.ensure_future(produce_after_the_first_commit())
    await _exits_1_then_a_restart_loses_nothing(story, monkeypatch, app, total, "the commit path is broken")
    await producing


async def test_commits_refused_by_kafka_are_retried_and_the_consumer_recovers(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    await story.produce(story.access_lines(500))
    real = AIOKafkaConsumer.commit
    refused = {"n": 0}

    async def commit(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        if refused["n"] < 5:  # the coordinator moving, a rebalance in progress
            refused["n"] += 1
            raise CommitFailedError("injected: the group is rebalancing")
        await real(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", commit)
    with records_of("logpipe.supervisor", logging.ERROR) as recs:
        async with story.consumer() as app:
            await story.wait_for_docs(500)
            await story.wait_committed()
            assert refused["n"] == 5
            assert app._healthy() == (True, {})
    assert not recs  # nothing failed: no task event


async def test_a_failing_dead_letter_send_is_retried_and_holds_the_commit_until_sent(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    good = story.access_lines(200)
    poison = story.access_lines(1)
    poison = [type(poison[0])(poison[0].meta, poison[0].offset, b"\x00\xffnot json {", poison[0].read_ts_ms)]
    await story.produce(good[:100])
    await story.produce(poison, indexable=False)
    await story.produce(good[100:])
    real = DeadLetterWriter.send
    broken = asyncio.Event()
    broken.set()
    attempts = {"n": 0}

    async def send(self: DeadLetterWriter, work: Any) -> None:
        attempts["n"] += 1
        if broken.is_set():
            raise KafkaConnectionError("injected: the dead-letter topic's leader is gone")
        await real(self, work)

    monkeypatch.setattr(DeadLetterWriter, "send", send)
    async with story.consumer() as app:
        await story.wait_for_docs(200)
        await until(lambda: attempts["n"] >= 3, 30, "dead-letter retries")
        await asyncio.sleep(1.0)  # several commit intervals
        # Everything after the poison record in its partition is indexed, but not committed past it.
        assert await story.committed_lag() >= 101
        assert app._healthy() == (True, {})  # a destination that fails is an outage, not a hang
        broken.clear()
        assert len(await story.dead_letters(1)) == 1
        await story.wait_committed()
    assert set(await story.doc_ids()) == story.expected_ids()


async def test_a_failing_alert_channel_is_retried_and_indexing_goes_on(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch, alertmanager_url: str) -> None:
    rule = f"{story.name}-panic"
    engine = AlertEngine(validate_rule_file({
        "channels": {"alertmanager": {"type": "alertmanager", "url": alertmanager_url, "retries": 5,
                                      "backoff": "100ms", "max_backoff": "200ms"}},
        "engine": {"max_event_age": None, "restore_from_alertmanager": False},
        "rules": [{"name": rule, "match": {"keywords": ["panic"]}}],
    }, "<test>"))
    real = AlertmanagerSender.deliver
    failures = {"n": 0}

    async def deliver(self: AlertmanagerSender, batch: Any) -> None:
        if failures["n"] < 2:
            failures["n"] += 1
            raise ConnectionResetError("injected: Alertmanager reset the connection")
        await real(self, batch)

    monkeypatch.setattr(AlertmanagerSender, "deliver", deliver)
    await story.produce(story.cri_lines([f"line {i}" for i in range(50)] + ["panic: nil map"]))
    with records_of("logpipe.supervisor", logging.ERROR) as recs:
        svc = ConsumerApp(story.config(), alerts=engine, tune_gc=False)
        task = asyncio.create_task(svc.run())
        try:
            await story.wait_for_docs(51)
            await story.wait_committed()
            async with aiohttp.ClientSession(base_url=alertmanager_url) as http:
                async def listed() -> list[Any]:
                    async with http.get("/api/v2/alerts", params={"filter": f'alertname="{rule}"'}) as resp:
                        return list(await resp.json())
                deadline = asyncio.get_running_loop().time() + 30
                while not await listed():
                    assert asyncio.get_running_loop().time() < deadline, "the alert never reached Alertmanager"
                    await asyncio.sleep(0.2)
            assert failures["n"] == 2
            assert svc._healthy() == (True, {})
        finally:
            svc.request_stop()
            assert await asyncio.wait_for(task, 60) == 0
    assert not recs


async def test_a_failing_dependency_stage_is_restarted_and_counts_every_call_once(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    traces = [shop_trace(500 + i) for i in range(10)]
    expected = count_links(e for spans in traces for e in trace_edges(spans))
    real = TraceJoin.add
    seen = {"n": 0}

    def add(self: TraceJoin, *args: Any, **kwargs: Any) -> Any:
        seen["n"] += 1
        if seen["n"] == 30:  # a bug in the join, mid-stream: some traces held, none written
            raise RuntimeError("injected: the join is broken")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TraceJoin, "add", add)
    cfg = story.config(**{"trace_dependencies.horizon": 1.0, "trace_dependencies.flush_interval": 0.5,
                          "kafka.commit_interval": 0.5})
    view = DependencyStore(story.es, story.prefix, 300)
    with records_of("logpipe.supervisor", logging.ERROR) as recs:
        async with story.consumer(cfg) as app:
            first = app.dependencies
            await until(lambda: bool(app.dependencies and app.dependencies.partitions), 60, "links partitions")
            await produce(cfg, [link for spans in traces for link in spans])
            deadline = asyncio.get_running_loop().time() + 60
            while await jaeger_view(view) != expected:
                assert asyncio.get_running_loop().time() < deadline, "dependencies not counted"
                await asyncio.sleep(0.5)
            assert app.dependencies is not first  # a fresh stage took over
            assert app._healthy() == (True, {})
    failed = [r.fields for r in recs if r.fields["task"] == "dependencies"]  # type: ignore[attr-defined]
    assert [f["action"] for f in failed] == ["restart"] and "the join is broken" in failed[0]["error"]


async def test_a_hung_bulk_request_turns_healthz_failing_and_failing_ones_do_not(
        story: ConsumerStory, monkeypatch: pytest.MonkeyPatch) -> None:
    await story.produce(story.access_lines(100))
    mode = {"now": "real"}
    real = ElasticsearchBulk.bulk

    async def bulk(self: ElasticsearchBulk, body: bytes) -> Any:
        if mode["now"] == "fail":
            raise BulkUnreachable("injected: connection refused")  # an outage: answers, with errors
        if mode["now"] == "hang":
            await asyncio.Event().wait()  # a client stuck on a dead connection
        return await real(self, body)

    monkeypatch.setattr(ElasticsearchBulk, "bulk", bulk)
    # Retries back off at most bulk.retry_max (1 s here): failing answers come well within 3 s.
    async with story.consumer(story.config(**{"health.delivery_stall_after": 3.0})) as app:
        await story.wait_for_docs(100, timeout=120)  # a new index on a loaded Elasticsearch can take long
        await asyncio.sleep(3.5)
        assert app._healthy() == (True, {})  # nothing in flight: idle, not stalled
        mode["now"] = "fail"
        await story.produce(story.access_lines(50))
        await until(lambda: not app.loop.indexer.available, 30, "bulks failing")
        await asyncio.sleep(4.0)
        assert app._healthy() == (True, {})  # failing answers keep it turning
        mode["now"] = "hang"
        await until(lambda: not app._healthy()[0], 30, "healthz failing")
        detail = app._healthy()[1]
        assert detail["stalled"] == "delivery" and detail["seconds"] >= 3.0
        mode["now"] = "real"  # the stuck request never returns; the stop below cancels it
