"""Shipper benchmark: files -> Kafka, ``logpipe ship`` side by side with rsyslog (imfile -> omkafka).

    python bench/shipper_bench.py [--lines 1000000] [--files 4] [--bootstrap 127.0.0.1:9092]
                                  [--rss-files 1000] [--skip-rsyslog]

Both shippers read the same generated JSON access-log files (``bench/access_log_gen.py``, ~330 bytes
a line) from their beginning and produce to the same local broker, each into its own fresh topic,
with acks=all (rsyslog: lz4; ``logpipe ship``: its default, zstd level 1, or ``--compression``). The
clock runs from the process start until the last line is acknowledged: for ``logpipe ship`` from its
``lines_acked`` counter (its checkpointing is on, as in production); for rsyslog from the sum of the
topic's end offsets. rsyslog runs as a child in the foreground (``rsyslogd -n -f``) with its own
config, work directory and pid file; it needs Debian's ``rsyslog`` and ``rsyslog-kafka`` packages.

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
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from access_log_gen import line as access_line

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


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(name))


def run_logpipe(root: Path, bootstrap: str, prefix: str, expected: int, timeout: float,
                compression: str = "zstd") -> dict[str, float]:
    """Start ``logpipe ship`` on ``root``; return seconds to the last ack, and RSS."""
    cfg = {
        "node_name": "bench",
        "pods_root": str(root / "pods"),
        "logs_root": str(root / "logs"),
        "registry": {"path": str(root / "registry.json")},
        "kafka": {"bootstrap": bootstrap, "compression": compression},
        "rules": {"topic_prefix": prefix},
        "pod_metadata": {"kubernetes_api": "off"},
        "http": {"host": "127.0.0.1", "port": 0},
        "log_level": "warning",
    }
    (root / "shipper.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpipe.cli.main", "ship", "--config", str(root / "shipper.yaml")],
        stdout=subprocess.PIPE, stderr=open(root / "shipper.stderr", "wb"),
    )
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
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {"seconds": elapsed, "lines": acked, "rss_mb": rss, "hwm_mb": hwm}


async def topic_count(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        parts = cluster.partitions_for_topic(topic) or set()
        if not parts:
            return 0
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await consumer.stop()


def run_rsyslog(vol: Path, root: Path, bootstrap: str, topic: str, expected: int, timeout: float) -> dict[str, float]:
    """Start rsyslogd (imfile -> omkafka) in the foreground on the same files; seconds to the last ack."""
    work = root / "rsyslog-work"
    work.mkdir()
    conf = root / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, glob=f"{vol}/*.log", bootstrap=bootstrap, topic=topic))
    t0 = time.monotonic()
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(root / "rsyslog.pid")],
                            stdout=subprocess.DEVNULL, stderr=open(root / "rsyslog.stderr", "wb"))
    got, last_change, elapsed = 0, t0, 0.0
    try:
        while time.monotonic() - t0 < timeout:
            n = asyncio.run(topic_count(bootstrap, topic))
            now = time.monotonic()
            if n != got:
                got, last_change, elapsed = n, now, now - t0
            if got >= expected or (got and now - last_change > 5):  # done, or no progress for 5 s
                break
            if proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {(root / 'rsyslog.stderr').read_text()[-2000:]}")
            time.sleep(0.1)
        rss, hwm = rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {"seconds": elapsed, "lines": got, "rss_mb": rss, "hwm_mb": hwm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--bootstrap", default=os.environ.get("LOGPIPE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    ap.add_argument("--rss-files", type=int, default=1000)
    ap.add_argument("--skip-rsyslog", action="store_true")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--compression", default="zstd", choices=["zstd", "lz4", "none"],
                    help="logpipe ship's kafka.compression (rsyslog always uses lz4)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipper-bench-"))
    run = uuid.uuid4().hex[:8]
    try:
        vol, nbytes = make_tree(tmp / "tree", args.files, args.lines)
        expected = (args.lines // args.files) * args.files
        mb = nbytes / 1e6
        print(f"load average before: {os.getloadavg()}")
        print(f"input: {expected} lines, {mb:.1f} MB in {args.files} files ({nbytes / expected:.0f} B/line)")
        rows = []
        if not args.skip_rsyslog and shutil.which("rsyslogd"):
            r = run_rsyslog(vol, tmp, args.bootstrap, f"bench-rsyslog-{run}", expected, args.timeout)
            rows.append(("rsyslog 8 imfile -> omkafka", r))
        r = run_logpipe(tmp / "tree", args.bootstrap, f"bench-{run}-", expected, args.timeout, args.compression)
        rows.append(("logpipe ship", r))
        print(f"{'shipper':32} {'lines':>9} {'seconds':>8} {'lines/s':>10} {'MB/s':>7} {'RSS MB':>7}")
        for name, r in rows:
            print(f"{name:32} {int(r['lines']):>9} {r['seconds']:>8.2f} {r['lines'] / r['seconds']:>10.0f} "
                  f"{mb * r['lines'] / expected / r['seconds']:>7.1f} {r['hwm_mb']:>7.0f}")
        if len(rows) == 2:
            ratio = (rows[1][1]["lines"] / rows[1][1]["seconds"]) / (rows[0][1]["lines"] / rows[0][1]["seconds"])
            print(f"logpipe ship / rsyslog throughput: {ratio:.2f}x")
        if args.rss_files:
            many = tmp / "many"
            rng = random.Random(2)
            for _ in range(args.rss_files // 10):
                uid = str(uuid.UUID(int=rng.getrandbits(128)))
                vol2 = many / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "logs"
                vol2.mkdir(parents=True)
                for j in range(10):
                    (vol2 / f"app{j}.log").write_bytes(b"".join(access_line(rng, k) + b"\n" for k in range(10)))
            r = run_logpipe(many, args.bootstrap, f"bench-{run}-many-", args.rss_files * 10, args.timeout)
            print(f"logpipe ship tailing {args.rss_files} files: RSS {r['rss_mb']:.0f} MB (peak {r['hwm_mb']:.0f} MB),"
                  f" {int(r['lines'])} lines acked in {r['seconds']:.1f} s")
        print(f"load average after: {os.getloadavg()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
