"""A real ``logpipe ship`` process against the real Kafka: every written line is counted on the topics."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logpipe.core.envelope import decode_headers
from tests.shipper.live import Shipper, Tree, collect

pytestmark = pytest.mark.integration


@pytest.fixture
def tree(tmp_path: Path, unique_name: str) -> Tree:
    return Tree(tmp_path, unique_name)


@pytest.fixture
def shipper_factory(tree: Tree, kafka_bootstrap: str, unique_name: str) -> Iterator[list[Shipper]]:
    made: list[Shipper] = []
    yield made
    for s in made:
        s.stop()


def new_shipper(made: list[Shipper], tree: Tree, bootstrap: str, prefix: str, **kw: object) -> Shipper:
    s = Shipper(tree, bootstrap, f"{prefix}-", **kw)
    made.append(s)
    return s


async def test_ships_pod_logs_with_metadata_and_serves_health_and_metrics(
    tree: Tree, kafka_bootstrap: str, unique_name: str, shipper_factory: list[Shipper]
) -> None:
    tree.add_pod("web-7d4b9c5f6-x2x9z")
    tree.add_pod("db-0")
    tree.write_lines("web-7d4b9c5f6-x2x9z", "access.log", 5)
    tree.write_lines("db-0", "app.log", 3)
    tree.write_lines("web-7d4b9c5f6-x2x9z", "trace.log", 2)
    tree.write_lines("web-7d4b9c5f6-x2x9z", "stdout", 4, path=tree.stdout_path("web-7d4b9c5f6-x2x9z"))
    s = new_shipper(shipper_factory, tree, kafka_bootstrap, unique_name)
    s.start()
    s.wait_ready()
    got = await collect(kafka_bootstrap, s.prefix, set(tree.written))
    assert not got.lost(tree.written) and got.duplicated() == 0
    by_value = {m.value: m for m in got.records}
    access = by_value[tree.written[0]]
    h = decode_headers(access.headers)
    assert access.topic == f"{s.prefix}access" and access.key == b"web"
    assert h["lp.namespace"] == "shop" and h["lp.pod"] == "web-7d4b9c5f6-x2x9z" and h["lp.component"] == "web"
    assert h["lp.node"] == "node-test" and h["lp.offset"] == "0" and h["lp.file_id"].startswith("fingerprint::")
    assert by_value[tree.written[5]].topic == f"{s.prefix}app" and by_value[tree.written[5]].key == b"db"
    assert by_value[tree.written[8]].topic == f"{s.prefix}trace"
    assert by_value[tree.written[-1]].topic == f"{s.prefix}stdout"
    assert s.http("/healthz")[0] == 200
    assert s.metric('logpipe_shipper_lines_acked_total{type="access"}') == 5
    # new files in a new pod are picked up within a second
    tree.add_pod("api-5c8d7f9b4-abcde")
    t0 = time.monotonic()
    new = tree.write_lines("api-5c8d7f9b4-abcde", "access.log", 1)
    got = await collect(kafka_bootstrap, s.prefix, set(new), timeout=10, idle=0)
    assert new[0] in got.counts and time.monotonic() - t0 < 5


async def test_rename_rotation_and_copytruncate_neither_lose_nor_duplicate(
    tree: Tree, kafka_bootstrap: str, unique_name: str, shipper_factory: list[Shipper]
) -> None:
    tree.add_pod("web-7d4b9c5f6-x2x9z")
    pod = "web-7d4b9c5f6-x2x9z"
    tree.write_lines(pod, "access.log", 100)
    tree.write_lines(pod, "app.log", 100)
    s = new_shipper(shipper_factory, tree, kafka_bootstrap, unique_name)
    s.start()
    await collect(kafka_bootstrap, s.prefix, set(tree.written), idle=0)
    for round_ in range(3):
        tree.write_lines(pod, "access.log", 50)
        os.rename(tree.path(pod, "access.log"), tree.path(pod, f"access.log.{round_ + 1}"))
        tree.write_lines(pod, "access.log", 20)
        tree.write_lines(pod, "app.log", 50)
        shutil.copyfile(tree.path(pod, "app.log"), tree.path(pod, f"app.log.{round_ + 1}"))
        os.truncate(tree.path(pod, "app.log"), 0)
        tree.write_lines(pod, "app.log", 20)
        await asyncio.sleep(0.5)
    got = await collect(kafka_bootstrap, s.prefix, set(tree.written), idle=2)
    assert got.lost(tree.written) == []
    assert got.duplicated() == 0


async def test_pod_directory_deleted_while_behind(
    tree: Tree, kafka_bootstrap: str, unique_name: str, shipper_factory: list[Shipper]
) -> None:
    pod = "web-7d4b9c5f6-x2x9z"
    tree.add_pod(pod)
    s = new_shipper(shipper_factory, tree, kafka_bootstrap, unique_name)
    s.start()
    tree.write_lines(pod, "access.log", 10)
    await collect(kafka_bootstrap, s.prefix, set(tree.written), idle=0)
    # let the shipper fall behind: Kafka answers, but 200k lines take a moment to read and send
    tree.write_lines(pod, "access.log", 200_000)
    await asyncio.sleep(0.3)
    shutil.rmtree(tree.pods_root / tree.pods[pod].uid)
    got = await collect(kafka_bootstrap, s.prefix, set(tree.written), timeout=90, idle=1)
    assert len(got.lost(tree.written)) == 0
    await asyncio.sleep(1.5)
    reg = json.loads(s.registry.read_text())
    assert [f for f in reg["files"] if tree.pods[pod].uid in f["path"]] == []  # released and forgotten


async def test_files_with_identical_first_lines_and_partial_and_long_lines(
    tree: Tree, kafka_bootstrap: str, unique_name: str, shipper_factory: list[Shipper]
) -> None:
    a, b = "web-7d4b9c5f6-aaaaa", "web-7d4b9c5f6-bbbbb"
    tree.add_pod(a)
    tree.add_pod(b)
    long_line = b"L" * 300_000
    tree.path(a, "app.log").write_bytes(b"same first line\n" + long_line + b"\nafter long\nno newline")
    tree.path(b, "app.log").write_bytes(b"same first line\n")
    s = new_shipper(shipper_factory, tree, kafka_bootstrap, unique_name)
    s.start()
    got = await collect(kafka_bootstrap, s.prefix, {b"same first line", b"after long", b"no newline"},
                        idle=1.5)
    assert got.counts[b"same first line"] == 2
    truncated = [m for m in got.records if m.value.startswith(b"LLL")]
    assert len(truncated) == 1 and len(truncated[0].value) == 256 * 1024
    assert decode_headers(truncated[0].headers)["lp.flags"] == "truncated"
    partial = next(m for m in got.records if m.value == b"no newline")
    assert decode_headers(partial.headers)["lp.flags"] == "partial"
    ids = {decode_headers(m.headers)["lp.file_id"] for m in got.records if m.value == b"same first line"}
    assert len(ids) == 2


async def test_symlink_escape_ships_nothing_and_is_counted(
    tree: Tree, kafka_bootstrap: str, unique_name: str, shipper_factory: list[Shipper]
) -> None:
    pod = "web-7d4b9c5f6-x2x9z"
    tree.add_pod(pod)
    secret = tree.root / "secret.log"
    secret.write_bytes(b"TOP SECRET\n")
    os.symlink(secret, tree.path(pod, "access.log"))
    tree.write_lines(pod, "app.log", 3)
    s = new_shipper(shipper_factory, tree, kafka_bootstrap, unique_name)
    s.start()
    got = await collect(kafka_bootstrap, s.prefix, set(tree.written), idle=1.5)
    assert b"TOP SECRET" not in got.counts and not got.lost(tree.written)
    assert s.metric("logpipe_shipper_symlink_refusals_total") >= 1


async def test_kill9_mid_stream_and_restart_loses_nothing(
    tree: Tree, kafka_bootstrap: str, unique_name: str, shipper_factory: list[Shipper]
) -> None:
    pod = "web-7d4b9c5f6-x2x9z"
    tree.add_pod(pod)
    s = new_shipper(shipper_factory, tree, kafka_bootstrap, unique_name)
    s.start()
    for i in range(4):
        tree.write_lines(pod, "access.log", 20_000)
        await asyncio.sleep(0.4 + 0.3 * i)  # killed while reading, sending, or idle
        s.kill9()
        tree.write_lines(pod, "access.log", 1000)
        s.start()
    got = await collect(kafka_bootstrap, s.prefix, set(tree.written), timeout=90)
    assert got.lost(tree.written) == []
    # duplicates are limited to what was unacknowledged at each kill
    assert got.duplicated() < len(tree.written)


async def test_sigterm_flushes_writes_the_registry_and_exits_0(
    tree: Tree, kafka_bootstrap: str, unique_name: str, shipper_factory: list[Shipper]
) -> None:
    pod = "web-7d4b9c5f6-x2x9z"
    tree.add_pod(pod)
    s = new_shipper(shipper_factory, tree, kafka_bootstrap, unique_name)
    s.start()
    s.wait_ready()
    tree.write_lines(pod, "access.log", 5000)
    await asyncio.sleep(1.0)
    assert s.sigterm() == 0
    reg = json.loads(s.registry.read_text())
    size = tree.path(pod, "access.log").stat().st_size
    assert [f["offset"] for f in reg["files"]] == [size]
    got = await collect(kafka_bootstrap, s.prefix, set(tree.written))
    assert got.lost(tree.written) == [] and got.duplicated() == 0
    # a restart resumes at the checkpoint: nothing is sent twice
    s.start()
    more = tree.write_lines(pod, "access.log", 10)
    got = await collect(kafka_bootstrap, s.prefix, set(tree.written), idle=1.5)
    assert got.lost(tree.written) == [] and got.duplicated() == 0 and all(got.counts[m] == 1 for m in more)


async def test_kafka_stopped_and_restarted_mid_stream_loses_nothing(
    tree: Tree, kafka_bootstrap: str, unique_name: str, shipper_factory: list[Shipper], service_manager: object
) -> None:
    pod = "web-7d4b9c5f6-x2x9z"
    tree.add_pod(pod)
    s = new_shipper(shipper_factory, tree, kafka_bootstrap, unique_name)
    s.start()
    tree.write_lines(pod, "access.log", 1000)
    await collect(kafka_bootstrap, s.prefix, set(tree.written), idle=0)
    service_manager.stop("kafka")  # type: ignore[attr-defined]
    tree.write_lines(pod, "access.log", 5000)
    await asyncio.sleep(3)
    assert s.proc is not None and s.proc.poll() is None  # still running, waiting
    service_manager.start("kafka")  # type: ignore[attr-defined]
    tree.write_lines(pod, "access.log", 1000)
    got = await collect(kafka_bootstrap, s.prefix, set(tree.written), timeout=120)
    assert got.lost(tree.written) == []


@pytest.mark.slow
async def test_a_thousand_files_at_once(
    tree: Tree, kafka_bootstrap: str, unique_name: str, shipper_factory: list[Shipper]
) -> None:
    for i in range(50):
        pod = f"svc{i}-7d4b9c5f6-x2x9z"
        tree.add_pod(pod)
        for j in range(20):
            tree.write_lines(pod, f"app{j}.log", 10)
    s = new_shipper(shipper_factory, tree, kafka_bootstrap, unique_name)
    s.start()
    got = await collect(kafka_bootstrap, s.prefix, set(tree.written), timeout=120)
    assert got.lost(tree.written) == [] and got.duplicated() == 0
    assert s.metric("logpipe_shipper_open_files") == 1000
    rss = s.rss_mb()
    assert rss < 150, f"RSS {rss:.0f} MB with 1,000 files"
