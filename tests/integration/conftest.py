"""Fixtures of the integration tests that need services of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from logpipe.dev.faults.kafka import FaultedKafka, faulted_kafka_running, start_faulted_kafka, stop_faulted_kafka


@pytest.fixture(scope="session")
def faulted_kafka() -> Iterator[FaultedKafka]:
    """A broker of its own reached through fault proxies (``logpipe/dev/faults/kafka.py``): faults
    never touch the shared broker. Stopped at the end of the session if this session started it."""
    was_running = faulted_kafka_running()
    kafka = start_faulted_kafka()
    try:
        yield kafka
    finally:
        if not was_running:
            stop_faulted_kafka()
