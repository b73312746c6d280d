"""The soak: a long real run of files → ``logpipe ship`` → Kafka → ``logpipe consume`` → Elasticsearch
with rotation, copytruncate, restarts and network faults on a schedule, checked at the end.

Lines are written at ``rate`` per second over ``pods`` x 2 files (``access.log``, ``app.log``); each
file is rotated every ``rotate_every`` seconds (staggered; every third rotation a copytruncate, done
only once the shipper acknowledged the file to its end, as any agent needs), and rotated copies
beyond the two newest are deleted once acknowledged. Every ``event_every`` seconds one disturbance
from a shuffled cycle of: ``kill -9`` and SIGTERM of the shipper and of the consumer (each restarted
at once), and on each Kafka path (shipper → Kafka, Kafka → consumer, through the fault proxies of
:mod:`logpipe.dev.faults.kafka`) 500 ms of latency, a black hole of ``black_hole`` seconds,
connection resets every 3 s, and a broker that accepts connections but never answers.

At the end: every line exactly once in Elasticsearch (by content), peak and trend of RSS and open
fds of both agents (sampled every ``sample_every`` seconds; each must stay flat: the last quarter's
median within 1.5 x + 30 MB / + 20 fds of the second quarter's), the largest lag, the time to index
everything written before each fault once it ended, SIGTERM exit codes, and the agents' error
events that fall outside every disturbance's window (none may).

``bench/soak.py`` is the command line; ``tests/integration/test_soak.py`` runs 3 minutes of it.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from logpipe.dev.faults.kafka import FaultedKafka
from logpipe.dev.faults.pipeline import (
    LOG_TYPES,
    Child,
    LogTree,
    Outcome,
    consumer_config,
    count,
    outcome,
    registry_by_inode,
    remove_from_elasticsearch,
    shipper_config,
)
from logpipe.dev.faults.tcp_proxy import FaultProxy

RESTARTS = ("ship-kill9", "ship-term", "consume-kill9", "consume-term")
FAULTS = ("latency", "blackhole", "resets", "mute")
PATHS = ("ship", "consume")
#: After a disturbance ends, the agents' errors within this window are explained by it.
EXPLAINED_AFTER = 60.0


@dataclass
class SoakConfig:
    minutes: float = 30.0
    rate: int = 5000
    pods: int = 100
    rotate_every: float = 60.0
    event_every: float = 75.0
    black_hole: float = 60.0
    fault_seconds: float = 30.0  # latency, resets and mute
    sample_every: float = 5.0
    drain_timeout: float = 300.0
    seed: int = 1
    es_url: str = "http://127.0.0.1:9200"
    keep_indices: bool = False
    kinds: tuple[str, ...] = ()  # disturbances to cycle through (default: every restart and fault)


@dataclass
class Disturbance:
    kind: str
    began: float  # wall clock
    ended: float = 0.0
    resumed: float | None = None  # seconds from its end until everything written before it ended was indexed
    detail: str = ""


@dataclass
class Sample:
    t: float
    written: int
    indexed: int
    rss: tuple[float, float]
    fds: tuple[int, int]


@dataclass
class SoakReport:
    cfg: SoakConfig
    seconds: float
    outcome: Outcome
    disturbances: list[Disturbance]
    samples: list[Sample]
    rotations: int
    copytruncates: int
    deleted: int
    term_exit_codes: list[tuple[str, int | None]]
    unexplained: list[str]
    warnings: Counter[str] = field(default_factory=Counter)
    write_seconds: float = 0.0

    def trend(self, pick: Callable[[Sample], float]) -> tuple[float, float, float]:
        """(median of the 2nd quarter, median of the last quarter, peak) of a sampled series."""
        xs = [pick(s) for s in self.samples if pick(s) > 0]
        if len(xs) < 8:
            return (max(xs, default=0.0),) * 3  # type: ignore[return-value]
        q = len(xs) // 4
        return statistics.median(xs[q : 2 * q]), statistics.median(xs[3 * q :]), max(xs)

    def flat(self) -> list[str]:
        """What did not stay flat (empty when memory and fds are flat)."""
        out = []
        for name, pick, slack in (
            ("shipper RSS", lambda s: s.rss[0], 30.0), ("consumer RSS", lambda s: s.rss[1], 30.0),
            ("shipper fds", lambda s: float(s.fds[0]), 20.0), ("consumer fds", lambda s: float(s.fds[1]), 20.0),
        ):
            early, late, _ = self.trend(pick)
            if late > early * 1.5 + slack:
                out.append(f"{name} grew from {early:.0f} to {late:.0f}")
        return out

    @property
    def ok(self) -> bool:
        bad_terms = [c for _, c in self.term_exit_codes if c != 0]
        return self.outcome.exactly_once and not self.flat() and not self.unexplained and not bad_terms

    def summary(self) -> str:
        lines = [
            f"soak: {self.seconds / 60:.1f} min, target {self.cfg.rate} lines/s over {self.cfg.pods * 2} files, "
            f"{self.rotations} rotations ({self.copytruncates} copytruncate), {self.deleted} rotated files deleted",
            "  " + self.outcome.describe(),
            f"  written {self.outcome.written / max(self.write_seconds, 1):.0f} lines/s on average; "
            f"largest lag {max((s.written - s.indexed for s in self.samples), default=0)} lines",
        ]
        for name, pick, unit in (("shipper RSS", lambda s: s.rss[0], "MB"), ("consumer RSS", lambda s: s.rss[1], "MB"),
                                 ("shipper fds", lambda s: float(s.fds[0]), ""),
                                 ("consumer fds", lambda s: float(s.fds[1]), "")):
            early, late, peak = self.trend(pick)
            lines.append(f"  {name}: 2nd quarter {early:.0f}{unit}, last quarter {late:.0f}{unit}, "
                         f"peak {peak:.0f}{unit}")
        for d in self.disturbances:
            res = "" if d.resumed is None else f", all written before its end indexed {d.resumed:.1f}s after"
            lines.append(f"  {d.kind} {d.ended - d.began:.0f}s{res}{(' ' + d.detail) if d.detail else ''}")
        lines.append(f"  SIGTERM exit codes: {self.term_exit_codes}")
        lines.append(f"  warnings by event: {dict(self.warnings.most_common(8))}")
        lines.append(f"  unexplained errors: {len(self.unexplained)} {self.unexplained[:5]}")
        lines.append(f"  not flat: {self.flat()}")
        lines.append("  OK" if self.ok else "  FAILED")
        return "\n".join(lines)


class Soak:
    def __init__(self, cfg: SoakConfig, kafka: FaultedKafka, workdir: Path) -> None:
        self.cfg = cfg
        self.kafka = kafka
        self.rng = random.Random(cfg.seed)
        run = f"soak-{uuid.uuid4().hex[:8]}"
        self.prefix = f"{run}-"
        self.tree = LogTree(workdir, run)
        self.pods = [f"svc{i % 7}-7d4b9c5f6-p{i:04d}" for i in range(cfg.pods)]
        for p in self.pods:
            self.tree.add_pod(p)
        self.files = [(p, f) for p in self.pods for f in ("access.log", "app.log")]
        self.registry = workdir / "registry.json"
        self.shipper = Child(workdir, "ship", "soak", shipper_config(
            self.tree, kafka.ship, self.prefix, self.registry,
            tail={"poll_interval": "250ms", "close_inactive": "30s"}))
        self.consumer = Child(workdir, "consume", "soak", consumer_config(kafka.consume, cfg.es_url, self.prefix))
        self.ship_proxy, self.consume_proxy = kafka.proxies()
        self.disturbances: list[Disturbance] = []
        self.samples: list[Sample] = []
        self.terms: list[tuple[str, int | None]] = []
        self.rotated: dict[str, list[Path]] = {}
        self.rotations = self.copytruncates = self.deleted = 0
        self.pending_copy: dict[tuple[str, str], float] = {}  # file -> give up waiting at
        self.write_seconds = 0.0
        self.indexed = 0
        self._writing = True

    # --- the parts that run side by side ---------------------------------------------------------

    async def _writer(self) -> None:
        tick, carry, turn = 0.1, 0.0, 0
        first = last = time.monotonic()
        next_rotation = {k: first + self.rng.uniform(0, self.cfg.rotate_every) for k in self.files}
        while self._writing:
            began = time.monotonic()
            carry += self.cfg.rate * (began - last)  # by the clock: a late turn writes more, the rate holds
            last = began
            n, carry = int(carry), carry - int(carry)
            per, extra = divmod(n, len(self.files))
            for i, (pod, name) in enumerate(self.files):
                k = per + (1 if (i + turn) % len(self.files) < extra else 0)
                if k and (pod, name) not in self.pending_copy:
                    self.tree.write(pod, name, k)
            turn += extra
            self.write_seconds = time.monotonic() - first
            now = time.monotonic()
            if self.pending_copy:
                self._copytruncate_when_read(now)
            for key, due in next_rotation.items():
                if now >= due:
                    if self.tree.generations[f"{key[0]} {key[1]}"] % 3 == 2:
                        # copytruncate only once the shipper acknowledged the file to its end (it removes
                        # bytes nobody read, under any agent): the file is held still until then
                        self.pending_copy[key] = now + 30.0
                    else:
                        self._rotate(*key, copy=False)
                    next_rotation[key] = now + self.cfg.rotate_every
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - began)))

    def _copytruncate_when_read(self, now: float) -> None:
        read = registry_by_inode(self.registry)
        for key, deadline in list(self.pending_copy.items()):
            try:
                st = self.tree.path(*key).stat()
            except FileNotFoundError:
                del self.pending_copy[key]
                continue
            if read.get(st.st_ino) == st.st_size:
                self._rotate(*key, copy=True)
            elif now > deadline:  # the shipper is down or far behind: rename instead
                self._rotate(*key, copy=False)
            else:
                continue
            del self.pending_copy[key]

    def _rotate(self, pod: str, name: str, copy: bool) -> None:
        dst = self.tree.rotate(pod, name, copytruncate=copy)
        if dst is None:
            return
        self.rotations += 1
        self.copytruncates += copy
        kept = self.rotated.setdefault(f"{pod} {name}", [])
        kept.append(dst)
        read = registry_by_inode(self.registry) if len(kept) > 2 else {}
        while len(kept) > 2:  # logrotate's "rotate 2", but only what the shipper acknowledged to its end
            old = kept[0]
            try:
                st = old.stat()
            except FileNotFoundError:
                kept.pop(0)
                continue
            if read.get(st.st_ino) != st.st_size:
                break
            old.unlink()
            kept.pop(0)
            self.deleted += 1

    async def _monitor(self) -> None:
        last = 0.0
        while True:
            try:
                self.indexed = await asyncio.to_thread(count, self.cfg.es_url, self.prefix)
            except OSError:
                pass
            now = time.monotonic()
            if now - last >= self.cfg.sample_every:
                last = now
                self.samples.append(Sample(
                    time.time(), self.tree.total, self.indexed,
                    (self.shipper.rss_mb(), self.consumer.rss_mb()),
                    (self.shipper.open_fds(), self.consumer.open_fds())))
            await asyncio.sleep(1.0)

    async def _restart(self, child: Child, how: str) -> str:
        if how == "kill9":
            await asyncio.to_thread(child.kill9)
            await asyncio.to_thread(child.start)
            return ""
        code = await asyncio.to_thread(child.stop, 60.0)
        self.terms.append((child.kind, code))
        await asyncio.to_thread(child.start)
        return f"(exit {code})"

    async def _fault(self, proxy: FaultProxy, kind: str, seconds: float) -> None:
        began = time.monotonic()
        try:
            if kind == "latency":
                proxy.latency = 0.5
                await asyncio.sleep(seconds)
            elif kind == "resets":
                while (elapsed := time.monotonic() - began) < seconds:
                    proxy.set_mode("reset" if elapsed % 3.0 < 0.5 else "pass")
                    await asyncio.sleep(0.1)
            else:
                proxy.set_mode(kind)
                await asyncio.sleep(seconds)
        finally:
            proxy.latency = 0.0
            proxy.set_mode("pass")

    async def _disturb(self, kind: str) -> None:
        d = Disturbance(kind, time.time())
        self.disturbances.append(d)
        target, _, what = kind.partition("-")
        if what in ("kill9", "term"):
            d.detail = await self._restart(self.shipper if target == "ship" else self.consumer, what)
        else:
            proxy = self.ship_proxy if target == "ship" else self.consume_proxy
            await self._fault(proxy, what, self.cfg.black_hole if what == "blackhole" else self.cfg.fault_seconds)
        d.ended = time.time()
        want, ended = self.tree.total, time.monotonic()
        while self.indexed < want and time.monotonic() - ended < self.cfg.event_every:
            await asyncio.sleep(0.5)
        if self.indexed >= want:
            d.resumed = time.monotonic() - ended

    def schedule(self) -> list[str]:
        kinds = list(self.cfg.kinds) or [*RESTARTS, *(f"{p}-{f}" for p in PATHS for f in FAULTS)]
        n = max(1, int(self.cfg.minutes * 60 // self.cfg.event_every) - 1)
        out: list[str] = []
        while len(out) < n:
            cycle = list(kinds)
            if not self.cfg.kinds:
                self.rng.shuffle(cycle)
            out.extend(cycle)
        return out[:n]

    # --- the run ---------------------------------------------------------------------------------

    async def run(self) -> SoakReport:
        await self.ship_proxy.start()
        await self.consume_proxy.start()
        await self._create_topics()
        began = time.monotonic()
        monitor = asyncio.create_task(self._monitor())
        writer: asyncio.Task[None] | None = None
        try:
            await asyncio.to_thread(self.shipper.start)
            await asyncio.to_thread(self.consumer.start)
            writer = asyncio.create_task(self._writer())
            end = began + self.cfg.minutes * 60
            for i, kind in enumerate(self.schedule()):
                await asyncio.sleep(max(0.0, began + (i + 1) * self.cfg.event_every - time.monotonic()))
                if time.monotonic() >= end - 5:
                    break
                self._check_alive()
                await self._disturb(kind)
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            self._writing = False
            await writer
            deadline = time.monotonic() + self.cfg.drain_timeout
            while self.indexed < self.tree.total and time.monotonic() < deadline:
                self._check_alive()
                await asyncio.sleep(1.0)
            await asyncio.sleep(2.0)  # the last commits
            seconds = time.monotonic() - began
            result = await asyncio.to_thread(outcome, self.cfg.es_url, self.prefix, self.tree)
        finally:
            self._writing = False
            if writer is not None:
                writer.cancel()
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            for p in (self.ship_proxy, self.consume_proxy):
                p.latency = 0.0
                p.set_mode("pass")
            codes = await asyncio.gather(asyncio.to_thread(self.shipper.stop), asyncio.to_thread(self.consumer.stop))
            self.terms += [("ship", codes[0]), ("consume", codes[1])]
            await self.ship_proxy.stop()
            await self.consume_proxy.stop()
            await self._delete_topics()
            if not self.cfg.keep_indices:
                with contextlib.suppress(Exception):  # cleanup only (also when interrupted)
                    await remove_from_elasticsearch(self.cfg.es_url, self.prefix)
        unexplained, warnings = self._errors()
        report = SoakReport(self.cfg, seconds, result, self.disturbances, self.samples, self.rotations,
                            self.copytruncates, self.deleted, self.terms, unexplained, warnings, self.write_seconds)
        return report

    def _check_alive(self) -> None:
        for c in (self.shipper, self.consumer):
            if not c.running:
                raise RuntimeError(f"{c.kind} exited on its own ({c.proc and c.proc.returncode}): {c.tail()}")

    def _errors(self) -> tuple[list[str], Counter[str]]:
        """Error events outside every disturbance's window, and warnings counted by event name."""
        windows = [(d.began - 1.0, (d.ended or d.began) + EXPLAINED_AFTER) for d in self.disturbances]
        unexplained: list[str] = []
        warnings: Counter[str] = Counter()
        for child in (self.shipper, self.consumer):
            try:
                text = child.log.read_bytes()
            except OSError:
                continue
            for raw in text.splitlines():
                if not raw.startswith(b"{"):
                    if b"Traceback" in raw or b"never retrieved" in raw:
                        unexplained.append(f"{child.kind}: {raw[:200].decode(errors='replace')}")
                    continue
                try:
                    ev: Any = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                level = ev.get("level")
                if level == "warning":
                    warnings[f"{child.kind}:{ev.get('msg')}"] += 1
                if level not in ("error", "critical"):
                    continue
                at = _epoch(str(ev.get("ts", "")))
                if not any(a <= at <= b for a, b in windows):
                    unexplained.append(f"{child.kind}: {raw[:300].decode(errors='replace')}")
        return unexplained, warnings

    async def _create_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka.direct)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(f"{self.prefix}{t}", 3, 1) for t in LOG_TYPES])
        finally:
            await admin.close()

    async def _delete_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka.direct)
        try:
            await admin.start()
            await admin.delete_topics([f"{self.prefix}{t}" for t in (*LOG_TYPES, "deadletter", "links")])
        except Exception:
            pass
        finally:
            await admin.close()


def _epoch(ts: str) -> float:
    """``2026-12-02T00:01:02.345Z`` → seconds since the epoch (0 when unparseable: counted unexplained)."""
    try:
        whole, _, frac = ts.rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{frac or 0}")
    except ValueError:
        return 0.0


async def run_soak(cfg: SoakConfig, kafka: FaultedKafka, workdir: Path) -> SoakReport:
    return await Soak(cfg, kafka, workdir).run()
