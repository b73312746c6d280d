"""Stories of file identity through rotation, truncation, deletion and restarts (memory sink, no Kafka)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.shipper.stories import ShipperEnv


def numbers(values: list[bytes]) -> list[int]:
    return [int(v.rsplit(b" ", 1)[1]) for v in values]


async def test_lines_are_shipped_with_offsets_and_the_checkpoint_follows_acks(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    lines = env.write_lines("app.log", 3)
    env.add("app.log")
    await env.ship()
    assert env.sink.values() == lines
    assert [r.offset for r in env.sink.delivered] == [0, len(lines[0]) + 1, len(lines[0]) + len(lines[1]) + 2]
    env.expect_offset("app.log", sum(len(x) + 1 for x in lines))
    rec = env.sink.delivered[0]
    assert rec.meta.file_id.startswith("fingerprint::") and rec.meta.pod == "pod-a" and rec.topic == "logpipe-app"


async def test_rename_rotation_keeps_the_offset_and_reads_the_old_file_to_its_end(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 5)
    env.add("app.log")
    await env.ship()
    old_id = env.file_id("app.log")
    env.write_lines("app.log", 2)  # written before the rename, not yet read
    env.rotate("app.log")
    env.write_lines("app.log", 3, tag="-new")
    env.add("app.log")
    await env.ship()
    assert env.file_id("app.log.1") == old_id
    assert env.file_id("app.log") != old_id
    assert numbers([r.value for r in env.sink.delivered if r.meta.file_id == old_id]) == list(range(7))
    assert [r.value for r in env.sink.delivered if r.meta.file_id != old_id] == [
        b"pod-a app.log-new 0", b"pod-a app.log-new 1", b"pod-a app.log-new 2"]
    assert env.sink.delivered[6].meta.path.endswith("app.log.1")  # read after the rename


async def test_copytruncate_continues_in_the_copy_neither_reshipped_nor_skipped(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 4)
    env.add("app.log")
    await env.ship()
    stream = env.file_id("app.log")
    env.write_lines("app.log", 3)  # the shipper is behind: these are only in the copy
    env.copytruncate("app.log")
    env.write_lines("app.log", 2, tag="-after")
    await env.ship()
    old = [r.value for r in env.sink.delivered if r.meta.file_id == stream]
    assert numbers(old) == list(range(7))  # 0-3 once, 4-6 from the copy
    new = [r.value for r in env.sink.delivered if r.meta.file_id != stream]
    assert new == [b"pod-a app.log-after 0", b"pod-a app.log-after 1"]
    assert env.file_id("app.log.1") == stream


async def test_copytruncate_seen_before_the_truncation_waits_as_a_duplicate(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 4)
    env.add("app.log")
    await env.ship()
    env.write_lines("app.log", 1)
    src, dst = env.path("app.log"), env.path("app.log.1")
    dst.write_bytes(src.read_bytes())
    env.add("app.log.1")  # the copy, while the original still holds the same bytes
    await env.ship()
    assert len(env.sink.delivered) == 5  # the copy shipped nothing
    os.truncate(src, 0)
    env.write_lines("app.log", 1, tag="-after")
    await env.ship()
    assert numbers(env.sink.values()) == [0, 1, 2, 3, 4, 0]


async def test_truncation_that_regrows_past_the_offset_is_detected_by_fingerprint(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 2)
    env.add("app.log")
    await env.ship()
    env.path("app.log").write_bytes(b"".join(b"rewritten line %d\n" % i for i in range(20)))
    await env.ship()
    rewritten = [v for v in env.sink.values() if v.startswith(b"rewritten")]
    assert len(rewritten) == 20


async def test_deleted_file_is_read_to_its_end_then_released_and_forgotten(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 2)
    env.add("app.log")
    await env.ship()
    env.write_lines("app.log", 3)
    env.write("app.log", b"no newline at the end")
    sid = env.file_id("app.log")
    env.delete("app.log")
    await env.ship()
    assert numbers(env.sink.values()[:5]) == [0, 1, 2, 3, 4]
    last = env.sink.delivered[-1]
    assert last.value == b"no newline at the end" and "partial" in last.flags
    assert env.agent.registry.get(sid) is None
    assert env.agent.streams is not None and env.agent.streams.open_files == 0


async def test_pod_directory_deleted_while_behind_loses_nothing(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.sink.hold()
    written = env.write_lines("app.log", 50) + env.write_lines("access.log", 50)
    env.add("app.log")
    env.add("access.log")
    await env.ship(rounds=1)
    import shutil

    shutil.rmtree(env.pods_root / env.relpath("").split("/")[0])
    env.remove("app.log")
    env.remove("access.log")
    env.sink.release()
    await env.ship()
    assert sorted(env.sink.values()) == sorted(written)
    assert len(env.agent.registry) == 0


async def test_inode_reuse_never_resumes_at_a_stale_offset(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 10)
    env.add("app.log")
    await env.ship()
    await env.restart()
    p = env.path("app.log")
    ino = os.stat(p).st_ino
    os.unlink(p)
    # a new file with other content, on the recycled inode (forced: write a file and check)
    p.write_bytes(b"".join(b"brand new content line %d, long enough to pass the old offset\n" % i for i in range(5)))
    reused = os.stat(p).st_ino == ino
    env.add("app.log")
    await env.ship()
    newvals = [v for v in env.sink.values() if v.startswith(b"brand new")]
    assert len(newvals) == 5, f"inode reused: {reused}"


async def test_files_with_identical_first_lines_in_two_pods_are_two_streams(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    for pod in ("pod-a", "pod-b"):
        env.write("app.log", b"service started\n", pod)
        env.add("app.log", pod)
    await env.ship()
    assert env.file_id("app.log", "pod-a") != env.file_id("app.log", "pod-b")
    env.write("app.log", b"a only\n", "pod-a")
    await env.ship()
    await env.restart()
    env.write("app.log", b"b only\n", "pod-b")
    env.add("app.log", "pod-a")
    env.add("app.log", "pod-b")
    await env.ship()
    assert sorted(env.sink.values()) == sorted([b"service started", b"service started", b"a only", b"b only"])


async def test_identical_first_lines_in_one_directory_are_two_streams(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write("one.log", b"header\n")
    env.write("two.log", b"header\n")
    env.add("one.log")
    env.add("two.log")
    await env.ship()
    await env.ship(advance=6)  # equal so far: the second waits duplicate_wait, then is its own stream
    assert env.file_id("one.log") != env.file_id("two.log")
    env.write("two.log", b"second\n")
    await env.ship()
    assert sorted(env.sink.values()) == [b"header", b"header", b"second"]


async def test_restart_resumes_exactly_at_the_committed_offset(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 5)
    env.add("app.log")
    await env.ship()
    await env.restart()
    env.write_lines("app.log", 3)
    env.add("app.log")
    await env.ship()
    assert numbers(env.sink.values()) == list(range(8))


async def test_crash_with_unacked_batches_resends_only_the_unacked_tail(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, pipeline={"batch_max_lines": 2})
    env.write_lines("app.log", 4)
    env.add("app.log")
    await env.ship()
    env.write_registry()
    env.sink.hold()
    env.write_lines("app.log", 6)
    await env.ship(rounds=1)
    assert env.sink.held == 3
    await env.restart(crash=True)  # the held batches never come back
    env.sink.release()
    delivered_before = len(env.sink.delivered)
    env.add("app.log")
    await env.ship()
    assert numbers(env.sink.values()[delivered_before:]) == list(range(4, 10))


async def test_restart_after_rename_rotation_while_down(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 3)
    env.add("app.log")
    await env.ship()
    await env.restart()
    env.write_lines("app.log", 2)
    os.rename(env.path("app.log"), env.path("app.log.1"))
    env.write_lines("app.log", 2, tag="-new")
    env.add("app.log")
    env.add("app.log.1")
    await env.ship()
    assert sorted(numbers(env.sink.values())) == [0, 0, 1, 1, 2, 3, 4]


async def test_restart_after_copytruncate_while_down(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 3)
    env.add("app.log")
    await env.ship()
    await env.restart()
    env.write_lines("app.log", 2)
    env.path("app.log.1").write_bytes(env.path("app.log").read_bytes())
    os.truncate(env.path("app.log"), 0)
    env.write_lines("app.log", 2, tag="-new")
    env.add("app.log")
    env.add("app.log.1")
    await env.ship()
    assert sorted(numbers(env.sink.values())) == [0, 0, 1, 1, 2, 3, 4]


async def test_checkpoint_past_the_end_of_its_file_is_discarded(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 10)
    env.add("app.log")
    await env.ship()
    await env.restart()
    data = env.path("app.log").read_bytes()
    env.path("app.log").write_bytes(data[:40])  # same first bytes, shorter than the checkpoint
    env.add("app.log")
    await env.ship(advance=10)
    assert env.sink.values()[10:] == [b"pod-a app.log 0", b"pod-a app.log 1", b"pod-a ap"]  # from 0 again
    env.expect_offset("app.log", 40)


async def test_short_file_waits_for_its_first_newline_then_for_the_partial_timeout(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, partial_line_timeout=5.0)
    env.write("app.log", b"no newline yet")
    env.add("app.log")
    await env.ship()
    assert env.sink.delivered == []
    assert env.agent.streams is not None and env.agent.streams.pending_paths
    await env.ship(advance=3)
    assert env.sink.delivered == []
    await env.ship(advance=3)
    assert env.sink.values() == [b"no newline yet"] and env.sink.delivered[0].flags == ("partial",)


async def test_device_inode_strategy_loses_copytruncate(tmp_path: Path) -> None:
    """The naive strategy, for contrast: after copytruncate the copy is a new stream (re-shipped)."""
    env = ShipperEnv(tmp_path, identity="device_inode")
    env.write_lines("app.log", 4)
    env.add("app.log")
    await env.ship()
    assert env.file_id("app.log").startswith("device_inode::")
    env.copytruncate("app.log")
    await env.ship()
    assert numbers(env.sink.values()).count(0) == 2  # the copy was shipped again from its start


async def test_an_idle_file_appended_to_and_deleted_at_once_loses_nothing(tmp_path: Path) -> None:
    # A pod quiet for an hour writes its last line as it shuts down, and its EmptyDir is removed
    # before any 2-second recheck of closed files could run: by default idle files keep their fd.
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 2)
    env.add("app.log")
    await env.ship()
    await env.ship(advance=3600)
    streams = env.agent.streams
    assert streams is not None and streams.open_files == 1
    env.write_lines("app.log", 1)
    env.delete("app.log")
    await env.ship()
    assert numbers(env.sink.values()) == [0, 1, 2]
    assert streams.open_files == 0  # read to its end, acknowledged, released


async def test_idle_files_are_closed_and_reopened_when_they_grow(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, close_inactive=10.0)
    env.write_lines("app.log", 2)
    env.add("app.log")
    await env.ship()
    await env.ship(advance=20)
    streams = env.agent.streams
    assert streams is not None and streams.open_files == 0
    env.write_lines("app.log", 2)
    await env.ship(advance=3)
    assert numbers(env.sink.values()) == [0, 1, 2, 3]


async def test_open_file_cap_closes_idle_files_first(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, max_open_files=3)
    for i in range(6):
        env.write_lines(f"f{i}.log", 2)
        env.add(f"f{i}.log")
        await env.ship()
    streams = env.agent.streams
    assert streams is not None and streams.open_files <= 3
    assert len(env.sink.delivered) == 12
    env.write_lines("f0.log", 1)
    await env.ship(advance=3)
    assert len(env.sink.delivered) == 13


async def test_truncated_and_rewritten_to_the_same_size_is_still_a_truncation(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write("app.log", b"old line 1\nold line 2\n")
    env.add("app.log")
    await env.ship()
    p = env.path("app.log")
    st = os.stat(p)
    p.write_bytes(b"new line 1\nnew line 2\n")  # same size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a coarse clock may not tick
    await env.ship()
    assert env.sink.values() == [b"old line 1", b"old line 2", b"new line 1", b"new line 2"]


async def test_copy_found_after_the_truncation_but_before_it_was_noticed(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 4)
    env.add("app.log")
    await env.ship()
    stream = env.file_id("app.log")
    env.write_lines("app.log", 3)
    src, dst = env.path("app.log"), env.path("app.log.1")
    dst.write_bytes(src.read_bytes())
    os.truncate(src, 0)
    env.write_lines("app.log", 2, tag="-after")
    env.add("app.log.1")  # before any poll saw the truncation
    await env.ship()
    assert numbers([r.value for r in env.sink.delivered if r.meta.file_id == stream]) == list(range(7))
    assert len(env.sink.delivered) == 9


async def test_idle_closed_file_replaced_on_a_recycled_inode_is_read_from_0(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path, close_inactive=10.0)
    env.write_lines("app.log", 20)
    env.add("app.log")
    await env.ship()
    await env.ship(advance=20)  # idle: its fd is closed
    p = env.path("app.log")
    os.unlink(p)
    p.write_bytes(b"".join(b"recycled %d\n" % i for i in range(3)))
    env.add("app.log")
    await env.ship(advance=3)
    assert env.sink.values()[20:] == [b"recycled 0", b"recycled 1", b"recycled 2"]


async def test_restart_between_copy_and_truncate_ships_the_copy_once(tmp_path: Path) -> None:
    env = ShipperEnv(tmp_path)
    env.write_lines("app.log", 4)
    env.add("app.log")
    await env.ship()
    await env.restart()
    env.write_lines("app.log", 2)
    env.path("app.log.1").write_bytes(env.path("app.log").read_bytes())  # copied, not yet truncated
    env.add("app.log.1")  # discovered first: the checkpoint's own file is still at its path
    env.add("app.log")
    await env.ship()
    assert numbers(env.sink.values()) == [0, 1, 2, 3, 4, 5]
    os.truncate(env.path("app.log"), 0)
    env.write_lines("app.log", 1, tag="-after")
    await env.ship()
    assert numbers(env.sink.values()) == [0, 1, 2, 3, 4, 5, 0]
    assert env.file_id("app.log.1") == env.sink.delivered[0].meta.file_id
