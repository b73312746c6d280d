"""Discovery on temporary kubelet-shaped trees: what is found, how fast, and what is refused."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from shipper.discovery import Discovery, DiscoveryConfig, DiscoveryEvent, FileAdded, FileRemoved
from shipper.pod_meta import PodMetaConfig, PodMetadata
from shipper.rules import Rules
from shipper.target import PodInfo


@dataclass
class Pod:
    namespace: str
    name: str
    uid: str
    emptydir: Path  # <pods>/<uid>/volumes/kubernetes.io~empty-dir
    logdir: Path  # <logs>/<ns>_<name>_<uid>


@dataclass
class Node:
    """A kubelet-shaped tree: ``pods/<uid>/volumes/kubernetes.io~empty-dir/<vol>/...`` and
    ``logs/<ns>_<pod>_<uid>/<container>/0.log``."""

    base: Path

    @property
    def pods(self) -> Path:
        return self.base / "pods"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    def add_pod(self, name: str, namespace: str = "shop", containers: tuple[str, ...] = ("app",),
                volumes: tuple[str, ...] = ("logs",), log_dir: bool = True) -> Pod:
        uid = str(uuid.uuid4())
        emptydir = self.pods / uid / "volumes" / "kubernetes.io~empty-dir"
        (self.pods / uid / "volumes").mkdir(parents=True)
        for v in volumes:
            (emptydir / v).mkdir(parents=True)
        logdir = self.logs / f"{namespace}_{name}_{uid}"
        if log_dir:
            for c in containers:
                (logdir / c).mkdir(parents=True)
        return Pod(namespace, name, uid, emptydir, logdir)

    def write(self, pod: Pod, rel: str, lines: int = 1) -> Path:
        path = pod.emptydir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            f.write(b'{"status":200}\n' * lines)
        return path

    def write_stdout(self, pod: Pod, container: str = "app", name: str = "0.log") -> Path:
        path = pod.logdir / container / name
        with open(path, "ab") as f:
            f.write(b"2025-11-27T10:10:10.000000000Z stdout F hello\n")
        return path

    def delete_pod(self, pod: Pod) -> None:
        shutil.rmtree(self.pods / pod.uid)
        shutil.rmtree(pod.logdir, ignore_errors=True)


@dataclass
class Recorder:
    """Collects discovery's events as they come."""

    events: list[DiscoveryEvent] = field(default_factory=list)

    def added(self) -> dict[str, FileAdded]:
        return {e.target.relpath: e for e in self.events if isinstance(e, FileAdded)}

    def removed(self) -> dict[str, FileRemoved]:
        return {e.target.relpath: e for e in self.events if isinstance(e, FileRemoved)}

    async def wait(self, cond: Callable[[], bool], timeout: float = 5.0) -> float:
        """Seconds until ``cond()`` held; fails after ``timeout``."""
        t0 = time.monotonic()
        while not cond():
            assert time.monotonic() - t0 < timeout, f"not within {timeout}s; events: {self.events}"
            await asyncio.sleep(0.01)
        return time.monotonic() - t0


@pytest.fixture
def node(tmp_path: Path) -> Node:
    n = Node(tmp_path)
    n.pods.mkdir()
    n.logs.mkdir()
    return n


StartFn = Callable[..., Awaitable[tuple[Discovery, Recorder]]]


@pytest.fixture
async def start(node: Node) -> AsyncIterator[StartFn]:
    """``await start(**DiscoveryConfig fields)`` -> (discovery, recorder), stopped at teardown."""
    running: list[tuple[Discovery, asyncio.Task[None]]] = []

    async def _start(**cfg: object) -> tuple[Discovery, Recorder]:
        d = Discovery(str(node.pods), str(node.logs), node="node-1", config=DiscoveryConfig(**cfg),  # type: ignore[arg-type]
                      pod_meta=PodMetadata(PodMetaConfig(kubernetes_api="off"), node="node-1"))
        rec = Recorder()
        await d.start()

        async def pump() -> None:
            async for ev in d.events():
                rec.events.append(ev)

        running.append((d, asyncio.create_task(pump())))
        return d, rec

    yield _start
    for d, task in running:
        await d.stop()
        await asyncio.wait_for(task, 5)


def refusals(reason: str) -> float:
    return REGISTRY.get_sample_value("logpipe_shipper_symlink_refusals_total", {"reason": reason}) or 0.0


async def test_initial_scan_announces_emptydir_and_stdout_files_with_their_pod(node: Node, start: StartFn) -> None:
    pod = node.add_pod("pay-5c6d7f8b9c-zz2k4")
    node.write(pod, "logs/access.log")
    node.write(pod, "logs/app/trace.log")  # nested below the volume
    node.write(pod, "logs/debug.log")
    node.write_stdout(pod)
    d, rec = await start()
    await rec.wait(lambda: len(rec.added()) == 4)
    added = rec.added()
    base = f"{pod.uid}/volumes/kubernetes.io~empty-dir/logs"
    assert {r: (e.target.log_type, e.target.topic) for r, e in added.items()} == {
        f"{base}/access.log": ("access", "logpipe-access"),
        f"{base}/app/trace.log": ("trace", "logpipe-trace"),
        f"{base}/debug.log": ("app", "logpipe-app"),
        f"shop_pay-5c6d7f8b9c-zz2k4_{pod.uid}/app/0.log": ("stdout", "logpipe-stdout"),
    }
    info = PodInfo("shop", "pay-5c6d7f8b9c-zz2k4", pod.uid, "pay", "app")
    assert all(e.target.pod == info and e.target.node == "node-1" for e in added.values())
    assert added[f"{base}/access.log"].target.root == str(node.pods)
    st = os.stat(node.pods / base / "access.log")
    assert (added[f"{base}/access.log"].dev, added[f"{base}/access.log"].ino) == (st.st_dev, st.st_ino)
    assert sorted(t.relpath for t in d.targets()) == sorted(added)


async def test_a_new_pod_and_its_files_are_found_within_one_second(node: Node, start: StartFn) -> None:
    d, rec = await start(rescan_interval=60)
    assert d.watching
    await asyncio.sleep(0.1)
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    node.write(pod, "logs/access.log")
    node.write_stdout(pod)
    took = await rec.wait(lambda: len(rec.added()) == 2, timeout=1.0)
    assert took < 1.0
    node.write(pod, "logs/deeper/dir/app.log")  # a new directory inside a watched volume
    await rec.wait(lambda: len(rec.added()) == 3, timeout=1.0)


async def test_rotated_names_match_and_compressed_or_foreign_files_do_not(node: Node, start: StartFn) -> None:
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    for name in ("access.log", "access.log.1", "access.log.2025-11-27", "access.log.2.gz", "notes.txt",
                 "access.log.swp", "data.json"):
        node.write(pod, f"logs/{name}")
    node.write_stdout(pod, name="0.log.20251127-101010")
    node.write_stdout(pod, name="0.log.20251126-101010.gz")
    _, rec = await start()
    await rec.wait(lambda: len(rec.added()) == 4)
    await asyncio.sleep(0.2)
    assert sorted(r.rsplit("/", 1)[1] for r in rec.added()) == [
        "0.log.20251127-101010", "access.log", "access.log.1", "access.log.2025-11-27"]


async def test_rename_rotation_removes_the_old_path_and_announces_the_rotated_file_first(
    node: Node, start: StartFn
) -> None:
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    live = node.write(pod, "logs/access.log")
    _, rec = await start(rescan_interval=60)
    await rec.wait(lambda: len(rec.added()) == 1)
    ino = live.stat().st_ino
    os.rename(live, live.with_name("access.log.1"))
    node.write(pod, "logs/access.log")
    await rec.wait(lambda: len(rec.events) >= 4, timeout=1.0)
    kinds = [(type(e).__name__, e.target.relpath.rsplit("/", 1)[1]) for e in rec.events[1:]]
    if len(kinds) == 3:  # both changes seen in one scan
        assert kinds == [("FileRemoved", "access.log"), ("FileAdded", "access.log.1"), ("FileAdded", "access.log")]
    else:  # seen apart: the old name went, the rotated file came, then the new file
        assert kinds[:2] == [("FileRemoved", "access.log"), ("FileAdded", "access.log.1")]
        assert kinds[-1] == ("FileAdded", "access.log")
    rotated = next(e for e in rec.events if isinstance(e, FileAdded) and e.target.relpath.endswith(".1"))
    assert rotated.ino == ino  # same file, new name: the tailer keeps its offset


async def test_a_planted_symlink_is_refused_warned_and_counted_once(
    node: Node, start: StartFn, caplog: pytest.LogCaptureFixture
) -> None:
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    node.write(pod, "logs/app.log")
    before = refusals("symlink")
    _, rec = await start(rescan_interval=0.2)
    await rec.wait(lambda: len(rec.added()) == 1)
    os.symlink("/etc/shadow", pod.emptydir / "logs" / "access.log")
    os.symlink("/var/log", pod.emptydir / "logs" / "hostlogs")  # a symlinked directory: never walked
    await rec.wait(lambda: refusals("symlink") == before + 1, timeout=1.0)
    await asyncio.sleep(0.6)  # several rescans later: still counted once
    assert refusals("symlink") == before + 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == ["SymlinkRefused"]
    assert all("hostlogs" not in r and not r.endswith("/access.log") for r in rec.added())
    os.unlink(pod.emptydir / "logs" / "access.log")
    await asyncio.sleep(0.4)
    os.symlink("/etc/passwd", pod.emptydir / "logs" / "access.log")  # planted again: counted again
    await rec.wait(lambda: refusals("symlink") == before + 2, timeout=1.0)


async def test_fifos_and_hard_links(node: Node, start: StartFn) -> None:
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    os.mkfifo(pod.emptydir / "logs" / "access.log")
    node.write(pod, "logs/app.log")
    os.link(pod.emptydir / "logs" / "app.log", pod.emptydir / "logs" / "copy.log")
    before = refusals("not_regular"), refusals("hardlink")
    _, rec = await start(refuse_hardlinks=True)
    await rec.wait(lambda: refusals("hardlink") == before[1] + 2)
    assert refusals("not_regular") == before[0] + 1
    assert rec.added() == {}


async def test_a_deleted_pod_removes_its_files(node: Node, start: StartFn) -> None:
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    node.write(pod, "logs/access.log")
    node.write_stdout(pod)
    d, rec = await start(rescan_interval=60)
    await rec.wait(lambda: len(rec.added()) == 2)
    node.delete_pod(pod)
    await rec.wait(lambda: len(rec.removed()) == 2, timeout=1.0)
    reasons = {r.rsplit("/", 1)[1]: e.reason for r, e in rec.removed().items()}
    assert reasons == {"access.log": "pod_gone", "0.log": "pod_gone"}
    assert d.targets() == []


async def test_without_inotify_the_rescan_finds_changes(node: Node, start: StartFn) -> None:
    d, rec = await start(inotify=False, rescan_interval=0.2)
    assert not d.watching
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    path = node.write(pod, "logs/access.log")
    await rec.wait(lambda: len(rec.added()) == 1, timeout=2.0)
    path.unlink()  # deleted and recreated between two scans: a new inode under the same name
    node.write(pod, "logs/other.log")  # holds the old inode number busy, so the new one differs
    node.write(pod, "logs/access.log")
    await rec.wait(lambda: any(isinstance(e, FileRemoved) for e in rec.events), timeout=2.0)
    removed = next(e for e in rec.events if isinstance(e, FileRemoved))
    assert removed.reason in ("replaced", "deleted")
    await rec.wait(lambda: sum(isinstance(e, FileAdded) and e.target.relpath.endswith("/access.log")
                               for e in rec.events) == 2, timeout=2.0)


async def test_an_emptydir_file_waits_for_its_pod_name_then_ships_with_the_uid_only(
    node: Node, start: StartFn
) -> None:
    early = node.add_pod("web-7d9f8b6c4-x2k9p", log_dir=False)
    orphan = node.add_pod("gone-7d9f8b6c4-x2k9p", log_dir=False)
    node.write(early, "logs/access.log")
    node.write(orphan, "logs/access.log")
    _, rec = await start(metadata_wait=0.6, rescan_interval=60)
    await asyncio.sleep(0.2)
    assert rec.added() == {}  # both wait for their pod's /var/log/pods directory
    (early.logdir / "app").mkdir(parents=True)  # the kubelet creates it: full metadata
    await rec.wait(lambda: len(rec.added()) == 1, timeout=1.0)
    (ev,) = rec.added().values()
    assert ev.target.pod == PodInfo("shop", "web-7d9f8b6c4-x2k9p", early.uid, "web", "app")
    took = await rec.wait(lambda: len(rec.added()) == 2, timeout=2.0)
    assert took > 0.1
    late = next(e for e in rec.added().values() if e.target.pod.pod_uid == orphan.uid)
    assert late.target.pod == PodInfo("", "", orphan.uid, "", "")


async def test_a_new_pod_whose_volumes_come_later_is_polled(node: Node, start: StartFn) -> None:
    _, rec = await start(rescan_interval=60)
    uid = str(uuid.uuid4())
    (node.pods / uid).mkdir()
    (node.logs / f"shop_late-0_{uid}" / "app").mkdir(parents=True)
    await asyncio.sleep(0.4)  # the kubelet sets volumes up a bit later
    vol = node.pods / uid / "volumes" / "kubernetes.io~empty-dir" / "logs"
    vol.mkdir(parents=True)
    (vol / "access.log").write_bytes(b"x\n")
    await rec.wait(lambda: len(rec.added()) == 1, timeout=1.0)
    assert next(iter(rec.added().values())).target.pod.component == "late"


async def test_out_of_watch_budget_pods_are_rescanned_with_a_warning(
    node: Node, start: StartFn, caplog: pytest.LogCaptureFixture
) -> None:
    a = node.add_pod("a-7d9f8b6c4-x2k9p")
    b = node.add_pod("b-7d9f8b6c4-x2k9p")
    node.write(a, "logs/access.log")
    node.write(b, "logs/access.log")
    _, rec = await start(watch_budget=2, rescan_interval=0.3)  # room for one pod's two directories
    await rec.wait(lambda: len(rec.added()) == 2)
    assert any("not watching pod" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    node.write(a, "logs/more.log")
    node.write(b, "logs/more.log")
    await rec.wait(lambda: len(rec.added()) == 4, timeout=2.0)  # the unwatched pod through the rescan


async def test_foreign_entries_under_the_roots_are_ignored(node: Node, start: StartFn) -> None:
    (node.pods / "lost+found").mkdir()
    (node.pods / "lost+found" / "x.log").write_text("x\n")
    (node.logs / "not-a-pod-dir" / "c").mkdir(parents=True)
    (node.logs / "not-a-pod-dir" / "c" / "0.log").write_text("x\n")
    (node.pods / "stray.log").write_text("x\n")
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    (node.pods / pod.uid / "volumes" / "kubernetes.io~secret").mkdir()
    (node.pods / pod.uid / "volumes" / "kubernetes.io~secret" / "token.log").write_text("secret\n")
    node.write(pod, "logs/access.log")
    _, rec = await start()
    await rec.wait(lambda: len(rec.added()) == 1)
    await asyncio.sleep(0.2)
    assert [r.rsplit("/", 1)[1] for r in rec.added()] == ["access.log"]


async def test_one_thousand_files_are_discovered_quickly(node: Node, start: StartFn) -> None:
    pods = [node.add_pod(f"svc{i}-7d9f8b6c4-x2k9p") for i in range(100)]
    for pod in pods:
        for j in range(9):
            node.write(pod, f"logs/app{j}.log")
        node.write_stdout(pod)
    t0 = time.monotonic()
    d, rec = await start(rescan_interval=60)
    await rec.wait(lambda: len(rec.added()) == 1000, timeout=10.0)
    took = time.monotonic() - t0
    assert took < 5.0, f"1,000 files took {took:.2f}s"
    # ... and a burst of 1,000 new files while running
    t1 = time.monotonic()
    for pod in pods:
        for j in range(10):
            node.write(pod, f"logs/new{j}.log")
    await rec.wait(lambda: len(rec.added()) == 2000, timeout=10.0)
    print(f"\n1,000 files at start: {took:.3f}s; 1,000 new files while watching: {time.monotonic() - t1:.3f}s")
    assert len(d.targets()) == 2000


async def test_inotify_watch_limit_reached_degrades_to_rescan(
    node: Node, start: StartFn, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC from inotify_add_watch (fs.inotify.max_user_watches): warned once, files still found."""
    from shipper.fs_watch import PathWatcher

    real = PathWatcher._schedule

    def no_space(self: PathWatcher, path: str, recursive: bool) -> object:
        if "kubernetes.io~empty-dir" in path:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return real(self, path, recursive)

    monkeypatch.setattr(PathWatcher, "_schedule", no_space)
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    d, rec = await start(rescan_interval=0.3)
    assert d.watching  # the roots are still watched
    node.write(pod, "logs/access.log")
    await rec.wait(lambda: len(rec.added()) == 1, timeout=2.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "inotify watch limit reached" in w]) == 1


async def test_a_deleted_pod_gives_its_watch_budget_back(node: Node, start: StartFn) -> None:
    a = node.add_pod("a-7d9f8b6c4-x2k9p")
    node.write(a, "logs/access.log")
    d, rec = await start(watch_budget=2, rescan_interval=0.3)
    await rec.wait(lambda: len(rec.added()) == 1)
    watcher = d._watcher
    assert watcher is not None and watcher.watched_pods == 1
    node.delete_pod(a)
    await rec.wait(lambda: len(rec.removed()) == 1, timeout=1.0)
    b = node.add_pod("b-7d9f8b6c4-x2k9p")
    node.write(b, "logs/access.log")
    await rec.wait(lambda: len(rec.added()) == 2, timeout=1.0)
    await rec.wait(lambda: watcher.watched_pods == 1 and watcher.degraded_pods == 0, timeout=2.0)
    assert watcher.pod_uids() == {b.uid}


async def test_missing_roots_are_warned_once_and_watched_once_they_exist(
    node: Node, start: StartFn, caplog: pytest.LogCaptureFixture
) -> None:
    node.pods.rmdir()
    node.logs.rmdir()
    _, rec = await start(rescan_interval=0.2)
    await asyncio.sleep(0.5)  # a few rescans
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and all("cannot list root" in w for w in warned)
    node.pods.mkdir()
    node.logs.mkdir()
    await asyncio.sleep(0.5)  # the next rescan watches the new roots
    pod = node.add_pod("web-7d9f8b6c4-x2k9p")
    node.write(pod, "logs/access.log")
    await rec.wait(lambda: len(rec.added()) == 1, timeout=1.0)


async def test_roots_may_be_symlinks_and_are_still_watched(tmp_path: Path) -> None:
    real = Node(tmp_path / "data")
    real.pods.mkdir(parents=True)
    real.logs.mkdir()
    os.symlink(real.pods, tmp_path / "pods-link")
    os.symlink(real.logs, tmp_path / "logs-link")
    d = Discovery(str(tmp_path / "pods-link"), str(tmp_path / "logs-link"), node="node-1",
                  config=DiscoveryConfig(rescan_interval=60),
                  pod_meta=PodMetadata(PodMetaConfig(kubernetes_api="off"), node="node-1"))
    await d.start()
    rec = Recorder()

    async def pump() -> None:
        async for ev in d.events():
            rec.events.append(ev)

    task = asyncio.create_task(pump())
    try:
        await asyncio.sleep(0.1)
        pod = real.add_pod("web-7d9f8b6c4-x2k9p")
        real.write(pod, "logs/access.log")
        await rec.wait(lambda: len(rec.added()) == 1, timeout=1.0)  # by inotify: the rescan is a minute away
        assert next(iter(rec.added().values())).target.root == str(real.pods)
    finally:
        await d.stop()
        await asyncio.wait_for(task, 5)


def on_disk(node: Node) -> dict[str, int]:
    """What discovery should announce: every regular file a default rule ships, by relpath -> inode."""
    from shipper.rules import Rules

    rules = Rules.from_config()
    out: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(node.pods):
        rel = os.path.relpath(dirpath, node.pods).split(os.sep)
        if len(rel) < 4 or rel[1:3] != ["volumes", "kubernetes.io~empty-dir"]:
            continue
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p) and rules.for_emptydir(rel[3], f):
                out[os.path.relpath(p, node.pods)] = os.lstat(p).st_ino
    return out


@pytest.mark.parametrize("seed", range(4))
async def test_random_churn_ends_with_exactly_what_is_on_disk(node: Node, start: StartFn, seed: int) -> None:
    """Create, append, rename-rotate, delete, replace by a symlink, add and delete pods at random,
    without pauses; once quiet, the announced files are exactly the matching regular files on disk."""
    import random

    rng = random.Random(seed)
    pods = [node.add_pod(f"svc{i}-7d9f8b6c4-x2k9p") for i in range(3)]
    d, rec = await start(rescan_interval=60)  # inotify alone must keep up: no rescan helps here
    names = ["access.log", "trace.log", "app.log", "sub/app.log", "access.log.1", "x.txt"]
    for _ in range(300):
        op = rng.random()
        pod = rng.choice(pods)
        name = rng.choice(names)
        path = pod.emptydir / "logs" / name
        if op < 0.4:
            node.write(pod, f"logs/{name}")
        elif op < 0.55 and path.exists() and not path.is_symlink():
            os.replace(path, path.with_name(path.name + ".1"))
        elif op < 0.7 and (path.exists() or path.is_symlink()):
            path.unlink()
        elif op < 0.75 and not path.exists() and not path.is_symlink() and path.parent.exists():
            os.symlink("/etc/shadow", path)
        elif op < 0.8 and len(pods) > 1:
            pods.remove(pod)
            node.delete_pod(pod)
        elif op < 0.85:
            pods.append(node.add_pod(f"new{rng.randrange(1000)}-7d9f8b6c4-x2k9p"))
        if rng.random() < 0.1:
            await asyncio.sleep(0.01)
    expected = on_disk(node)

    def announced() -> dict[str, int]:
        """The events replayed: every FileRemoved follows its FileAdded, no path is added twice."""
        state: dict[str, int] = {}
        for ev in rec.events:
            if isinstance(ev, FileAdded):
                assert ev.target.relpath not in state, f"added twice: {ev.target.relpath}"
                state[ev.target.relpath] = ev.ino
            else:
                assert state.pop(ev.target.relpath, None) is not None, f"removed unannounced {ev.target.relpath}"
        return state

    t0 = time.monotonic()
    while announced() != expected and time.monotonic() - t0 < 3.0:
        await asyncio.sleep(0.05)
    assert announced() == expected
    assert {t.relpath for t in d.targets()} == set(expected)


async def test_a_rule_chosen_access_format_reaches_the_lines_headers(node: Node) -> None:
    from logpipe.core.envelope import H_FORMAT, LineRecord, decode_headers
    from shipper.rules import RuleConfig, RulesConfig
    from shipper.tailer import source_meta

    pod = node.add_pod("ingress-5c6d7f8b9c-zz2k4")
    node.write(pod, "logs/ingress-access.log")
    node.write(pod, "logs/access.log")
    rules = Rules.from_config(RulesConfig(emptydir=[
        RuleConfig(match=["ingress-*.log"], type="access", format="upstreaminfo"),
        RuleConfig(match=["*.log"], type="access"),
    ]))
    d = Discovery(str(node.pods), str(node.logs), node="node-1", rules=rules,
                  pod_meta=PodMetadata(PodMetaConfig(kubernetes_api="off"), node="node-1"))
    await d.start()
    try:
        targets = {t.relpath.rsplit("/", 1)[1]: t for t in d.targets()}
    finally:
        await d.stop()
    heads = {name: decode_headers(LineRecord(source_meta(t, "fp::1"), 0, b"", 0).headers())
             for name, t in targets.items()}
    assert heads["ingress-access.log"][H_FORMAT] == "upstreaminfo"
    assert H_FORMAT not in heads["access.log"]  # auto: detected per line by the consumer
