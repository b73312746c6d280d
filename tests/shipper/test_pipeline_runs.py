"""The pipeline's fast path (``send_runs``): runs of lines cut at batch limits, offsets and acks intact."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from logpipe.core.delivery import BatchStatus
from logpipe.core.envelope import LineRun
from tests.shipper.stories import MemorySink, ShipperEnv


class RunSink(MemorySink):
    """The memory sink with ``send_runs``: records what came as runs, delivers their lines."""

    def __init__(self) -> None:
        super().__init__()
        self.run_batches: list[list[LineRun]] = []

    async def send_runs(self, runs: Sequence[LineRun]) -> BatchStatus:
        self.run_batches.append(list(runs))
        return await self.send([r for run in runs for r in run.records()])


def expected_records(data: bytes, max_line: int) -> list[tuple[int, bytes, tuple[str, ...]]]:
    out: list[tuple[int, bytes, tuple[str, ...]]] = []
    pos = 0
    for line in data.split(b"\n")[:-1]:
        flags: tuple[str, ...] = ("truncated",) if len(line) > max_line else ()
        out.append((pos, line[:max_line], flags))
        pos += len(line) + 1
    return out


async def test_runs_cut_at_line_and_byte_limits_keep_every_offset(tmp_path: Path) -> None:
    rng = random.Random(7)
    sink = RunSink()
    env = ShipperEnv(tmp_path, sink=sink, max_line_bytes=300, read_chunk_bytes=8192,
                     pipeline={"batch_max_lines": 37, "batch_max_bytes": 2048})
    # ordinary lines, empty lines and over-long lines (truncated) mixed, across many reads
    lines = [b"L" * rng.choice([0, 1, 20, 80, 299, 300, 301, 1000]) + b"%d" % i for i in range(3000)]
    data = b"".join(x + b"\n" for x in lines)
    env.write("app.log", data)
    env.add("app.log")
    await env.ship()
    got = [(r.offset, r.value, r.flags) for r in sink.delivered]
    assert got == expected_records(data, 300)
    assert all(sum(len(run) for run in b) <= 37 for b in sink.run_batches)
    assert all(sum(run.nbytes for run in b) <= 2048 for b in sink.run_batches if sum(len(r) for r in b) > 1)
    assert all(run.nbytes == sum(map(len, run.values)) for b in sink.run_batches for run in b)
    assert len(sink.run_batches) == sink.sends  # every batch went through send_runs
    env.expect_offset("app.log", len(data))


async def test_rejected_run_batch_is_split_into_lines_and_the_bad_one_dead_lettered(tmp_path: Path) -> None:
    sink = RunSink()
    env = ShipperEnv(tmp_path, sink=sink)
    sink.reject = lambda r: r.value.endswith(b" 1") and "deadletter" not in r.flags
    lines = env.write_lines("app.log", 3)
    env.add("app.log")
    await env.ship()
    good = [r.value for r in sink.delivered if "deadletter" not in r.flags]
    dead = [r for r in sink.delivered if "deadletter" in r.flags]
    assert good == [lines[0], lines[2]]
    assert [d.value for d in dead] == [lines[1]] and "reason:rejected" in dead[0].flags
    env.expect_offset("app.log", sum(len(x) + 1 for x in lines))


async def test_errored_run_batches_are_sent_again(tmp_path: Path) -> None:
    sink = RunSink()
    env = ShipperEnv(tmp_path, sink=sink, pipeline={"retry_initial": 0.01, "retry_max": 0.02})
    sink.errors_left = 3
    lines = env.write_lines("app.log", 5)
    env.add("app.log")
    await env.ship()
    assert sink.values() == lines and len(sink.run_batches) == 4
    env.expect_offset("app.log", sum(len(x) + 1 for x in lines))


def test_split_run_offsets_follow_the_lines() -> None:
    from logpipe.core.envelope import SourceMeta
    m = SourceMeta("n", "ns", "p", "u", "c", "comp", "app", "/a.log", "fid")
    run = LineRun(m, 100, [b"ab", b"", b"cde", b"f"], 5, 6)
    head, tail = run.split(2)
    assert (head.offset, head.values, head.nbytes) == (100, [b"ab", b""], 2)
    assert (tail.offset, tail.values, tail.nbytes) == (104, [b"cde", b"f"], 4)
    assert [(r.offset, r.value) for r in run.records()] == [(100, b"ab"), (103, b""), (104, b"cde"), (108, b"f")]
