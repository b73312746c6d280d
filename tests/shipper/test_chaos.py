"""Chaos: a real ``logpipe ship`` under random rotation, copytruncate, deletion, inode reuse and kill -9.

Every line written is unique; the topics are consumed throughout and at the end every line must have
arrived (0 lost). Duplicates are counted and reported (at-least-once: they come from the
unacknowledged or unflushed tail at each kill). A file is only deleted once its lines all arrived,
since a file deleted before any shipper could read it is not the shipper's to lose.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from pathlib import Path

import pytest

from tests.shipper.live import Shipper, Tree, Watcher

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PODS = ("web-7d4b9c5f6-x2x9z", "api-5c8d7f9b4-abcde")
FILES = ("access.log", "app.log")


@pytest.mark.parametrize("seed", [11, 22, 33])
async def test_chaos_loses_nothing(seed: int, tmp_path: Path, kafka_bootstrap: str, unique_name: str) -> None:
    rng = random.Random(seed)
    tree = Tree(tmp_path, unique_name)
    for p in PODS:
        tree.add_pod(p)
    by_file: dict[Path, list[bytes]] = {}
    rotated: list[Path] = []
    suffix = 0

    def write(pod: str, name: str, n: int) -> None:
        lines = tree.write_lines(pod, name, n)
        by_file.setdefault(tree.path(pod, name), []).extend(lines)

    for p in PODS:
        for f in FILES:
            write(p, f, 100)
    shipper = Shipper(tree, kafka_bootstrap, f"{unique_name}-", tail={"poll_interval": "50ms"})
    shipper.start()
    running = True
    log: list[str] = []
    try:
        async with Watcher(kafka_bootstrap, shipper.prefix) as watch:
            for _ in range(45):
                pod, name = rng.choice(PODS), rng.choice(FILES)
                path = tree.path(pod, name)
                action = rng.choices(
                    ["write", "rename", "copytruncate", "kill", "delete", "reuse"], [45, 10, 10, 15, 10, 10]
                )[0]
                log.append(f"{action} {pod[:3]}/{name}")
                if action == "write":
                    write(pod, name, rng.choice([1, 10, 500, 3000]))
                elif action == "rename":
                    suffix += 1
                    dst = path.with_name(f"{name}.{suffix}")
                    os.rename(path, dst)
                    by_file[dst] = by_file.pop(path, [])
                    rotated.append(dst)
                    write(pod, name, rng.randint(1, 50))
                elif action == "copytruncate":
                    suffix += 1
                    dst = path.with_name(f"{name}.{suffix}")
                    shutil.copyfile(path, dst)
                    os.truncate(path, 0)
                    by_file[dst] = by_file.pop(path, [])
                    rotated.append(dst)
                    write(pod, name, rng.randint(1, 50))
                elif action == "kill":
                    if running:
                        shipper.kill9()
                        running = False
                    else:
                        shipper.start()
                        running = True
                elif action == "delete" and rotated:
                    victim = rng.choice(rotated)
                    if running and await watch.wait_for(by_file[victim], timeout=30):
                        victim.unlink()
                        rotated.remove(victim)
                elif action == "reuse":
                    # while the shipper is down: the live file goes (fully shipped), a new one takes its
                    # name and, most likely, its inode: it must be read from 0, not from the old offset
                    if running or not await watch.wait_for(by_file.get(path, []), timeout=1):
                        continue
                    if not all(watch.counts[x] for x in by_file.get(path, [])):
                        continue
                    path.unlink()
                    by_file[path] = []
                    write(pod, name, rng.randint(1, 30))
                await asyncio.sleep(rng.choice([0.0, 0.05, 0.2, 0.5]))
            if not running:
                shipper.start()
            assert await watch.wait_for(tree.written, timeout=120), "lines still missing after 120 s"
            lost = [x for x in tree.written if watch.counts[x] == 0]
            dups = sum(c - 1 for c in watch.counts.values() if c > 1)
            print(f"seed {seed}: {len(tree.written)} lines, {len(lost)} lost, {dups} duplicated; {log}")
            assert lost == []
    finally:
        shipper.stop()
