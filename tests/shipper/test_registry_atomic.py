"""The registry on disk is always the previous or the new complete version: a writer process is killed
with SIGKILL at random instants while it writes, on a normal directory and on a 64 KiB tmpfs where
the bigger versions do not fit (ENOSPC mid-write); after every kill the file is one complete version.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from shipper.registry import Registry
from tests.shipper.disk import tmpfs

# Writes versions 1, 2, 3, ... of a registry-shaped document, each a different size (4-40 KiB), forever.
WRITER = r"""
import os, sys, random, orjson
from pathlib import Path
from shipper.registry import write_atomically
path = Path(sys.argv[1])
rng = random.Random(int(sys.argv[2]))
n = 0
print("ready", flush=True)
while True:
    n += 1
    files = [{"id": f"fingerprint::{n:08d}{i:04d}", "scope": "/pods/uid/logs", "path": f"/pods/uid/logs/{i}.log",
              "root": "/pods", "relpath": f"uid/logs/{i}.log", "dev": 1, "ino": i, "fp_len": 1024,
              "fp_digest": "ab" * 16, "offset": n, "updated": 0.0} for i in range(rng.randint(20, 200))]
    try:
        write_atomically(path, orjson.dumps({"version": 1, "n": n, "count": len(files), "files": files}))
    except OSError:
        pass  # ENOSPC: the previous version stays; try the next one
"""


def complete_version(path: Path) -> int:
    """The version number in the file, asserting that it is whole and self-consistent."""
    doc = orjson.loads(path.read_bytes())
    assert doc["version"] == 1 and len(doc["files"]) == doc["count"]
    assert all(f["offset"] == doc["n"] for f in doc["files"])
    return int(doc["n"])


def kill_at_random(directory: Path, kills: int, seed: int) -> list[int]:
    path = directory / "registry.json"
    rng = random.Random(seed)
    seen: list[int] = []
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    for k in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(seed * 1000 + k)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.03))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        if path.exists():
            seen.append(complete_version(path))
    return seen


def test_kill9_during_writes_leaves_a_complete_version(tmp_path: Path) -> None:
    seen = kill_at_random(tmp_path, 60, seed=1)
    assert len(seen) >= 50 and len(set(seen)) > 5  # the kills did land at different points of the writes
    temps = list(tmp_path.glob(".registry.json.tmp-*"))
    reg = Registry.load(tmp_path / "registry.json")  # a killed writer's temps are cleared on load
    assert reg.loaded and len(reg) > 0
    assert not list(tmp_path.glob(".registry.json.tmp-*")) and not list(tmp_path.glob("*.corrupt-*"))
    print(f"{len(seen)} kills, {len(temps)} temp files left by killed writers, removed on load")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_kill9_during_writes_on_a_full_64k_tmpfs_leaves_a_complete_version(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "64k") as small:
        seen = kill_at_random(small, 60, seed=2)
        assert len(seen) >= 50
        complete_version(small / "registry.json")
