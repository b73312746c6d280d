"""The soak (``bench/soak.py``, 30 min) in a 2.5-minute version: real ``logpipe ship`` and ``logpipe
consume`` over 40 rotating files (rename and copytruncate) at 500 lines/s, with kill -9 and SIGTERM of
both agents and faults on both Kafka paths on a schedule. Every line exactly once in Elasticsearch,
memory and fds flat, SIGTERM exits 0, and no error event outside a disturbance's window."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe.dev.faults.kafka import FaultedKafka
from logpipe.dev.faults.soak import SoakConfig, run_soak

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KINDS = ("ship-kill9", "consume-blackhole", "consume-kill9", "ship-mute", "ship-term", "consume-resets",
         "consume-term", "ship-latency")


async def test_soak_three_minutes(tmp_path: Path, faulted_kafka: FaultedKafka, es_url: str) -> None:
    cfg = SoakConfig(minutes=2.5, rate=500, pods=20, rotate_every=20, event_every=17, black_hole=12,
                     fault_seconds=6, sample_every=2, drain_timeout=60, es_url=es_url, kinds=KINDS)
    report = await run_soak(cfg, faulted_kafka, tmp_path)
    print(report.summary())
    assert report.outcome.exactly_once, report.summary()
    assert report.outcome.written >= 40_000  # the writer kept (most of) its rate
    assert report.rotations >= 200 and report.copytruncates >= 20, report.summary()
    assert len(report.disturbances) >= 6, report.summary()
    assert not report.flat(), report.summary()
    assert all(code == 0 for _, code in report.term_exit_codes), report.summary()
    assert not report.unexplained, report.summary()
    assert report.ok
