"""Soak: a long real run of files → ``logpipe ship`` → Kafka → ``logpipe consume`` → Elasticsearch with
rotation, copytruncate, shipper and consumer restarts (kill -9 and SIGTERM) and network faults on both
Kafka paths (latency, a black hole, resets, a broker that never answers) on a schedule.

Prints: lines lost / indexed twice (by content), RSS and open fds of both agents over time (must stay
flat), the largest lag, the time to catch up after each disturbance, SIGTERM exit codes and the
agents' error events outside every disturbance's window. Exits 1 when any check failed.

    python bench/soak.py                                  # 30 min, 5 000 lines/s, 200 files
    python bench/soak.py --minutes 5 --rate 1000 --black-hole 20

Needs the shared Elasticsearch (``logpipe dev up elasticsearch``); Kafka is a broker of its own
behind fault proxies (``logpipe/dev/faults/kafka.py``, started here and stopped at the end if this
run started it). Not in CI: ``tests/integration/test_soak.py`` runs a 3-minute version.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from logpipe.dev.faults.kafka import faulted_kafka_running, start_faulted_kafka, stop_faulted_kafka
from logpipe.dev.faults.soak import SoakConfig, run_soak


def main(argv: list[str] | None = None) -> int:
    d = SoakConfig()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=d.minutes)
    ap.add_argument("--rate", type=int, default=d.rate, help="lines per second written")
    ap.add_argument("--pods", type=int, default=d.pods, help="pods, 2 files each")
    ap.add_argument("--rotate-every", type=float, default=d.rotate_every, help="seconds between rotations of a file")
    ap.add_argument("--event-every", type=float, default=d.event_every, help="seconds between disturbances")
    ap.add_argument("--black-hole", type=float, default=d.black_hole, help="seconds of each black hole")
    ap.add_argument("--fault-seconds", type=float, default=d.fault_seconds, help="latency, resets, mute")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--es", default=d.es_url)
    ap.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    ap.add_argument("--keep", action="store_true", help="keep the indices and the workdir")
    a = ap.parse_args(argv)
    cfg = SoakConfig(minutes=a.minutes, rate=a.rate, pods=a.pods, rotate_every=a.rotate_every,
                     event_every=a.event_every, black_hole=a.black_hole, fault_seconds=a.fault_seconds,
                     seed=a.seed, es_url=a.es, keep_indices=a.keep)
    started = not faulted_kafka_running()
    kafka = start_faulted_kafka(report=lambda m: print(m, file=sys.stderr))
    try:
        if a.workdir is not None:
            a.workdir.mkdir(parents=True, exist_ok=True)
            report = asyncio.run(run_soak(cfg, kafka, a.workdir))
        else:
            with tempfile.TemporaryDirectory(prefix="logpipe-soak-", ignore_cleanup_errors=True) as tmp:
                report = asyncio.run(run_soak(cfg, kafka, Path(tmp)))
    finally:
        if started:
            stop_faulted_kafka()
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
