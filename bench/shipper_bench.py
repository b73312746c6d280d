"""Shipper benchmark: files -> Kafka, ``logpipe ship`` beside the OpenTelemetry Collector and rsyslog.

    python bench/shipper_bench.py [--lines 1000000] [--files 4] [--rounds 3] [--bootstrap 127.0.0.1:9092]
                                  [--rss-files 1000] [--skip-rsyslog] [--skip-otelcol]

All three read the same generated JSON access-log files (``bench/access_log_gen.py``, ~330 bytes a
line) from their beginning and produce to the same local broker, each into its own fresh topic, with
acks=all and their checkpoints on:

- ``logpipe ship``: its defaults (zstd at the client's level 3, idempotent; ``--compression`` to change), registry on;
- the OpenTelemetry Collector: filelog receiver (``start_at: beginning``, offsets in the
  ``file_storage`` extension) -> kafka exporter (``encoding: raw``: one record per line, acks all,
  zstd), built once from the Go module proxy by ``bench/otelcol_build.py`` and cached;
- rsyslog: ``imfile`` (inotify, its state files) -> ``omkafka`` (librdkafka, lz4, acks -1); needs
  Debian's ``rsyslog`` and ``rsyslog-kafka`` packages.

Rounds rotate the order (the machine is shared and noisy). The clock runs from the process start
until the last line is acknowledged, read the same way for all three: from outside, as the sum of
the topic's end offsets (acks=all: a record is counted once all in-sync replicas have it), so no
shipper pays for being watched (polling ``logpipe ship``'s ``/metrics`` 20 times a second cost it
~5 % of its CPU). Each process's CPU time (user + system, all its
threads, from ``/proc/<pid>/stat``) is read at that moment and divided by the lines: CPU per line.

Then ``logpipe ship`` tails ``--rss-files`` files (10 lines each) and its resident memory is read
from ``/proc`` once every line is acknowledged (``VmRSS``, and the peak ``VmHWM``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from logpipe.dev.scrape import sample_total

sys.path.insert(0, str(Path(__file__).resolve().parent))
from access_log_gen import line as access_line
from otelcol_build import build as build_otelcol

RSYSLOG_CONF = """\
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="raw" type="string" string="%msg%")
input(type="imfile" File="{glob}" Tag="bench" ruleset="tokafka" freshStartTail="off" reopenOnTruncate="on")
ruleset(name="tokafka" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="4096") {{
  action(type="omkafka" broker=["{bootstrap}"] topic="{topic}" template="raw"
         confParam=["compression.codec=lz4", "queue.buffering.max.ms=5", "batch.num.messages=10000"]
         topicConfParam=["request.required.acks=-1"]
         partitions.auto="on")
}}
"""


def make_tree(root: Path, files: int, lines: int, seed: int = 1) -> tuple[Path, int]:
    """A kubelet-shaped tree with ``files`` access logs holding ``lines`` lines in all; returns (dir, bytes)."""
    rng = random.Random(seed)
    uid = str(uuid.UUID(int=rng.getrandbits(128)))
    vol = root / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "logs"
    vol.mkdir(parents=True)
    (root / "logs" / f"bench_web-7d4b9c5f6-x2x9z_{uid}" / "web").mkdir(parents=True)
    total = 0
    per = lines // files
    for f in range(files):
        with open(vol / f"access{f}.log", "wb") as out:
            buf = [access_line(rng, i) + b"\n" for i in range(per)]
            data = b"".join(buf)
            out.write(data)
            total += len(data)
    return vol, total


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


OTELCOL_CONF = """\
extensions:
  file_storage:
    directory: {storage}
receivers:
  file_log:
    include: ["{glob}"]
    start_at: beginning
    storage: file_storage
    retry_on_failure:  # back-pressure instead of dropping lines when the exporter's queue is full
      enabled: true
      initial_interval: 50ms
      max_interval: 1s
      max_elapsed_time: 0s
exporters:
  kafka:
    brokers: ["{bootstrap}"]
    logs:
      topic: {topic}
      encoding: raw
    producer:
      required_acks: -1
      compression: zstd
    sending_queue:
      block_on_overflow: true
service:
  extensions: [file_storage]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [file_log]
      exporters: [kafka]
"""

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sample_total(text, name)


def run_logpipe(root: Path, bootstrap: str, prefix: str, expected: int, timeout: float,
                compression: str = "zstd", work: Path | None = None, tree: str | None = None,
                counted: bool = True) -> dict[str, float]:
    """Start ``logpipe ship`` on ``root`` (its registry and config in ``work``); seconds to the last ack, RSS, CPU.

    ``counted``: the last ack is seen in the topic (``<prefix>access``), as for the peers; else (many
    small files of another type) from the shipper's ``lines_acked`` counter."""
    work = work or root
    work.mkdir(parents=True, exist_ok=True)
    cfg = {
        "node_name": "bench",
        "pods_root": str(root / "pods"),
        "logs_root": str(root / "logs"),
        "registry": {"path": str(work / "registry.json")},
        "kafka": {"bootstrap": bootstrap, "compression": compression},
        "rules": {"topic_prefix": prefix},
        "pod_metadata": {"kubernetes_api": "off"},
        "http": {"host": "127.0.0.1", "port": 0},
        "log_level": "warning",
    }
    (work / "shipper.yaml").write_text(yaml.safe_dump(cfg))
    argv = [sys.executable, "-m", "logpipe.cli.main", "ship", "--config", str(work / "shipper.yaml")]
    env = {**os.environ, "PYTHONPATH": tree} if tree else None  # another build of logpipe (--compare-tree)
    if counted:
        return run_counted(argv, work, "shipper", bootstrap, f"{prefix}access", expected, timeout, env)
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(work / "shipper.stderr", "wb"), env=env)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split(b"=", 1)[1])
    acked = 0.0
    try:
        while time.monotonic() - t0 < timeout:
            acked = metric(port, "logpipe_shipper_lines_acked_total")
            if acked >= expected:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        rss, hwm = rss_mb(proc.pid)
        cpu = cpu_seconds(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {"seconds": elapsed, "lines": acked, "rss_mb": rss, "hwm_mb": hwm, "cpu_s": cpu}


class TopicCounter:
    """Records in a topic (the sum of its partitions' end offsets), through one long-lived consumer."""

    def __init__(self, bootstrap: str) -> None:
        self._runner = asyncio.Runner()
        self._c, self._admin = self._runner.run(self._start(bootstrap))

    @staticmethod
    async def _start(bootstrap: str) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await c.start()
        await admin.start()
        return c, admin

    def count(self, topic: str) -> int:
        """The topic's records; 0 while it does not exist yet or its leaders are being elected."""
        return self._runner.run(self._count(topic))

    async def _count(self, topic: str) -> int:
        try:
            (desc,) = await self._admin.describe_topics([topic])
            parts = [p["partition"] for p in desc.get("partitions", [])] if not desc.get("error_code") else []
            if not parts:
                return 0
            ends = await self._c.end_offsets([TopicPartition(topic, p) for p in parts])
            return sum(ends.values())
        except KafkaError:
            return 0

    def close(self) -> None:
        self._runner.run(self._c.stop())
        self._runner.run(self._admin.close())
        self._runner.close()


def run_counted(argv: list[str], root: Path, name: str, bootstrap: str, topic: str, expected: int,
                timeout: float, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run a shipper (``argv``) until ``topic`` holds ``expected`` records; seconds, RSS, CPU."""
    counter = TopicCounter(bootstrap)
    t0 = time.monotonic()
    stderr = root / f"{name}.stderr"
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(stderr, "wb"), env=env)
    got, last_change, elapsed, cpu = 0, t0, 0.0, 0.0
    rss = hwm = 0.0
    try:
        while time.monotonic() - t0 < timeout:
            n = counter.count(topic)
            now = time.monotonic()
            if n > got:
                got, last_change, elapsed = n, now, now - t0
                cpu = cpu_seconds(proc.pid)
                rss, hwm = rss_mb(proc.pid)
            if got >= expected or (got and now - last_change > 5):  # done, or no progress for 5 s
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {stderr.read_text()[-2000:]}")
            time.sleep(0.1)
    finally:
        counter.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"seconds": elapsed, "lines": got, "rss_mb": rss, "hwm_mb": hwm, "cpu_s": cpu}


def run_rsyslog(vol: Path, root: Path, bootstrap: str, topic: str, expected: int, timeout: float) -> dict[str, float]:
    """rsyslogd (imfile -> omkafka) in the foreground on the files, its own work dir and pid file."""
    root.mkdir(parents=True)
    work = root / "rsyslog-work"
    work.mkdir()
    conf = root / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, glob=f"{vol}/*.log", bootstrap=bootstrap, topic=topic))
    return run_counted(["rsyslogd", "-n", "-f", str(conf), "-i", str(root / "rsyslog.pid")], root, "rsyslog",
                       bootstrap, topic, expected, timeout)


def run_otelcol(binary: Path, vol: Path, root: Path, bootstrap: str, topic: str, expected: int,
                timeout: float) -> dict[str, float]:
    """The Collector (filelog -> kafka, file_storage checkpoints) on the files."""
    root.mkdir(parents=True)
    storage = root / "storage"
    storage.mkdir()
    conf = root / "otelcol.yaml"
    conf.write_text(OTELCOL_CONF.format(storage=storage, glob=f"{vol}/*.log", bootstrap=bootstrap, topic=topic))
    return run_counted([str(binary), "--config", f"file:{conf}"], root, "otelcol", bootstrap, topic, expected,
                       timeout)


def rate(r: dict[str, float]) -> float:
    return r["lines"] / r["seconds"] if r["seconds"] else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each rotates which shipper goes first")
    ap.add_argument("--bootstrap", default=os.environ.get("LOGPIPE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    ap.add_argument("--rss-files", type=int, default=1000)
    ap.add_argument("--skip-rsyslog", action="store_true")
    ap.add_argument("--skip-otelcol", action="store_true")
    ap.add_argument("--compare-tree", metavar="DIR",
                    help="also run logpipe ship from another source tree (e.g. a git archive of an older commit)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--compression", default="zstd", choices=["zstd", "lz4", "none"],
                    help="logpipe ship's kafka.compression (rsyslog always uses lz4, the Collector zstd)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipper-bench-"))
    run = uuid.uuid4().hex[:8]
    try:
        vol, nbytes = make_tree(tmp / "tree", args.files, args.lines)
        expected = (args.lines // args.files) * args.files
        mb = nbytes / 1e6
        print(f"load average before: {os.getloadavg()}")
        print(f"input: {expected} lines, {mb:.1f} MB in {args.files} files ({nbytes / expected:.0f} B/line)")
        shippers: dict[str, object] = {"logpipe ship": None}
        if args.compare_tree:
            shippers["logpipe ship (compare tree)"] = args.compare_tree
        if not args.skip_otelcol:
            shippers["otelcol filelog -> kafka"] = build_otelcol()
        if not args.skip_rsyslog:
            if shutil.which("rsyslogd"):
                shippers["rsyslog imfile -> omkafka"] = None
            else:
                print("rsyslogd not found (apt-get install rsyslog rsyslog-kafka): rsyslog skipped")
        names = list(shippers)
        results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        print(f"{'round':>5} {'shipper':28} {'lines':>9} {'seconds':>8} {'lines/s':>10} {'MB/s':>7} "
              f"{'peak RSS MB':>11} {'CPU us/line':>11}")
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                slug = "compare" if "compare" in name else name.split()[0]
                where = tmp / f"r{rnd}-{slug}"
                topic = f"bench-{run}-r{rnd}-{slug}"
                if name.startswith("logpipe ship"):
                    r = run_logpipe(tmp / "tree", args.bootstrap, f"{topic}-", expected, args.timeout,
                                    args.compression, work=where, tree=args.compare_tree if "compare" in name else None)
                elif name.startswith("otelcol"):
                    binary = shippers[name]
                    assert isinstance(binary, Path)
                    r = run_otelcol(binary, vol, where, args.bootstrap, topic, expected, args.timeout)
                else:
                    r = run_rsyslog(vol, where, args.bootstrap, topic, expected, args.timeout)
                results[name].append(r)
                print(f"{rnd + 1:>5} {name:28} {int(r['lines']):>9} {r['seconds']:>8.2f} {rate(r):>10.0f} "
                      f"{mb * r['lines'] / expected / r['seconds']:>7.1f} {r['hwm_mb']:>11.0f} "
                      f"{1e6 * r['cpu_s'] / max(r['lines'], 1):>11.2f}", flush=True)
        print("\nmedians over the rounds:")
        med = {n: statistics.median(rate(r) for r in rs) for n, rs in results.items()}
        for n, rs in results.items():
            cpu = statistics.median(1e6 * r["cpu_s"] / max(r["lines"], 1) for r in rs)
            hwm = max(r["hwm_mb"] for r in rs)
            print(f"  {n:28} {med[n]:>10.0f} lines/s  CPU {cpu:.2f} us/line  peak RSS {hwm:.0f} MB")
        for peer in names[1:]:
            per_round = " ".join(f"{rate(a) / rate(b):.2f}" for a, b in zip(results["logpipe ship"], results[peer],
                                                                              strict=True))
            print(f"logpipe ship / {peer}: {med['logpipe ship'] / med[peer]:.2f}x (rounds: {per_round})")
        if args.rss_files:
            many = tmp / "many"
            rng = random.Random(2)
            for _ in range(args.rss_files // 10):
                uid = str(uuid.UUID(int=rng.getrandbits(128)))
                vol2 = many / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "logs"
                vol2.mkdir(parents=True)
                for j in range(10):
                    (vol2 / f"app{j}.log").write_bytes(b"".join(access_line(rng, k) + b"\n" for k in range(10)))
            r = run_logpipe(many, args.bootstrap, f"bench-{run}-many-", args.rss_files * 10, args.timeout,
                            counted=False)
            print(f"logpipe ship tailing {args.rss_files} files: RSS {r['rss_mb']:.0f} MB (peak {r['hwm_mb']:.0f} MB),"
                  f" {int(r['lines'])} lines acked in {r['seconds']:.1f} s")
        print(f"load average after: {os.getloadavg()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
