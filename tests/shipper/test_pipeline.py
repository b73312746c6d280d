"""The pipeline: ordered acks, backpressure, retries and dead-letters (memory sink, no Kafka)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from logpipe.core.delivery import BatchStatus
from tests.shipper.stories import ShipperEnv


async def test_acks_out_of_order_move_the_checkpoint_only_over_the_contiguous_prefix(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, pipeline={"batch_max_lines": 2})
    lines = env.write_lines("app.log", 6)  # three batches of two lines
    env.add("app.log")
    env.sink.hold()
    await env.ship(rounds=1)
    assert env.sink.held == 3
    env.expect_offset("app.log", 0)
    # deliver the last batch first, then the middle one: the checkpoint may not move yet
    held = env.sink._held
    for i in (2, 1):
        batch, fut = held[i]
        env.sink.delivered.extend(batch)
        fut.set_result(BatchStatus.DELIVERED)
    await asyncio.sleep(0.01)
    env.expect_offset("app.log", 0)
    batch, fut = held[0]
    env.sink.delivered.extend(batch)
    fut.set_result(BatchStatus.DELIVERED)
    await asyncio.sleep(0.01)
    env.expect_offset("app.log", sum(len(x) + 1 for x in lines))


async def test_released_in_reverse_order_every_stream_ends_at_its_end(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, pipeline={"batch_max_lines": 3})
    a = env.write_lines("a.log", 10)
    b = env.write_lines("b.log", 7)
    env.add("a.log")
    env.add("b.log")
    env.sink.hold()
    await env.ship(rounds=1)
    env.sink.release(order=lambda ix: ix[::-1])
    await env.ship()
    env.expect_offset("a.log", sum(len(x) + 1 for x in a))
    env.expect_offset("b.log", sum(len(x) + 1 for x in b))


async def test_slow_sink_pauses_reading_nothing_dropped(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, read_chunk_bytes=16 * 1024, max_line_bytes=1024,
                     pipeline={"max_bytes_in_flight": 64 * 1024, "batch_max_bytes": 16 * 1024})
    lines = env.write_lines("app.log", 20_000)  # ~500 KB
    env.add("app.log")
    env.sink.hold()
    reader = asyncio.create_task(env.ship(rounds=1))
    await asyncio.sleep(0.2)
    assert not reader.done()  # blocked on capacity
    inflight = env.agent.pipeline.bytes_in_flight
    assert 64 * 1024 - 1024 <= inflight <= 64 * 1024 + 16 * 1024  # the bound, plus at most one read
    env.sink.release()
    await asyncio.wait_for(reader, 10)
    await env.ship()
    assert env.sink.values() == lines


async def test_errored_batches_are_sent_again_until_delivered(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, pipeline={"retry_initial": 0.01, "retry_max": 0.02})
    env.sink.errors_left = 5
    lines = env.write_lines("app.log", 3)
    env.add("app.log")
    await env.ship()
    assert env.sink.values() == lines
    assert env.sink.sends == 6
    env.expect_offset("app.log", sum(len(x) + 1 for x in lines))


async def test_rejected_line_is_dead_lettered_and_the_rest_delivered(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.sink.reject = lambda r: r.value.endswith(b" 1") and "deadletter" not in r.flags
    lines = env.write_lines("app.log", 3)
    env.add("app.log")
    await env.ship()
    good = [r.value for r in env.sink.delivered if "deadletter" not in r.flags]
    dead = [r for r in env.sink.delivered if "deadletter" in r.flags]
    assert good == [lines[0], lines[2]]
    assert [d.value for d in dead] == [lines[1]] and "reason:rejected" in dead[0].flags
    env.expect_offset("app.log", sum(len(x) + 1 for x in lines))


async def test_a_line_the_dead_letter_topic_refuses_too_does_not_stall_the_stream(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.sink.reject = lambda r: b"poison" in r.value
    env.write("app.log", b"poison\nfine\n")
    env.add("app.log")
    await env.ship()
    assert env.sink.values() == [b"fine"]
    env.expect_offset("app.log", 12)
