"""Alert latency, full pipeline: a matching line appended to a pod log -> the alert visible in Alertmanager.

    python bench/alert_latency_bench.py [--observe-only] [--trials 200] [--background 100] [--kafka 127.0.0.1:9092]
                                        [--es http://127.0.0.1:9200] [--alertmanager http://127.0.0.1:9093]

Runs the real processes: ``logpipe ship`` tails a kubelet-shaped tree (``logpipe.dev.demo.podsim``)
into a fresh Kafka topic; ``logpipe consume`` (its own consumer group) parses, indexes into fresh
Elasticsearch indices and evaluates a rule file with one rule, ``{any: true}`` on the keyword
``BENCH-PANIC`` grouped by ``url.path``. Each trial appends one matching access line with a new
path (so each trial is a new alert) and polls ``GET /api/v2/alerts`` every 10 ms until the alert
with that ``url_path`` label is there; the time from the write to that answer is the latency. A
background writer appends ``--background`` ordinary lines per second to another pod meanwhile.
Prints p50/p90/p99/max (target: p99 < 3 s) and, first, the in-process CPU cost of ``observe()``
per document — keyword rules, and latency conditions (p99/avg over 20 and 1 000 groups, normal
traffic and an incident where 30 % of requests are slow) with the cost of one tick over their
groups; ``--observe-only`` prints just that. Topic, indices and alerts are removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logpipe.dev.demo.podsim import PodSimulator, SimPod

POLL_S = 0.01


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(orjson.dumps(data).decode())  # JSON is YAML
    return path


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("wb")
    return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def panic_line(n: int, run: str) -> bytes:
    rec = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "error",
        "method": "POST",
        "path": f"/bench/{run}/{n}",
        "status": 500,
        "request_time": 0.012,
        "msg": f"BENCH-PANIC trial {n}: nil pointer dereference",
    }
    return orjson.dumps(rec) + b"\n"


def append(pod: SimPod, data: bytes) -> None:
    fd = os.open(pod.access_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


async def alert_visible(session: aiohttp.ClientSession, am: str, alertname: str, path: str) -> bool:
    params = [("filter", f'alertname="{alertname}"'), ("filter", f'url_path="{path}"')]
    async with session.get(am + "/api/v2/alerts", params=params) as resp:
        return resp.status == 200 and bool(await resp.json())


async def wait_alert(
    session: aiohttp.ClientSession, am: str, alertname: str, path: str, timeout: float, procs: list[Any]
) -> float | None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if await alert_visible(session, am, alertname, path):
            return time.perf_counter()
        if any(p.poll() is not None for p in procs):
            raise SystemExit("a pipeline process exited; see its log under the work directory")
        await asyncio.sleep(POLL_S)
    return None


async def background(sim: PodSimulator, pod: SimPod, rate: float, stop_at: asyncio.Event) -> None:
    if rate <= 0:
        return
    while not stop_at.is_set():
        sim.write_access(pod, max(1, int(rate / 10)), status=200)
        await asyncio.sleep(0.1)


async def create_topics(kafka: str, topics: list[str]) -> None:
    """Create the topics first, so the consumer is assigned them at once (not after a metadata refresh)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1) for t in topics])
    finally:
        await admin.close()


async def cleanup(am: str, es: str, alertname: str, prefix: str, topics: list[str], kafka: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(am + "/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}) as resp:
            alerts = await resp.json() if resp.status == 200 else []
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = [
            {"labels": a["labels"], "startsAt": a["startsAt"], "endsAt": now, "generatorURL": a["generatorURL"]}
            for a in alerts
        ]
        if body:
            await s.post(am + "/api/v2/alerts", json=body)
        await s.delete(f"{es}/{prefix}-*", params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        await admin.delete_topics([t for t in topics if t in existing])
    except Exception as exc:  # best effort
        print(f"topic cleanup: {exc!r}", file=sys.stderr)
    finally:
        await admin.close()


async def run(args: argparse.Namespace) -> int:
    run_id = uuid.uuid4().hex[:8]
    alertname = f"alert-latency-{run_id}"
    topic = f"bench-alerts-{run_id}-access"
    prefix = f"bench-alerts-{run_id}"
    work = Path(tempfile.mkdtemp(prefix="alert-bench-"))
    sim = PodSimulator(work / "pods", work / "logs", seed=5)
    target = sim.add_pod(f"benchpay{run_id}", namespace="bench")
    noise = sim.add_pod(f"benchcart{run_id}", namespace="bench")
    sim.write_access(target, 1, status=200)  # files exist before the shipper starts
    sim.write_access(noise, 1, status=200)

    rules = write_yaml(
        work / "rules.yaml",
        {
            "channels": {"alertmanager": {"type": "alertmanager", "url": args.alertmanager}},
            "rules": [
                {
                    "name": alertname,
                    "severity": "critical",
                    "match": {"keywords": ["BENCH-PANIC"]},
                    "condition": {"any": True},
                    "group_by": ["service.name", "url.path"],
                    "realert": "1h",
                }
            ],
        },
    )
    ship_cfg = write_yaml(
        work / "ship.yaml",
        {
            "node_name": "bench-node",
            "pods_root": str(work / "pods"),
            "logs_root": str(work / "logs"),
            "registry": {"path": str(work / "registry.json")},
            "kafka": {"bootstrap": args.kafka},
            "rules": {"topic_prefix": f"bench-alerts-{run_id}-"},
            "http": {"port": 0},
        },
    )
    others = [f"bench-alerts-{run_id}-{t}" for t in ("app", "stdout", "trace")]
    await create_topics(args.kafka, [topic])
    py = [sys.executable, "-m", "logpipe.cli.main"]
    consumer = start(
        [
            *py,
            "consume",
            "--kafka-bootstrap",
            args.kafka,
            "--es-url",
            args.es,
            "--group-id",
            f"bench-{run_id}",
            "--topics",
            topic,
            "--index-prefix",
            prefix,
            "--http-port",
            "0",
            "--rules",
            str(rules),
        ],
        work / "consume.log",
    )
    shipper = start([*py, "ship", "--config", str(ship_cfg)], work / "ship.log")
    procs = [consumer, shipper]
    latencies: list[float] = []
    missed = 0
    stop_bg = asyncio.Event()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            # warm-up (group join, first fetch): repeat one line until its alert shows
            deadline = time.monotonic() + 120
            while not await alert_visible(session, args.alertmanager, alertname, f"/bench/{run_id}/-1"):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    print(f"warm-up alert never arrived; logs in {work}", file=sys.stderr)
                    return 2
                append(target, panic_line(-1, run_id))
                await asyncio.sleep(1.0)
            bg = asyncio.create_task(background(sim, noise, args.background, stop_bg))
            rng = random.Random(1)
            for n in range(args.trials):
                await asyncio.sleep(rng.uniform(0.05, 0.3))
                append(target, panic_line(n, run_id))
                t0 = time.perf_counter()
                t1 = await wait_alert(session, args.alertmanager, alertname, f"/bench/{run_id}/{n}", 30, procs)
                if t1 is None:
                    missed += 1
                else:
                    latencies.append(t1 - t0)
            stop_bg.set()
            await bg
    finally:
        stop_bg.set()
        for p in procs:
            stop(p)
        await cleanup(args.alertmanager, args.es, alertname, prefix, [topic, *others], args.kafka)
    if not latencies:
        print("no alert arrived", file=sys.stderr)
        return 2
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    print(
        f"alert latency over {len(latencies)} trials (missed {missed}), background {args.background} lines/s: "
        f"p50 {q[49] * 1000:.0f} ms, p90 {q[89] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms, min {min(latencies) * 1000:.0f} ms"
    )
    return 0 if q[98] < 3.0 and not missed else 1


def _docs(n: int, slow_share: float, seed: int = 1) -> list[dict[str, Any]]:
    """Access documents of 20 Components x 1 000 paths, durations log-normal around 40 ms; ``slow_share``
    of them take 1.5 s (over the latency rules' thresholds)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).isoformat()
    docs = []
    for i in range(n):
        seconds = 1.5 if rng.random() < slow_share else rng.lognormvariate(-3.2, 0.6)
        docs.append({
            "@timestamp": now,
            "message": f'{{"path": "/api/orders/{i % 1000}", "status": 200, "msg": "ok {i}"}}',
            "service": {"name": f"svc{i % 20}"},
            "url": {"path": f"/api/orders/{i % 1000}"},
            "http": {"response": {"status_code": 200}},
            "event": {"duration": round(seconds * 1e9)},
            "kubernetes": {"namespace": "prod"},
            "logpipe": {"type": "access"},
            "trace": {"id": f"{i:032x}"},
        })
    return docs


def _cost(rules: list[dict[str, Any]], docs: list[dict[str, Any]]) -> float:
    """CPU µs per document of ``AlertEngine.observe`` with ``rules`` (process time: the machine may be loaded)."""
    from consumer.alerts.engine import AlertEngine
    from consumer.alerts.rules import validate_rule_file

    data = {"channels": {"am": {"type": "alertmanager"}}, "rules": rules, "engine": {"dedupe_window": 0}}
    engine = AlertEngine(validate_rule_file(data, "bench"))
    for d in docs[:2000]:  # warm: groups and sketches exist, as in a running consumer
        engine.observe(d)
    t = time.process_time()
    for d in docs:
        engine.observe(d)
    elapsed = time.process_time() - t
    t = time.process_time()
    engine.tick_now()  # the per-second tick over every group
    tick = time.process_time() - t
    groups = sum(len(st) for st in engine.states.values())
    _cost.last_tick = (tick * 1e3, groups)  # type: ignore[attr-defined]
    return elapsed / len(docs) * 1e6


def observe_cost(n: int = 20_000) -> str:
    """In-process CPU cost of ``AlertEngine.observe`` per document: keyword rules, and latency rules."""
    rules: list[dict[str, Any]] = [
        {
            "name": "pay-5xx",
            "match": {"components": ["pay-gw"], "keywords": ["panic", "connection refused"], "where": "status>=500"},
            "condition": {"count": 3, "within": "30s"},
            "group_by": ["service.name", "url.path"],
        },
        {
            "name": "ratio",
            "match": {"where": 'status>=500 and path~"^/pay"'},
            "condition": {"ratio": 0.05, "within": "1m", "min_count": 20},
            "group_by": ["service.name"],
        },
        {"name": "silent", "condition": {"absent": "5m"}},
        {"name": "oom", "match": {"keywords": ["OutOfMemoryError"], "types": ["stdout"]}},
        {"name": "timeouts", "match": {"regexes": [r"timeout after \d+ms"], "ignore_case": True}},
    ]
    p99 = {"name": "slow", "match": {"types": ["access"]},
           "condition": {"p99": "800ms", "within": "5m", "min_count": 50}, "group_by": ["service.name"]}
    p99_paths = {**p99, "name": "slow-paths", "group_by": ["service.name", "url.path"]}
    avg = {**p99, "name": "slow-avg", "condition": {"avg": "300ms", "within": "5m", "min_count": 50}}
    every = {"name": "every", "match": {"types": ["access"]}, "condition": {"count": 10**9, "within": "5m"},
             "group_by": ["service.name"]}
    normal, incident = _docs(n, 0.002), _docs(n, 0.3, seed=2)
    out = [
        f"1 rule: {_cost(rules[:1], normal):.1f}",
        f"5 rules: {_cost(rules, normal):.1f}",
        f"a count rule every doc matches (20 groups): {_cost([every], normal):.1f}",
        f"latency p99 by service (20 groups): {_cost([p99], normal):.1f}",
    ]
    out.append(f"latency p99 by service+path (1 000 groups): {_cost([p99_paths], normal):.1f}")
    tick_ms, groups = _cost.last_tick  # type: ignore[attr-defined]
    out.append(f"the same, 30 % slow (incident): {_cost([p99_paths], incident):.1f}")
    out.append(f"latency avg by service: {_cost([avg], normal):.1f}")
    out.append(f"5 rules + latency p99: {_cost([*rules, p99], normal):.1f}")
    return (
        "observe() CPU µs/doc: " + ", ".join(out)
        + f"; one tick over {groups} latency groups: {tick_ms:.1f} ms"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--background", type=float, default=100.0, help="ordinary lines per second meanwhile")
    p.add_argument("--kafka", default=os.environ.get("LOGPIPE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--es", default=os.environ.get("LOGPIPE_ES_URL", "http://127.0.0.1:9200"))
    p.add_argument("--alertmanager", default=os.environ.get("LOGPIPE_ALERTMANAGER_URL", "http://127.0.0.1:9093"))
    p.add_argument("--observe-only", action="store_true", help="print the in-process costs only (no services)")
    args = p.parse_args()
    print(observe_cost())
    if args.observe_only:
        return
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
