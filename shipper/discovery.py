"""Discovery: which files under the kubelet's roots are shipped, found within a second of appearing.

API (used by ``shipper/agent.py``)::

    discovery = Discovery(pods_root, logs_root, node="node-1",
                          rules=Rules.from_config(cfg.rules),        # shipper/rules.py
                          config=cfg.discovery,                      # DiscoveryConfig below
                          pod_meta=PodMetadata(cfg.pod_metadata, "node-1"))
    await discovery.start()          # API first sync, full scan (its events are queued), watches on
    async for ev in discovery.events():          # ends after stop()
        if isinstance(ev, FileAdded): ...        # start tailing ev.target
        elif isinstance(ev, FileRemoved): ...    # ev.target's path no longer names that file
    await discovery.stop()

Events are path-level facts, emitted in order, one concern each:

- :class:`FileAdded` — ``target.relpath`` now names a regular file a rule ships: new, renamed in
  (``access.log`` -> ``access.log.1`` is ``FileRemoved(access.log)`` then ``FileAdded(access.log.1)``),
  or replaced by a different inode (then preceded by ``FileRemoved(reason="replaced")``). Deciding
  whether it continues a known stream (rotation, copytruncate) is the tailer's identity's job.
- :class:`FileRemoved` — the path no longer names the announced file (deleted, renamed away,
  replaced, its pod gone). A tailer holding the file open keeps its fd, reads to EOF and releases
  it; it must not reopen the path.

How files are found: one watchdog (inotify) observer (``shipper/fs_watch.py``) with watches on
``pods_root`` (new/deleted pod directories), on ``logs_root`` (recursive: CRI stdout files and the
``<ns>_<pod>_<uid>`` names that give EmptyDir files their metadata) and one recursive watch per pod
on ``<uid>/volumes/kubernetes.io~empty-dir`` (other volume types — secrets, CSI, NFS — are never
watched nor walked). Only create/delete/move events are subscribed (no IN_MODIFY: appends cost
nothing). The watchdog thread hands paths to the event loop with ``loop.call_soon_threadsafe``; the
pods they touch are rescanned (debounced) on one worker thread. Every ``rescan_interval`` everything
is rescanned, which repairs lost events (queue overflow) and runs discovery alone when inotify is off
or out of watches (``fs.inotify.max_user_watches``: past ``watch_budget`` directories, pods are not
watched any more and a warning says so). Walking uses :mod:`shipper.safe_open`: directory fds, never
following a symlink. A symlink (or FIFO, device ...) whose name a rule would ship is refused: nothing
is read, one ``SymlinkRefused`` warning and count per planted path (other symlinks are ignored).

EmptyDir files get namespace/pod/Component from :class:`shipper.pod_meta.PodMetadata`. If the pod's
uid is not known yet (no ``/var/log/pods`` directory seen, API unaware), the file waits up to
``metadata_wait`` for it, then is shipped with the uid only (empty namespace, pod and Component).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from logpipe.core.config_base import StrictModel
from logpipe.core.durations import Duration
from logpipe.core.supervisor import Heartbeat
from shipper.fs_watch import PathWatcher
from shipper.pod_meta import PodMetadata, looks_like_uid, parse_log_dir
from shipper.rules import Rule, Rules
from shipper.safe_open import scandir_beneath, walk_beneath
from shipper.target import FileTarget, PodInfo
from shipper.telemetry import FileDiscovered, SymlinkRefused

log = logging.getLogger("logpipe.shipper.discovery")

EMPTYDIR = "volumes/kubernetes.io~empty-dir"


class DiscoveryConfig(StrictModel):
    """How files are found (the ``discovery:`` section of the shipper config)."""

    rescan_interval: Duration = 10.0
    """Full rescan period: the fallback for lost inotify events, and all there is without inotify."""
    inotify: bool = True
    """Watch the roots with inotify (watchdog) so new files are found within a second."""
    watch_budget: int | None = Field(default=None, ge=0)
    """Most directories to watch; default half of ``fs.inotify.max_user_watches``. Pods past it are rescanned."""
    max_depth: int = Field(default=8, ge=0, le=64)
    """Directory levels walked below an EmptyDir volume."""
    metadata_wait: Duration = 2.0
    """How long an EmptyDir file waits for its pod's namespace/name before it is shipped with the uid only."""
    new_pod_poll: Duration = 30.0
    """How long a new pod directory is polled (4/s) for its EmptyDir volumes to appear."""
    debounce: Duration = 0.05
    """Delay gathering a burst of inotify events into one rescan."""
    refuse_hardlinks: bool = False
    """Refuse files with more than one hard link (a hard link cannot be told from its original)."""


@dataclass(frozen=True, slots=True)
class FileAdded:
    """``target.relpath`` names a regular file to ship (``dev``/``ino`` as discovery saw it)."""

    target: FileTarget
    dev: int
    ino: int


@dataclass(frozen=True, slots=True)
class FileRemoved:
    """``target.relpath`` no longer names the file announced by the matching :class:`FileAdded`."""

    target: FileTarget
    reason: Literal["deleted", "replaced", "pod_gone"]


DiscoveryEvent = FileAdded | FileRemoved
Scope = tuple[Literal["pod", "logs"], str]  # ("pod", uid) | ("logs", "<ns>_<pod>_<uid>")


@dataclass(frozen=True, slots=True)
class _Found:
    relpath: str
    rule: Rule
    dev: int
    ino: int
    uid: str
    place: str  # EmptyDir volume, or CRI container


@dataclass
class _ScopeScan:
    scope: Scope
    ok: bool = True  # False: an error (not absence) hid the scope: keep what is known as it is
    gone: bool = False  # the pod's directory is gone
    files: dict[str, _Found] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # relpath -> reason
    containers: tuple[str, ...] = ()
    awaiting_volumes: bool = False  # pod exists, its EmptyDir directory does not (yet)


@dataclass
class _Known:
    target: FileTarget
    dev: int
    ino: int


class Discovery:
    """Finds the files to ship under ``pods_root`` and ``logs_root``; see the module docstring."""

    def __init__(self, pods_root: str, logs_root: str, *, node: str = "", rules: Rules | None = None,
                 config: DiscoveryConfig | None = None, pod_meta: PodMetadata | None = None) -> None:
        # The roots are trusted configuration and may be symlinks (/var/log/pods -> /data/pods): resolve
        # them once, since inotify (IN_DONT_FOLLOW) on a symlink would watch the link, not the directory.
        self.pods_root = os.path.realpath(pods_root)
        self.logs_root = os.path.realpath(logs_root)
        self.node = node
        self.rules = rules or Rules.from_config()
        self.config = config or DiscoveryConfig()
        self.pod_meta = pod_meta or PodMetadata(node=node)
        self._queue: asyncio.Queue[DiscoveryEvent | None] = asyncio.Queue()
        self._known: dict[Scope, dict[str, _Known]] = {}
        self._pending: dict[Scope, dict[str, tuple[_Found, float]]] = {}
        self._refused: dict[Scope, set[str]] = {}
        self._dirty: set[Scope] = set()
        self._awaiting: dict[str, float] = {}  # uid -> when its pod directory appeared
        self._root_errors: set[str] = set()  # roots whose listing failed (warned once)
        self._wake = asyncio.Event()
        self.heartbeat = Heartbeat("discovery")
        self._stopping = False
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="logpipe-discovery")
        self._watcher = (PathWatcher(self.pods_root, self.logs_root, self._on_fs_path,
                                     budget=self.config.watch_budget,
                                     rescan_interval=self.config.rescan_interval)
                         if self.config.inotify else None)

    # -- public API --

    async def start(self, background: bool = True) -> None:
        """Sync pod metadata, scan everything once (events queued), then watch and rescan in the background.

        ``background=False``: the caller runs :meth:`run` itself (the agent, under its supervisor)."""
        self._loop = asyncio.get_running_loop()
        try:
            await self.pod_meta.start()
            if self._watcher is not None:
                await self._loop.run_in_executor(self._executor, self._watcher.start, self._loop)
            await self._cycle(set(), full=True)
        except BaseException:
            await self.stop()  # no thread left behind
            raise
        if background:
            self._task = asyncio.create_task(self.run(), name="discovery")

    async def stop(self) -> None:
        """Stop watching; ``events()`` ends after the events already queued. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._watcher is not None and self._loop is not None:
            await self._loop.run_in_executor(self._executor, self._watcher.stop)
        self._executor.shutdown(wait=True)
        await self.pod_meta.close()
        self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[DiscoveryEvent]:
        """Discovery events in order, until :meth:`stop` (single consumer)."""
        while True:
            ev = await self._queue.get()
            if ev is None:
                return
            yield ev

    def targets(self) -> list[FileTarget]:
        """The files currently announced (added and not removed)."""
        return [k.target for files in self._known.values() for k in files.values()]

    @property
    def watching(self) -> bool:
        """Whether inotify watches are active (False: rescans only)."""
        return self._watcher is not None and self._watcher.active

    # -- the loop --

    def _on_fs_path(self, path: str) -> None:
        """A watched path changed (called on the loop by the watchdog thread)."""
        scope = self._scope_of(path)
        if scope is not None:
            if scope[0] == "pod" and path == f"{self.pods_root}/{scope[1]}":
                self._awaiting.setdefault(scope[1], time.monotonic())
            self._dirty.add(scope)
            self._wake.set()

    def _scope_of(self, path: str) -> Scope | None:
        for root, kind in ((self.pods_root, "pod"), (self.logs_root, "logs")):
            if path.startswith(root + "/"):
                first = path[len(root) + 1 :].split("/", 1)[0]
                if kind == "pod" and looks_like_uid(first):
                    return ("pod", first)
                if kind == "logs" and first:
                    return ("logs", first)
        return None

    async def run(self) -> None:
        """Watch and rescan until :meth:`stop`; advances :attr:`heartbeat` once per cycle."""
        next_full = time.monotonic() + self.config.rescan_interval
        hb = self.heartbeat
        while not self._stopping:
            hb.beat()
            now = time.monotonic()
            deadline = next_full
            if self._awaiting:
                deadline = min(deadline, now + 0.25)
            if any(self._pending.values()):
                deadline = min(deadline, now + 0.1)
            with hb.waiting(), contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(deadline - now, 0.0))
            if self._stopping:
                break
            self._wake.clear()
            if self._dirty:
                await asyncio.sleep(self.config.debounce)
            now = time.monotonic()
            full = now >= next_full
            if full:
                next_full = now + self.config.rescan_interval
            scopes = self._dirty
            self._dirty = set()
            for uid, since in list(self._awaiting.items()):
                if now - since > self.config.new_pod_poll:
                    del self._awaiting[uid]
                else:
                    scopes.add(("pod", uid))
            try:
                await self._cycle(scopes, full=full)
            except Exception:  # discovery must outlive any surprise; the next cycle retries
                log.exception("discovery cycle failed")

    async def _cycle(self, scopes: set[Scope], *, full: bool) -> None:
        assert self._loop is not None
        if full:
            # Everything on disk, plus everything remembered: what vanished must be seen to go.
            scopes = scopes | set(self._known) | set(self._pending) | set(self._refused)
            scopes |= {("logs", name) for name in self.pod_meta.log_dirs()}
        results = await self._loop.run_in_executor(self._executor, self._scan_scopes, scopes, full)
        for res in results:
            if res.scope[0] == "logs":
                self._apply(res)
        for res in results:
            if res.scope[0] == "pod":
                self._apply(res)
        self._resolve_pending()

    # -- scanning (worker thread) --

    def _scan_scopes(self, scopes: set[Scope], full: bool) -> list[_ScopeScan]:
        if full:
            scopes = scopes | self._list_root(self.pods_root, "pod") | self._list_root(self.logs_root, "logs")
            if self._watcher is not None:
                scopes |= {("pod", uid) for uid in self._watcher.pod_uids()}
        out = [self._scan_logs(s[1]) if s[0] == "logs" else self._scan_pod(s[1]) for s in sorted(scopes)]
        if self._watcher is not None:
            self._watcher.ensure_roots()
        return out

    def _list_root(self, root: str, kind: Literal["pod", "logs"]) -> set[Scope]:
        try:
            entries = scandir_beneath(root)
        except OSError as exc:
            if root not in self._root_errors:  # once, not at every rescan
                self._root_errors.add(root)
                log.warning("cannot list root %s (%s): nothing to discover there until it can be",
                            root, exc.strerror or exc)
            return set()
        self._root_errors.discard(root)
        if kind == "pod":
            return {("pod", e.name) for e in entries if e.kind == "dir" and looks_like_uid(e.name)}
        return {("logs", e.name) for e in entries if e.kind == "dir"}

    def _scan_pod(self, uid: str) -> _ScopeScan:
        res = _ScopeScan(("pod", uid))
        base = f"{uid}/{EMPTYDIR}"
        if self._watcher is not None:
            self._watcher.watch_pod(uid, f"{self.pods_root}/{base}")
        try:
            volumes = scandir_beneath(self.pods_root, base)
        except FileNotFoundError:
            try:
                scandir_beneath(self.pods_root, uid)
                res.awaiting_volumes = True
            except FileNotFoundError:
                res.gone = True
                if self._watcher is not None:
                    self._watcher.forget(uid)
            except OSError:
                res.ok = False
            return res
        except OSError as exc:
            log.warning("cannot list EmptyDir volumes of pod %s: %s", uid, exc)
            res.ok = False
            return res
        dirs = 1 + sum(v.kind == "dir" for v in volumes)  # what the pod's recursive watch costs (at least)
        for vol in volumes:
            if vol.kind != "dir" or not self.rules.wants_volume(vol.name):
                continue
            try:
                wanted = functools.partial(self._wanted, vol.name)
                for e in walk_beneath(self.pods_root, vol.relpath, max_depth=self.config.max_depth, want=wanted):
                    if e.kind == "dir":
                        dirs += 1
                        continue
                    rule = self.rules.for_emptydir(vol.name, e.name)
                    if rule is not None:
                        self._classify(res, e.relpath, e.kind, e.stat, rule, uid, vol.name)
            except OSError as exc:  # the volume vanished or is unreadable: judge it next time
                if exc.errno != errno.ENOENT:
                    res.ok = False
        if self._watcher is not None:
            self._watcher.count_dirs(uid, dirs)
        return res

    def _wanted(self, volume: str, name: str) -> bool:
        return self.rules.for_emptydir(volume, name) is not None

    def _scan_logs(self, dirname: str) -> _ScopeScan:
        res = _ScopeScan(("logs", dirname))
        ref = parse_log_dir(dirname)
        try:
            containers = [e for e in scandir_beneath(self.logs_root, dirname) if e.kind == "dir"]
        except FileNotFoundError:
            res.gone = True
            return res
        except OSError as exc:
            log.warning("cannot list %s/%s: %s", self.logs_root, dirname, exc)
            res.ok = False
            return res
        res.containers = tuple(c.name for c in containers)
        if ref is None:
            return res  # not a pod's log directory: nothing to attribute its files to
        for c in containers:
            if not self.rules.wants_container(c.name):
                continue
            try:
                entries = scandir_beneath(self.logs_root, c.relpath)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    res.ok = False
                continue
            for e in entries:
                if e.kind == "dir":
                    continue
                rule = self.rules.for_cri(c.name, e.name)
                if rule is not None:
                    self._classify(res, e.relpath, e.kind, e.stat, rule, ref.uid, c.name)
        return res

    def _classify(self, res: _ScopeScan, relpath: str, kind: str, st: os.stat_result | None, rule: Rule,
                  uid: str, place: str) -> None:
        if kind == "symlink":
            res.refused[relpath] = "symlink"
        elif kind != "file" or st is None:
            res.refused[relpath] = "not_regular"
        elif self.config.refuse_hardlinks and st.st_nlink > 1:
            res.refused[relpath] = "hardlink"
        else:
            res.files[relpath] = _Found(relpath, rule, st.st_dev, st.st_ino, uid, place)

    # -- applying scan results (event loop) --

    def _apply(self, res: _ScopeScan) -> None:
        if not res.ok:
            return
        scope = res.scope
        if scope[0] == "logs":
            if res.gone:
                self.pod_meta.forget_log_dir(scope[1])
            else:
                self.pod_meta.observe_log_dir(scope[1], res.containers)
        elif not res.awaiting_volumes:
            self._awaiting.pop(scope[1], None)
        root = self.pods_root if scope[0] == "pod" else self.logs_root
        known = self._known.setdefault(scope, {})
        pending = self._pending.setdefault(scope, {})
        inodes = {(k.dev, k.ino) for k in known.values()}
        # Removals first: the path no longer exists, or names another inode now.
        for relpath, k in sorted(known.items()):
            f = res.files.get(relpath)
            if f is None:
                self._emit(FileRemoved(k.target, "pod_gone" if res.gone else "deleted"))
            elif (k.dev, k.ino) != (f.dev, f.ino):
                self._emit(FileRemoved(k.target, "replaced"))
            else:
                continue
            del known[relpath]
        for relpath in set(pending) - set(res.files):
            del pending[relpath]
            log.debug("%s/%s vanished before its pod was known", root, relpath)
        # Then additions, files known under another name first (renamed: access.log -> access.log.1),
        # so a tailer meets the rotated stream before the new file that took its old name.
        fresh = [(r, f) for r, f in res.files.items() if r not in known]
        fresh.sort(key=lambda rf: ((rf[1].dev, rf[1].ino) not in inodes, rf[0]))
        for relpath, f in fresh:
            if relpath in pending:
                pending[relpath] = (f, pending[relpath][1])
                continue
            pod = self._pod_info(scope, f)
            if pod is None:
                pending[relpath] = (f, time.monotonic())
            else:
                self._add(scope, root, f, pod)
        refused = self._refused.setdefault(scope, set())
        for relpath, reason in sorted(res.refused.items()):
            if relpath not in refused:
                SymlinkRefused(root=root, relpath=relpath, reason=reason).emit()
        refused.intersection_update(res.refused)
        refused.update(res.refused)
        for table in (self._known, self._pending, self._refused):
            if not table.get(scope):
                table.pop(scope, None)

    def _pod_info(self, scope: Scope, f: _Found) -> PodInfo | None:
        if scope[0] == "logs":
            ref = parse_log_dir(scope[1])
            assert ref is not None
            return PodInfo(ref.namespace, ref.pod, ref.uid, self.pod_meta.component(ref), f.place)
        return self.pod_meta.info(f.uid, self.pod_meta.emptydir_container(f.uid, f.place))

    def _add(self, scope: Scope, root: str, f: _Found, pod: PodInfo) -> None:
        target = FileTarget(root=root, relpath=f.relpath, log_type=f.rule.log_type, topic=f.rule.topic,
                            pod=pod, node=self.node, multiline=f.rule.multiline_for(pod.component),
                            access_format=f.rule.access_format)
        self._known.setdefault(scope, {})[f.relpath] = _Known(target, f.dev, f.ino)
        FileDiscovered(path=target.abspath, log_type=target.log_type).emit()
        self._emit(FileAdded(target, f.dev, f.ino))

    def _resolve_pending(self) -> None:
        now = time.monotonic()
        for scope, pending in list(self._pending.items()):
            for relpath, (f, since) in sorted(pending.items()):
                pod = self._pod_info(scope, f)
                if pod is None and now - since >= self.config.metadata_wait:
                    log.info("pod %s is not known after %.1fs: shipping %s with its uid only",
                             f.uid, now - since, relpath)
                    pod = self.pod_meta.partial(f.uid, self.pod_meta.emptydir_container(f.uid, f.place))
                if pod is not None:
                    del pending[relpath]
                    self._add(scope, self.pods_root, f, pod)
            if not pending:
                del self._pending[scope]

    def _emit(self, ev: DiscoveryEvent) -> None:
        self._queue.put_nowait(ev)
