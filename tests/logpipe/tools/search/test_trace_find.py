"""``logpipe trace find`` on the real Elasticsearch: 200 generated traces, written as summaries by the
dependency stage's store, and each filter returns exactly the ids the generator says it should.

The expected ids come from the generator's own record of each trace (its root's duration, status,
which spans failed, which services took part), not from the summaries, so a summary or a query
that drifted would fail here.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from consumer.config import ElasticsearchConfig, IndexConfig
from consumer.dependencies.join import TraceFlush
from consumer.dependencies.link import SpanLink
from consumer.dependencies.store import DependencyStore
from consumer.dependencies.templates import install_dependency_templates, remove_dependency_templates
from consumer.es_client import make_client
from consumer.index_templates import install_templates, remove_templates
from logpipe.tools.search.client import SearchClient
from logpipe.tools.search.errors import BadArgument, UnknownField
from logpipe.tools.search.trace_find import FindOptions, find, format_duration, table

pytestmark = pytest.mark.integration

N = 200
SERVICES = ("web", "api", "payments", "inventory", "search")
STATUSES = (200, 200, 200, 201, 404, 500, 503)


@dataclass(frozen=True, slots=True)
class Known:
    """What the generator made: the truth the filters are checked against."""

    trace_id: str
    start_us: int
    duration_us: int
    root_arrived: bool
    root_service: str
    status: int
    errors: int
    services: frozenset[str]
    operations: frozenset[str]
    links: tuple[SpanLink, ...]


def generate(now_us: int, seed: int = 16) -> list[Known]:
    rng = random.Random(seed)
    out: list[Known] = []
    for i in range(N):
        trace = f"{0xF1D000 + i:032x}"
        # Started 1..30 minutes ago, none within a minute of the 15-minute mark (--since 15m below).
        minute = rng.choice([m for m in range(1, 31) if m not in (14, 15, 16)])
        start = now_us - minute * 60_000_000 - rng.randrange(0, 50_000_000)
        duration = rng.choice([rng.randrange(200, 5_000), rng.randrange(5_000, 400_000),
                               rng.randrange(400_000, 4_000_000)])
        root_service = SERVICES[i % 3]  # web, api, payments enter traces
        status = rng.choice(STATUSES)
        root_error = status >= 500
        ops = [f"GET /{root_service}/{i % 4}"]
        links = [SpanLink(trace, f"{i:08x}00000000", (), root_service, "server", root_error, start, "", ops[0],
                          duration, status)]
        errors = int(root_error)
        services = {root_service}
        for k in range(rng.randrange(0, 6)):
            svc = rng.choice(SERVICES)
            err = rng.random() < 0.1
            op = f"{svc}.call{k}"
            child_start = start + 10 + k * 7
            child_dur = rng.randrange(1, max(2, duration - 10 - k * 7))  # children end within the root
            links.append(SpanLink(trace, f"{i:08x}{k + 1:08x}", (links[0].span_id,), svc, "client", err,
                                  child_start, "", op, child_dur, 0))
            errors += int(err)
            services.add(svc)
            ops.append(op)
        arrived = i % 10 != 7  # every tenth trace has lost its root span
        if not arrived:
            lost = links.pop(0)
            errors -= int(lost.error)
            services = {s.service for s in links}
            ops = [s.operation for s in links]
            if not links:  # a root alone: keep a child so the trace exists
                links = [SpanLink(trace, f"{i:08x}0000ffff", (lost.span_id,), "search", "server", False,
                                  start + 5, "", "orphan", 100, 0)]
                services, ops = {"search"}, ["orphan"]
            first = min(s.start_us for s in links)
            duration = max(s.end_us for s in links) - first
            start = first
            root_service, status = min(links, key=lambda s: (s.start_us, -s.duration_us, s.span_id)).service, 0
        out.append(Known(trace, start, duration, arrived, root_service, status, errors, frozenset(services),
                         frozenset(ops), tuple(links)))
    return out


@pytest.fixture(scope="module")
def now_us() -> int:
    return time.time_ns() // 1000


async def write_summaries(es_url: str, prefix: str, known: list[Known]) -> None:
    es = make_client(ElasticsearchConfig(url=es_url))
    try:
        cfg = IndexConfig(prefix=prefix)
        await install_templates(es, cfg)
        await install_dependency_templates(es, cfg)
        store = DependencyStore(es, prefix, bucket_s=300, summary_horizon=3600)
        for chunk in range(0, N, 50):
            flushes = [TraceFlush(k.trace_id, n % 4, k.links, ()) for n, k in enumerate(known[chunk:chunk + 50])]
            written = await store.write_traces(flushes)
            assert written.summaries == len(flushes)
        await es.indices.refresh(index=f"{prefix}-traces-*")
    finally:
        await es.close()


async def remove(es_url: str, prefix: str) -> None:
    es = make_client(ElasticsearchConfig(url=es_url))
    try:
        await es.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        await remove_dependency_templates(es, prefix)
        await remove_templates(es, prefix)
    finally:
        await es.close()


@pytest.fixture(scope="module")
def stored(es_url: str, now_us: int) -> Iterator[tuple[str, list[Known]]]:
    """The 200 traces as the dependency stage stores them (written once for the module, in its own loop)."""
    prefix = f"t-trace-find-{os.getpid()}-{now_us % 1_000_000}"
    known = generate(now_us)
    try:
        asyncio.run(write_summaries(es_url, prefix, known))
        yield prefix, known
    finally:
        asyncio.run(remove(es_url, prefix))


async def ids(es_url: str, prefix: str, **options: Any) -> list[str]:
    async with SearchClient(es_url) as client:
        found = await find(client, FindOptions(es_url=es_url, index_prefix=prefix, limit=1000, **options))
    return [s["trace_id"] for s in found]


def expect(known: list[Known], keep: Callable[[Known], bool], by: str = "start") -> list[str]:
    chosen = [k for k in known if keep(k)]
    if by == "start":
        chosen.sort(key=lambda k: (-k.start_us, -k.duration_us, k.trace_id))
    else:
        chosen.sort(key=lambda k: (-k.duration_us, -k.start_us, k.trace_id))
    return [k.trace_id for k in chosen]


async def test_filters_return_exactly_the_expected_traces(stored: tuple[str, list[Known]], es_url: str,
                                                          now_us: int) -> None:
    prefix, known = stored
    assert await ids(es_url, prefix) == expect(known, lambda k: True)
    assert await ids(es_url, prefix, sort="duration") == expect(known, lambda k: True, by="duration")
    assert await ids(es_url, prefix, min_duration="500ms", sort="duration") == expect(
        known, lambda k: k.duration_us >= 500_000, by="duration")
    assert await ids(es_url, prefix, min_duration="5ms", max_duration="400ms") == expect(
        known, lambda k: 5_000 <= k.duration_us <= 400_000)
    assert await ids(es_url, prefix, errors=True) == expect(known, lambda k: k.errors > 0)
    assert await ids(es_url, prefix, statuses=("5xx",)) == expect(known, lambda k: 500 <= k.status <= 599)
    assert await ids(es_url, prefix, statuses=("404", "503")) == expect(known, lambda k: k.status in (404, 503))
    assert await ids(es_url, prefix, errors=True, statuses=("2xx",), min_duration="1s") == expect(
        known, lambda k: k.errors > 0 and 200 <= k.status <= 299 and k.duration_us >= 1_000_000)
    # -c: the Component anywhere in the trace; --root: the one it entered through.
    assert await ids(es_url, prefix, components=("payments",)) == expect(known, lambda k: "payments" in k.services)
    assert await ids(es_url, prefix, components=("payments",), root=True) == expect(
        known, lambda k: k.root_service == "payments")
    assert await ids(es_url, prefix, operations=("GET /web/0",), root=True) == expect(
        known, lambda k: k.root_arrived and "GET /web/0" in k.operations)
    assert await ids(es_url, prefix, operations=("inventory.call2",)) == expect(
        known, lambda k: "inventory.call2" in k.operations)
    # Time: --since on the trace's start.
    cutoff = now_us - 15 * 60_000_000
    assert await ids(es_url, prefix, since="15m") == expect(known, lambda k: k.start_us >= cutoff)
    # --where on the summary's own fields, and its duration alias.
    assert await ids(es_url, prefix, where="spans>=5 and root.arrived=\"false\"") == expect(
        known, lambda k: len(k.links) >= 5 and not k.root_arrived)
    assert await ids(es_url, prefix, where='duration>"2s" or status=404') == expect(
        known, lambda k: k.duration_us > 2_000_000 or k.status == 404)
    async with SearchClient(es_url) as client:
        top = await find(client, FindOptions(index_prefix=prefix, limit=7, sort="duration"))
    assert [s["trace_id"] for s in top] == expect(known, lambda k: True, by="duration")[:7]


async def test_every_summary_equals_the_generators_truth(stored: tuple[str, list[Known]], es_url: str) -> None:
    prefix, known = stored
    async with SearchClient(es_url) as client:
        found = {s["trace_id"]: s for s in await find(client, FindOptions(index_prefix=prefix, limit=1000))}
    assert len(found) == N
    for k in known:
        s = found[k.trace_id]
        got = (s["start_us"], s["duration_us"], s["root"]["arrived"], s["root"]["service"],
               s["root"].get("status", 0), s["errors"], set(s["services"]), set(s["operations"]), s["spans"])
        want = (k.start_us, k.duration_us, k.root_arrived, k.root_service, k.status, k.errors, set(k.services),
                set(k.operations), len(k.links))
        assert got == want, k.trace_id


async def test_bad_options_name_the_fix(stored: tuple[str, list[Known]], es_url: str) -> None:
    prefix, _ = stored
    with pytest.raises(UnknownField, match="'nope'"):
        await ids(es_url, prefix, where="nope=1")
    with pytest.raises(BadArgument, match="--min-duration"):
        await ids(es_url, prefix, min_duration="fast")
    with pytest.raises(BadArgument, match="--root needs"):
        await ids(es_url, prefix, root=True)
    with pytest.raises(BadArgument, match="swap"):
        await ids(es_url, prefix, min_duration="2s", max_duration="1s")


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "logpipe.cli.main", "trace", "find", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_command_prints_a_table_or_json_and_exits_like_grep(
    stored: tuple[str, list[Known]], es_url: str
) -> None:
    prefix, known = stored
    base = ("--es-url", es_url, "--index-prefix", prefix)
    want = expect(known, lambda k: k.errors > 0 and k.duration_us >= 1_000_000, by="duration")
    code, out, _ = await cli(*base, "--errors", "--min-duration", "1s", "--sort", "duration", "--json",
                             "--limit", "500")
    assert code == 0
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert [r["trace_id"] for r in rows] == want
    assert all(r["errors"] > 0 and r["duration_us"] >= 1_000_000 and "services" in r for r in rows)

    code, out, _ = await cli(*base, "-c", "payments", "--root", "--limit", "3", "--sort", "duration")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["TRACE", "START", "(UTC)"] and len(lines) == 4
    slowest = [k for k in known if k.root_service == "payments"]
    slowest.sort(key=lambda k: (-k.duration_us, -k.start_us, k.trace_id))
    assert [line.split()[0] for line in lines[1:]] == [k.trace_id for k in slowest[:3]]
    assert format_duration(slowest[0].duration_us) in lines[1] and "payments" in lines[1]

    code, out, err = await cli(*base, "--min-duration", "1h")
    assert (code, out) == (1, "") and "no trace matches" in err
    code, _, err = await cli(*base, "--status", "5zz")
    assert code == 2 and "invalid --status '5zz'" in err
    code, _, err = await cli("--es-url", "http://127.0.0.1:1", "--index-prefix", prefix)
    assert code == 2 and "unreachable" in err


def test_the_table_marks_a_missing_root() -> None:
    lines = table([{
        "trace_id": "ab", "start_us": 1_764_633_600_000_000, "duration_us": 1_250_000, "spans": 3, "errors": 1,
        "services": ["api", "db"], "root": {"arrived": False, "service": "api", "operation": "GET /x"},
    }])
    assert lines[1].split("  ")[0] == "ab" and "2025-12-02 00:00:00.000" in lines[1]
    assert "1.25s" in lines[1] and "api GET /x (root missing)" in lines[1] and lines[1].endswith("api,db")
