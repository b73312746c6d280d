"""inotify watches for discovery (watchdog), bounded by a budget of watched directories.

Watches: ``pods_root`` (not recursive: pod directories appearing and going), ``logs_root``
(recursive: it is small and kubelet-made) and, per pod, its ``volumes/kubernetes.io~empty-dir``
directory (recursive). Only create/delete/move events are subscribed, so appends to log files cost
no wake-up at all. Every changed path is handed to ``on_path`` on the asyncio loop through
``loop.call_soon_threadsafe``; the thread never touches discovery's state.

Watches are a kernel resource shared by every process of the user (``fs.inotify.max_user_watches``).
A pod's watch costs one per directory below its EmptyDir; when the sum would pass ``budget``
(default: half the limit) or the kernel says ENOSPC, that pod is not watched and a warning says its
files are found by the periodic rescan instead. watchdog itself never follows symlinks
(``follow_symlink=False``: ``IN_DONT_FOLLOW`` and no descent into symlinked directories).

All methods except the event callback run on discovery's single worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

log = logging.getLogger("logpipe.shipper.discovery")


def _quiet_watchdog() -> None:
    # watchdog warns when a new directory's watch is registered twice (its IN_CREATE raced the
    # recursive walk); the second registration is the same watch, so the warning is only noise.
    warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)


def default_watch_budget() -> int:
    """Half of ``fs.inotify.max_user_watches`` (the kubelet and others need watches too)."""
    try:
        with open("/proc/sys/fs/inotify/max_user_watches", encoding="ascii") as f:
            return max(int(f.read().strip()) // 2, 64)
    except (OSError, ValueError):
        return 4096


class PathWatcher:
    """The watchdog observer and the watches discovery asked for."""

    def __init__(self, pods_root: str, logs_root: str, on_path: Callable[[str], None], *,
                 budget: int | None = None, rescan_interval: float = 10.0) -> None:
        self.pods_root = pods_root
        self.logs_root = logs_root
        self.on_path = on_path
        self.budget = budget if budget is not None else default_watch_budget()
        self.rescan_interval = rescan_interval
        self.observer: Any = None
        self.active = False
        self._handler: Any = None
        self._roots: dict[str, Any] = {}
        self._pods: dict[str, Any] = {}  # uid -> ObservedWatch
        self._dirs: dict[str, int] = {}  # uid -> directories under its watch (last count)
        self._degraded: set[str] = set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the observer and watch the roots; on failure stay inactive (rescans only)."""
        _quiet_watchdog()
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers.inotify import InotifyObserver
        except ImportError as exc:  # not Linux
            log.warning("inotify is not available (%s): discovery rescans every %.0fs", exc, self.rescan_interval)
            return
        on_path = self.on_path

        class _Bridge(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                for p in (event.src_path, getattr(event, "dest_path", "")):
                    if p:
                        with contextlib.suppress(RuntimeError):  # the loop is closing
                            loop.call_soon_threadsafe(on_path, os.fsdecode(p))

        try:
            self.observer = InotifyObserver()
            self.observer.start()
        except OSError as exc:  # inotify_init: fs.inotify.max_user_instances reached
            log.warning("cannot start inotify (%s): discovery rescans every %.0fs", exc, self.rescan_interval)
            self.observer = None
            return
        self._handler = _Bridge()
        self.active = True
        self.ensure_roots()

    def stop(self) -> None:
        """Stop the observer and its threads."""
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
        self.active = False

    @staticmethod
    def _event_filter() -> list[Any]:
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileMovedEvent,
        )

        return [FileCreatedEvent, DirCreatedEvent, FileDeletedEvent, DirDeletedEvent, FileMovedEvent,
                DirMovedEvent]

    def _schedule(self, path: str, recursive: bool) -> Any:
        # Scheduled on a running observer, the root watch is added synchronously: ENOSPC raises here.
        return self.observer.schedule(self._handler, path, recursive=recursive, event_filter=self._event_filter(),
                                      follow_symlink=False)

    def _alive(self, watch: Any) -> bool:
        # An emitter stops by itself when its directory is deleted (IN_DELETE_SELF).
        return any(e.watch == watch and e.is_alive() for e in self.observer.emitters)

    def _unschedule(self, watch: Any) -> None:
        with contextlib.suppress(KeyError, ValueError, RuntimeError):
            self.observer.unschedule(watch)

    def ensure_roots(self) -> None:
        """Watch both roots (again, if one was missing or was recreated)."""
        if not self.active:
            return
        for root, recursive in ((self.pods_root, False), (self.logs_root, True)):
            w = self._roots.get(root)
            if w is not None and self._alive(w):
                continue
            if w is not None:
                self._unschedule(w)
                del self._roots[root]
            if os.path.isdir(root):
                try:
                    self._roots[root] = self._schedule(root, recursive)
                except OSError as exc:
                    log.warning("cannot watch %s (%s): rescans only", root, exc)

    def watch_pod(self, uid: str, path: str) -> None:
        """Watch the pod's EmptyDir directory if it exists and the budget allows; drop dead watches."""
        if not self.active:
            return
        w = self._pods.get(uid)
        if w is not None:
            if self._alive(w) and os.path.isdir(path):
                return
            self._unschedule(w)
            del self._pods[uid]
            self._dirs.pop(uid, None)
        if uid in self._degraded or not os.path.isdir(path):
            return
        if sum(self._dirs.values()) + 1 > self.budget:
            self._degrade(uid, f"watch budget of {self.budget} directories used")
            return
        try:
            self._pods[uid] = self._schedule(path, True)
            self._dirs[uid] = 1
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                self._degrade(uid, str(exc))
            elif exc.errno != errno.ENOENT:
                log.warning("cannot watch %s: %s", path, exc)

    def count_dirs(self, uid: str, dirs: int) -> None:
        """The last walk of the pod found ``dirs`` directories: unwatch it if that breaks the budget."""
        if uid not in self._pods:
            return
        self._dirs[uid] = dirs
        if sum(self._dirs.values()) > self.budget:
            self._unschedule(self._pods.pop(uid))
            self._dirs.pop(uid, None)
            self._degrade(uid, f"watch budget of {self.budget} directories used")

    def _degrade(self, uid: str, why: str) -> None:
        if uid not in self._degraded:
            self._degraded.add(uid)
            log.warning("not watching pod %s (%s): its files are found by the rescan every %.0fs",
                        uid, why, self.rescan_interval)

    def forget(self, uid: str) -> None:
        """The pod is gone: drop its watch and its budget share."""
        w = self._pods.pop(uid, None)
        if w is not None:
            self._unschedule(w)
        self._dirs.pop(uid, None)
        self._degraded.discard(uid)

    def pod_uids(self) -> set[str]:
        """Pods this watcher holds state for (rescanned in full scans, so gone ones are forgotten)."""
        return set(self._pods) | self._degraded

    @property
    def watched_pods(self) -> int:
        return len(self._pods)

    @property
    def degraded_pods(self) -> int:
        return len(self._degraded)
