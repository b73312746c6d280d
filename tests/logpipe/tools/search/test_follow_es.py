"""`logpipe search -f` against the real Elasticsearch while documents keep arriving.

The writer below does what makes naive tails drop or repeat lines: documents arrive late (their
``@timestamp`` hours older than lines already shown), the consumer stamps ``event.ingested`` and only
later sends the bulk (so index time and visibility disagree), indices are refreshed at random moments
and in random order (refresh_interval -1: nothing is visible until the test refreshes), and one line
is redelivered (same ``_id``, stamped again). The follower must print every line exactly once.
"""

from __future__ import annotations

import asyncio
import io
import random
import time
from collections import Counter
from datetime import timedelta

import orjson
import pytest

from consumer.bulk import ingested_now
from logpipe.tools.search.search_command import SearchOptions, search_main
from tests.logpipe.tools.search.stories import Line, LogStore, minutes_ago
from tests.logpipe.tools.search.tcp_gate import TcpGate

pytestmark = pytest.mark.integration


def printed_ids(out: io.StringIO) -> list[str]:
    return [orjson.loads(line)["_id"] for line in out.getvalue().splitlines()]


async def wait_for_count(out: io.StringIO, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(printed_ids(out)) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def test_follow_prints_every_document_exactly_once_despite_late_and_out_of_order_visibility(
    manual_refresh_store: LogStore,
) -> None:
    store = manual_refresh_store
    rng = random.Random(7)
    files = [
        store.pod_file("pay", "pay-1"),
        store.pod_file("pay", "pay-2"),
        store.pod_file("pay", "pay-1", "access"),
        store.pod_file("cart", "cart-1"),  # another Component: never printed
    ]
    backlog = [store.app(files[0], minutes_ago(5) + timedelta(seconds=i), f"backlog {i}") for i in range(30)]
    await store.index(backlog, refresh=False)
    await store.refresh()

    out, notes = io.StringIO(), io.StringIO()
    stop = asyncio.Event()
    opts = SearchOptions(
        components=("pay",), follow=True, limit=10, as_json=True, es_url=store.url,
        index_prefix=store.prefix, follow_interval_s=0.2, follow_overlap_s=10,
    )
    follower = asyncio.create_task(search_main(opts, out, notes, stop))
    await wait_for_count(out, 10, 10)
    assert printed_ids(out) == [ln.doc_id for ln in backlog[-10:]]

    expected = [ln.doc_id for ln in backlog[-10:]]
    pending: list[tuple[float, str, list[Line]]] = []  # (send at, ingested stamp, lines)
    sent: list[Line] = []
    loop = asyncio.get_running_loop()
    for tick in range(30):
        batch: list[Line] = []
        for _ in range(rng.randint(1, 6)):
            f = rng.choice(files)
            late = rng.choice([0, 0, 0, 3, 90, 600])  # minutes: some lines are hours late
            at = minutes_ago(late + rng.random())
            ln = store.access(f, at, "/api/pay", 200) if f.log_type == "access" else store.app(f, at, f"t{tick}")
            batch.append(ln)
            if f.component == "pay":
                expected.append(ln.doc_id)
        # Stamped now, sent up to 1.5 s later: index time and visibility disagree.
        pending.append((loop.time() + rng.random() * 1.5, ingested_now(), batch))
        due = [p for p in pending if p[0] <= loop.time()]
        pending = [p for p in pending if p[0] > loop.time()]
        for _, stamp, lines in due:
            await store.index(lines, refresh=False, stamp=stamp)
            sent += lines
        if tick == 15 and sent:  # a redelivery: same _id, stamped again
            await store.index([sent[0]], refresh=False)
        if rng.random() < 0.4:  # refresh one log type's indices only: the others stay invisible
            await store.refresh(rng.choice(["app", "access"]))
        await asyncio.sleep(0.1)
    for _, stamp, lines in pending:
        await store.index(lines, refresh=False, stamp=stamp)
    await store.refresh()

    await wait_for_count(out, len(expected), 15)
    await asyncio.sleep(1.0)  # a few more polls: nothing may be printed twice
    stop.set()
    assert await asyncio.wait_for(follower, 10) == 0

    got = printed_ids(out)
    dupes = [i for i, n in Counter(got).items() if n > 1]
    assert dupes == []
    assert sorted(got) == sorted(expected)
    assert len(expected) > 60


async def test_follow_with_no_backlog_prints_only_new_lines(store: LogStore) -> None:
    f = store.pod_file("pay", "pay-1")
    await store.index([store.app(f, minutes_ago(1), "before the follow")])
    out, notes = io.StringIO(), io.StringIO()
    stop = asyncio.Event()
    opts = SearchOptions(follow=True, limit=0, as_json=True, es_url=store.url, index_prefix=store.prefix,
                         follow_interval_s=0.2)
    ready = asyncio.Event()
    task = asyncio.create_task(search_main(opts, out, notes, stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    new = [store.app(f, minutes_ago(0), f"new {i}") for i in range(3)]
    await store.index(new)
    await wait_for_count(out, 3, 10)
    stop.set()
    assert await asyncio.wait_for(task, 10) == 0
    assert printed_ids(out) == [ln.doc_id for ln in new]


async def test_follow_survives_an_outage_and_prints_what_was_indexed_meanwhile(store: LogStore) -> None:
    gate = TcpGate(store.url)
    await gate.open()
    f = store.pod_file("pay", "pay-1")
    out, notes = io.StringIO(), io.StringIO()
    stop = asyncio.Event()
    # An overlap shorter than the outage (but above the 1 s refresh): only "the bound does not move
    # while Elasticsearch is away" can save the lines indexed during the outage.
    opts = SearchOptions(follow=True, limit=0, as_json=True, es_url=gate.url, index_prefix=store.prefix,
                         follow_interval_s=0.2, follow_overlap_s=2)
    ready = asyncio.Event()
    task = asyncio.create_task(search_main(opts, out, notes, stop, ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        first = store.app(f, minutes_ago(0), "before")
        await store.index([first])
        await wait_for_count(out, 1, 10)

        await gate.shut()
        during = [store.app(f, minutes_ago(0), f"during {i}") for i in range(5)]
        await store.index(during)
        deadline = time.monotonic() + 10
        while "unreachable" not in notes.getvalue() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(4.0)  # the outage lasts twice the overlap
        await gate.open()

        await wait_for_count(out, 6, 20)
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0
    finally:
        stop.set()
        await gate.shut()
    assert printed_ids(out) == [first.doc_id] + [ln.doc_id for ln in during]
    assert f"Elasticsearch unreachable at {gate.url}" in notes.getvalue()
    assert "answers again" in notes.getvalue()
