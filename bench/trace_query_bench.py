"""`logpipe trace find` and `logpipe trace stats` response time over a million stored spans (target: p95 < 1 s).

What it does, against the local Elasticsearch (``logpipe dev up elasticsearch``):

1. Generates ``--spans`` spans as ``--spans-per-trace``-span traces (20 services, entry services with
   their operations, nested calls inside their parents, ~3 % failing traces answering 5xx, a long
   tail of slow ones), started over the last ``--window`` minutes. Each trace is one OTLP/JSON line
   parsed by the consumer's own parser (``parsers.LineParser``): the span documents are the ones the
   consumer indexes, in Jaeger's model with ECS beside it. Its summary is the dependency stage's
   (``consumer.dependencies.summary.summarize`` over the spans' link records).
2. Bulk-loads them into a prefix of its own (``bench-tq-<pid>``: ``-jaeger-span-*``, ``-traces-*``),
   with the consumer's index templates, then refreshes and force-merges, and turns the shard
   request cache off for them (every run is computed, none served from the cache).
3. Times each command's query path — ``find_main`` / ``stats_main`` as the CLI calls them (client,
   query, paging, rendering; not the interpreter's start-up) — ``--runs`` times per scenario, after
   one warm-up run, and prints p50/p95 and the verdict per scenario.
4. Deletes the bench's indices and templates (unless ``--keep``).

    python bench/trace_query_bench.py --spans 1000000 --runs 30

Wall-clock figures: on a loaded machine they are upper bounds (docs/BENCHMARKS.md says "loaded").
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumer.bulk import index_name
from consumer.config import IndexConfig
from consumer.dependencies.link import link_from_document
from consumer.dependencies.summary import summarize, summary_document
from consumer.dependencies.templates import install_dependency_templates, remove_dependency_templates
from consumer.index_templates import install_templates, remove_templates
from parsers import LineParser, Many, Parsed

TARGET_S = 1.0
SERVICES = [f"svc-{i:02d}" for i in range(20)]
ENTRY = SERVICES[:5]
OPERATIONS = {s: [f"{m} /api/{s}/{p}" for m, p in (("GET", "items"), ("POST", "orders"), ("GET", "users"))]
              + [f"db.query {s}", f"cache.get {s}"] for s in SERVICES}
SLOW_SHARE, ERROR_SHARE = 0.01, 0.03


@dataclass(frozen=True, slots=True)
class Generated:
    spans: int
    traces: int
    errors: int
    slow: int


def _headers(component: str, offset: int) -> dict[str, str]:
    return {
        "lp.node": "bench-node", "lp.namespace": "bench", "lp.pod": f"{component}-0", "lp.pod_uid": f"uid-{component}",
        "lp.container": component, "lp.component": component, "lp.type": "trace",
        "lp.path": f"/var/log/pods/{component}/trace.log", "lp.offset": str(offset),
        "lp.file_id": f"fingerprint::bench-{component}", "lp.read_ts": str(int(time.time() * 1000)),
    }


def trace_line(rng: random.Random, n: int, start_ns: int) -> tuple[bytes, str, bool, bool]:
    """One trace of ``n`` spans as an OTLP/JSON export request; its entry service, failing, slow."""
    trace_id = f"{rng.getrandbits(128):032x}"
    slow = rng.random() < SLOW_SHARE
    failing = rng.random() < ERROR_SHARE
    root_ms = rng.uniform(1000, 4000) if slow else rng.lognormvariate(4.0, 0.7)  # median ~55 ms
    entry = rng.choice(ENTRY)
    spans: list[tuple[str, dict[str, Any]]] = []
    ids: list[tuple[str, int, int]] = []  # (span id, start, end) of spans that may have children
    root_id = f"{rng.getrandbits(64):016x}"
    end_ns = start_ns + int(root_ms * 1e6)
    status = rng.choice((500, 502, 503)) if failing else 200
    root = {
        "traceId": trace_id, "spanId": root_id, "name": rng.choice(OPERATIONS[entry][:3]), "kind": 2,
        "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns),
        "attributes": [{"key": "http.response.status_code", "value": {"intValue": str(status)}}],
        "status": {"code": 2 if failing else 1},
    }
    spans.append((entry, root))
    ids.append((root_id, start_ns, end_ns))
    fail_at = rng.randrange(1, n) if failing and n > 1 else -1
    for i in range(1, n):
        parent, ps, pe = rng.choice(ids)
        service = rng.choice(SERVICES)
        s = rng.randint(ps, ps + (pe - ps) // 2)
        e = rng.randint(s, pe)
        sid = f"{rng.getrandbits(64):016x}"
        span = {
            "traceId": trace_id, "spanId": sid, "parentSpanId": parent, "name": rng.choice(OPERATIONS[service]),
            "kind": 3 if rng.random() < 0.5 else 2, "startTimeUnixNano": str(s), "endTimeUnixNano": str(e),
            "status": {"code": 2 if i == fail_at else 0},
        }
        spans.append((service, span))
        ids.append((sid, s, e))
    by_service: dict[str, list[dict[str, Any]]] = {}
    for service, span in spans:
        by_service.setdefault(service, []).append(span)
    request = {"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
         "scopeSpans": [{"scope": {"name": "bench"}, "spans": group}]}
        for svc, group in by_service.items()
    ]}
    return orjson.dumps(request), entry, failing, slow


def documents(args: argparse.Namespace, prefix: str) -> Iterator[tuple[list[bytes], bool, bool, int]]:
    """Per trace: its bulk lines (spans and summary), failing, slow, spans."""
    rng = random.Random(args.seed)
    parser = LineParser(index_prefix=prefix)
    now_ns = time.time_ns()
    window_ns = int(args.window * 60 * 1e9)
    traces = args.spans // args.spans_per_trace
    offsets: dict[str, int] = {}
    now_iso = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for _ in range(traces):
        start_ns = now_ns - window_ns + rng.randrange(window_ns - 5 * 10**9)
        line, entry, failing, slow = trace_line(rng, args.spans_per_trace, start_ns)
        offset = offsets.get(entry, 0)
        offsets[entry] = offset + len(line) + 1
        result = parser.parse(line, _headers(entry, offset))
        parts = result.parts if isinstance(result, Many) else (result,)
        out: list[bytes] = []
        links = []
        trace_id = ""
        for p in parts:
            if not isinstance(p, Parsed):
                raise SystemExit(f"the generated trace did not parse: {p}")
            index = p.index or index_name(prefix, p.log_type, p.doc, time.time())
            out += [orjson.dumps({"index": {"_index": index, "_id": p.doc_id}}), orjson.dumps(p.doc)]
            if p.log_type == "trace":
                link = link_from_document(dict(p.doc))
                if link is not None:
                    links.append(link)
                    trace_id = link.trace_id
        content = summarize(trace_id, links)
        day = content["start"][:10].replace("-", ".")
        out += [orjson.dumps({"index": {"_index": f"{prefix}-traces-{day}", "_id": trace_id}}),
                orjson.dumps(summary_document(content, None, now_iso))]
        yield out, failing, slow, len(links)


async def load(args: argparse.Namespace, prefix: str) -> Generated:
    """Generate and bulk-load everything; a few bulk requests in flight while the next is parsed."""
    spans = traces = errors = slow = 0
    in_flight: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(base_url=args.es_url) as http:

        async def send(body: bytes) -> None:
            # Ids are deterministic: a bulk sent again after a dropped connection or a 429 changes nothing.
            for attempt in range(1, 6):
                try:
                    async with http.post("/_bulk", data=body, headers={"Content-Type": "application/x-ndjson"},
                                         timeout=aiohttp.ClientTimeout(total=None)) as resp:
                        answer = orjson.loads(await resp.read())
                except (aiohttp.ClientError, OSError) as exc:
                    print(f"  bulk attempt {attempt}: {exc!r}; again", flush=True)
                    await asyncio.sleep(2 * attempt)
                    continue
                if resp.status == 429:
                    await asyncio.sleep(2 * attempt)
                    continue
                if resp.status != 200 or answer.get("errors"):
                    bad = next((i for i in answer.get("items", []) if next(iter(i.values())).get("error")), answer)
                    raise SystemExit(f"bulk failed ({resp.status}): {str(bad)[:500]}")
                return
            raise SystemExit("bulk failed 5 times")

        batch: list[bytes] = []
        size = reported = 0
        started = time.monotonic()
        for lines, failing, is_slow, n in documents(args, prefix):
            batch += lines
            size += sum(len(x) + 1 for x in lines)
            spans += n
            traces += 1
            errors += failing
            slow += is_slow
            if size >= 8 << 20:
                while len(in_flight) >= 2:
                    _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    for t in _:
                        t.result()
                body = b"\n".join(batch) + b"\n"
                in_flight.add(asyncio.create_task(send(body)))
                batch, size = [], 0
                await asyncio.sleep(0)
                if spans >= reported + 100_000:
                    reported = spans
                    print(f"  {spans:,} spans ({spans / (time.monotonic() - started):,.0f}/s)", flush=True)
        if batch:
            in_flight.add(asyncio.create_task(send(b"\n".join(batch) + b"\n")))
        for t in in_flight:
            await t
        print(f"  bulk-loaded in {time.monotonic() - started:.0f} s; refresh and force-merge", flush=True)
        for suffix in ("-jaeger-span-*", "-traces-*"):
            async with http.post(f"/{prefix}{suffix}/_refresh") as resp:
                resp.raise_for_status()
            # One segment per shard, as an index a day old has: the steady state a query meets.
            async with http.post(f"/{prefix}{suffix}/_forcemerge?max_num_segments=1",
                                 timeout=aiohttp.ClientTimeout(total=1800)) as resp:
                resp.raise_for_status()
            # No shard request cache: a range covering a whole shard is rewritten to match_all
            # before the cache key is made, so every run after the first would be a cache hit. A
            # live index (refreshed every second by the consumer) rarely serves one either.
            async with http.put(f"/{prefix}{suffix}/_settings",
                                json={"index": {"requests": {"cache": {"enable": False}}}}) as resp:
                resp.raise_for_status()
        async with http.get(f"/{prefix}-jaeger-span-*/_count") as resp:
            stored = orjson.loads(await resp.read())["count"]
        if stored != spans:
            raise SystemExit(f"{stored} span documents stored for {spans} generated")
    return Generated(spans, traces, errors, slow)


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))]


async def timed(runs: int, call: Callable[[], Awaitable[int]]) -> tuple[list[float], int]:
    code = await call()  # warm-up: connection pools, first-touch of the segments
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        code = await call()
        times.append(time.perf_counter() - t0)
    return times, code


async def measure(args: argparse.Namespace, prefix: str) -> list[tuple[str, list[float], int]]:
    from logpipe.tools.search.trace_find import FindOptions, find_main
    from logpipe.tools.search.trace_stats import GroupBy, StatsOptions, stats_main

    common: dict[str, Any] = {"es_url": args.es_url, "index_prefix": prefix}
    since = f"{args.window + 5}m"
    finds = [
        ("trace find --errors", FindOptions(errors=True, since=since, **common)),
        ("trace find --min-duration 1s --sort duration",
         FindOptions(min_duration="1s", sort="duration", since=since, **common)),
        ("trace find -c svc-03 --status 5xx", FindOptions(components=("svc-03",), statuses=("5xx",), since=since,
                                                            **common)),
        ("trace find -c svc-01 --root --limit 100", FindOptions(components=("svc-01",), root=True, limit=100,
                                                                since=since, **common)),
    ]
    stats = [
        ("trace stats", StatsOptions(since=since, **common)),
        ("trace stats -c svc-03", StatsOptions(components=("svc-03",), since=since, **common)),
        ("trace stats --by service --every 5m", StatsOptions(by=GroupBy.service, every="5m", since=since, **common)),
    ]
    results = []
    for title, fo in finds:
        times, code = await timed(args.runs, lambda fo=fo: find_main(fo, io.StringIO()))
        results.append((title, times, code))
        print(f"  {title}: p50 {statistics.median(times) * 1000:.0f} ms", flush=True)
    for title, so in stats:
        times, code = await timed(args.runs, lambda so=so: stats_main(so, io.StringIO()))
        results.append((title, times, code))
        print(f"  {title}: p50 {statistics.median(times) * 1000:.0f} ms", flush=True)
    return results


async def cleanup(args: argparse.Namespace, prefix: str) -> None:
    from elasticsearch import AsyncElasticsearch

    async with AsyncElasticsearch(args.es_url) as es:
        await es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
        await remove_dependency_templates(es, prefix)
        await remove_templates(es, prefix)


async def install(args: argparse.Namespace, prefix: str) -> None:
    from elasticsearch import AsyncElasticsearch

    cfg = IndexConfig(prefix=prefix, refresh_interval="30s")
    async with AsyncElasticsearch(args.es_url) as es:
        await install_templates(es, cfg)
        await install_dependency_templates(es, cfg)


async def main_async(args: argparse.Namespace) -> int:
    prefix = args.prefix or f"bench-tq-{os.getpid()}"
    print(f"trace query bench: {args.spans:,} spans in {args.spans // args.spans_per_trace:,} traces, "
          f"prefix {prefix}, {args.runs} runs per scenario", flush=True)
    try:
        if not args.reuse:
            await cleanup(args, prefix)  # what an interrupted --keep run left
            await install(args, prefix)
            t0, c0 = time.monotonic(), time.process_time()
            gen = await load(args, prefix)
            print(f"loaded {gen.spans:,} spans and {gen.traces:,} summaries ({gen.errors:,} failing, {gen.slow:,} "
                  f"over 1 s) in {time.monotonic() - t0:.0f} s ({time.process_time() - c0:.0f} s CPU here)",
                  flush=True)
        results = await measure(args, prefix)
    finally:
        if not args.keep:
            await cleanup(args, prefix)
            print(f"deleted {prefix}-* and its templates")
    print(f"\n{'command':<46} {'p50':>8} {'p95':>8} {'max':>8}  exit  verdict (p95 < {TARGET_S:.0f} s)")
    failed = 0
    for title, times, code in results:
        p50, p95 = statistics.median(times), percentile(times, 95)
        ok = p95 < TARGET_S
        failed += not ok
        print(f"{title:<46} {p50 * 1000:>6.0f}ms {p95 * 1000:>6.0f}ms {max(times) * 1000:>6.0f}ms  {code:>4}  "
              f"{'met' if ok else 'NOT met'}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--spans-per-trace", type=int, default=10)
    ap.add_argument("--window", type=int, default=50, help="minutes over which the traces start (ending now)")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--es-url", default=os.environ.get("LOGPIPE_ES_URL", "http://127.0.0.1:9200"))
    ap.add_argument("--prefix", default=None, help="index prefix (default bench-tq-<pid>)")
    ap.add_argument("--keep", action="store_true", help="leave the indices (then --reuse --prefix P times again)")
    ap.add_argument("--reuse", action="store_true", help="time an already loaded --prefix without loading")
    args = ap.parse_args()
    if args.reuse and not args.prefix:
        ap.error("--reuse needs --prefix")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
