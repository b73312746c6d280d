"""The consumer under its supervisor, on the real Kafka and Elasticsearch: a fetch that fails makes it
commit what is indexed and exit 1 (the kubelet restarts it) and the next run loses and duplicates
nothing; a fetch that hangs turns ``/healthz`` failing; an Elasticsearch outage does not."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from consumer.app import ConsumerApp
from consumer.sources.kafka import KafkaSource
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

    async def fetch_then_fail(self: KafkaSource, timeout_s: float) -> Any:
        # fail once some of what was fetched is indexed (a new index can take seconds to create)
        if fetched["records"] >= 1000 and await story.count() >= 200:
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
