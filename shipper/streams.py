"""The set of streams being shipped: which file is which stream, through rotation, truncation and deletion.

Discovery reports files (:meth:`StreamSet.add`) and their disappearance (:meth:`StreamSet.remove`);
:meth:`StreamSet.poll` looks at every open file (one ``fstat`` each, a fingerprint check only when
its size changed) and decides, per ``shipper/identity.py``:

- **rename rotation**: a file reported under a new name with the inode of an open stream is that
  stream (path updated, offset kept); the old file stays open and is read to its end.
- **copytruncate**: an open file whose size fell below the read offset, or whose first bytes
  changed, was truncated: its stream is *detached* (kept, with its offset and pending acks) and the
  file's new content becomes a new stream read from 0. The copy (``access.log.1``), found with the
  detached stream's fingerprint in the same directory, is bound to it and read on from the offset.
  A copy that appears while the original still holds the same bytes is a duplicate: it waits.
- **deletion**: an open file whose link count is 0 is read to its end (a partial last line is sent
  as is), and once every byte read has been acknowledged the stream is released and forgotten.
- **restart**: registry entries are matched to files by fingerprint in the same directory, the
  recorded inode preferred; an offset past the end of the file is discarded, not trusted.
- **bounded fds**: at most ``max_open_files`` fds (past it the longest-idle files are closed), and
  optionally a file unchanged for ``close_inactive`` is closed; a closed file is reopened when its
  size changes (checked by path every 2 s, without following symlinks). Idle files stay open by
  default: an append followed by a deletion within that check would be lost on a closed file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from logpipe.core.acks import OrderedAcks
from shipper import telemetry
from shipper.identity import FileView, Fingerprint, IdentityStrategy
from shipper.registry import Entry, Registry
from shipper.safe_open import PathEscape, open_beneath, stat_beneath
from shipper.tailer import Tailer, scope_of, source_meta
from shipper.target import FileTarget


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Lifecycle settings of streams (from ``ShipperConfig.tail``)."""

    max_open_files: int = 1024
    close_inactive: float | None = None
    closed_poll_interval: float = 2.0
    detached_ttl: float = 300.0
    forget_after: float = 600.0
    partial_line_timeout: float = 5.0
    duplicate_wait: float = 5.0


@dataclass(slots=True)
class _Pending:
    target: FileTarget
    first_seen: float
    reason: str  # short | duplicate | open_cap | error


Opener = Callable[[str, str], int]


class StreamSet:
    """All streams: live (open or idle-closed), draining, detached, and checkpoints not yet claimed."""

    def __init__(
        self,
        registry: Registry,
        strategy: IdentityStrategy,
        limits: StreamLimits,
        opener: Opener = open_beneath,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.strategy = strategy
        self.limits = limits
        self._open = opener
        self._clock = clock
        self.tailers: dict[str, Tailer] = {}
        self._by_inode: dict[tuple[int, int], Tailer] = {}
        self._by_path: dict[str, Tailer] = {}
        self._pending: dict[str, _Pending] = {}
        self._restored: dict[str, Entry] = {e.id: e for e in registry.entries()}
        self._started = clock()
        self._last_closed_poll = 0.0

    # --- discovery's callbacks ------------------------------------------------------------

    def add(self, target: FileTarget) -> None:
        """A file to ship was found (or found again): identify it now, or keep it pending."""
        path = target.abspath
        t = self._by_path.get(path)
        if t is not None and t.fd is not None:
            try:
                st = stat_beneath(target.root, target.relpath, report=False)
            except OSError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == (t.dev, t.ino):
                return  # already being read
        self._pending.setdefault(path, _Pending(target, self._clock(), "new"))
        self._identify(path)

    def remove(self, target: FileTarget) -> None:
        """A file disappeared from its path: its open stream goes on (read to the end) until released."""
        path = target.abspath
        self._pending.pop(path, None)
        t = self._by_path.get(path)
        if t is not None and t.fd is not None:
            self._check(t, self._clock())

    # --- identification -----------------------------------------------------------------------

    def _identify(self, path: str) -> None:
        p = self._pending[path]
        target = p.target
        now = self._clock()
        if self.open_files >= self.limits.max_open_files and not self._close_one_idle():
            p.reason = "open_cap"
            return
        try:
            fd = self._open(target.root, target.relpath)
        except PathEscape:
            del self._pending[path]  # refused and reported by safe_open; discovery may offer it again
            return
        except FileNotFoundError:
            del self._pending[path]
            return
        except OSError as exc:
            telemetry.FileOpenFailed(path, str(exc)).emit()
            p.reason = "error"
            return
        keep = False
        try:
            keep = self._bind(fd, p, now)
        finally:
            if not keep:
                os.close(fd)

    def _bind(self, fd: int, p: _Pending, now: float) -> bool:
        """Decide which stream the file open at ``fd`` is; True if a tailer now owns ``fd``."""
        target = p.target
        path = target.abspath
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        view = FileView(fd, st.st_dev, st.st_ino, st.st_size, scope_of(target))

        known = self._by_inode.get(key)
        if known is not None:
            if known.fd is not None:
                self._check(known, now)
            if self._by_inode.get(key) is known and (
                known.fd is not None or self.strategy.matches(view, known.fp, known.dev, known.ino)
            ):
                del self._pending[path]
                self._rebind_path(known, target)
                if known.fd is None:  # idle-closed: take the new fd
                    known.fd = fd
                    known.size, known.mtime_ns = st.st_size, st.st_mtime_ns
                    return True
                return False
            if self._by_inode.get(key) is known:  # idle-closed and the inode now holds other bytes
                self._release(known, "reused")

        fp = self.strategy.fingerprint(view, now - p.first_seen >= self.limits.partial_line_timeout)
        if fp is None:
            p.reason = "short"
            return False

        for t in self._in_scope(view.scope):
            if t.state == "detached" or t.fd is None:
                continue
            if self.strategy.matches(view, t.fp, t.dev, t.ino):
                self._check(t, now)  # the original may have just been truncated: then t is detached
                if t.fd is None or not _same_start(fd, t.fd):
                    continue
                if now - p.first_seen < self.limits.duplicate_wait:
                    p.reason = "duplicate"  # a copy of a stream being read: wait (copytruncate not done)
                    return False
                # Still equal after duplicate_wait: a file of its own that starts the same (or a
                # plain copy, shipped again: a duplicate, never a loss).

        for t in self._in_scope(view.scope):
            if t.state == "detached" and self.strategy.matches(view, t.fp, t.dev, t.ino):
                del self._pending[path]
                t.state = "live"
                self._attach(t, fd, st, target)
                telemetry.FileRotated(path, t.id, "copy", t.offset).emit()
                return True

        entry = self._claim_checkpoint(view, target, now)
        if isinstance(entry, str):
            p.reason = "duplicate"
            return False
        del self._pending[path]
        if entry is not None:
            t = self._new_tailer(entry.id, target, Fingerprint(entry.fp_len, entry.fp_digest), entry.offset)
        else:
            sid = self.strategy.stream_id(view, fp)
            if sid in self.tailers or sid in self._restored:
                sid = f"{sid}~{view.dev:x}.{view.ino:x}"  # equal first bytes in one directory
            t = self._new_tailer(sid, target, fp, 0)
        self._attach(t, fd, st, target)
        return True

    def _claim_checkpoint(self, view: FileView, target: FileTarget, now: float) -> Entry | str | None:
        """The unclaimed registry entry this file continues, None, or "wait" (its original may come)."""
        matching = [
            e
            for e in self._restored.values()
            if e.scope == view.scope and self.strategy.matches(view, Fingerprint(e.fp_len, e.fp_digest), e.dev, e.ino)
        ]
        if not matching:
            return None
        same_inode = [e for e in matching if (e.dev, e.ino) == (view.dev, view.ino)]
        entry = same_inode[0] if same_inode else matching[0]
        if not same_inode and entry.path != target.abspath:
            # Same bytes on another inode: a copy. If the recorded file is still at its path, it
            # is the stream; this copy waits for it to be claimed (then it is a duplicate).
            if now - self._started < self.limits.forget_after and self._original_holds(entry):
                return "wait"
        del self._restored[entry.id]
        if view.size < entry.offset:
            telemetry.CheckpointDiscarded(target.abspath, entry.id, entry.offset, "past_end").emit()
            self.registry.forget(entry.id)
            return None
        return entry

    def _original_holds(self, entry: Entry) -> bool:
        """Whether the file recorded in ``entry`` is still at its path, with its inode and first bytes."""
        try:
            fd = self._open(entry.root, entry.relpath)
        except OSError:
            return False
        try:
            st = os.fstat(fd)
            view = FileView(fd, st.st_dev, st.st_ino, st.st_size, entry.scope)
            return (st.st_dev, st.st_ino) == (entry.dev, entry.ino) and self.strategy.matches(
                view, Fingerprint(entry.fp_len, entry.fp_digest), entry.dev, entry.ino
            )
        finally:
            os.close(fd)

    def _new_tailer(self, sid: str, target: FileTarget, fp: Fingerprint, offset: int) -> Tailer:
        acks = OrderedAcks()
        acks.reset(offset)
        t = Tailer(id=sid, target=target, meta=source_meta(target, sid), fp=fp, offset=offset, acks=acks)
        self.tailers[sid] = t
        return t

    def _attach(self, t: Tailer, fd: int, st: os.stat_result, target: FileTarget) -> None:
        t.fd = fd
        t.dev, t.ino, t.size, t.mtime_ns = st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
        t.last_change = self._clock()
        self._by_inode[(t.dev, t.ino)] = t
        self._rebind_path(t, target)

    def _rebind_path(self, t: Tailer, target: FileTarget) -> None:
        old = t.target.abspath
        if self._by_path.get(old) is t:
            del self._by_path[old]
        if old != target.abspath:
            telemetry.forget_file_lag(old)
            if t.fd is not None:
                telemetry.FileRotated(target.abspath, t.id, "rename", t.offset).emit()
        t.target = target
        t.meta = source_meta(target, t.id)
        self._by_path[target.abspath] = t
        self._track(t)

    def _track(self, t: Tailer) -> None:
        tg = t.target
        self.registry.track(
            Entry(
                id=t.id, scope=t.scope, path=tg.abspath, root=tg.root, relpath=tg.relpath,
                dev=t.dev, ino=t.ino, fp_len=t.fp.length, fp_digest=t.fp.digest, offset=t.acks.committed,
            )
        )

    def _in_scope(self, scope: str) -> Iterator[Tailer]:
        return (t for t in list(self.tailers.values()) if t.scope == scope)

    # --- watching open files --------------------------------------------------------------------

    def poll(self) -> None:
        """Check every open file (truncated? deleted? grown?), retry pending files, release and expire."""
        now = self._clock()
        for t in list(self.tailers.values()):
            if t.reading:
                continue  # a read of it is still running (slow disk): looked at once it ends
            if t.fd is not None:
                self._check(t, now)
            elif t.state == "detached":
                if now - t.detached_at >= self.limits.detached_ttl and t.acks.committed >= t.offset:
                    self._release(t, "truncated")
        if now - self._last_closed_poll >= self.limits.closed_poll_interval:
            self._last_closed_poll = now
            self._poll_closed(now)
        for path in list(self._pending):
            if path in self._pending:
                self._identify(path)
        if self._restored and now - self._started >= self.limits.forget_after:
            for e in list(self._restored.values()):
                telemetry.CheckpointDiscarded(e.path, e.id, e.offset, "expired").emit()
                self.registry.forget(e.id)
            self._restored.clear()
        telemetry.OPEN_FILES.set(self.open_files)
        telemetry.STREAMS.set(len(self.tailers))

    def _check(self, t: Tailer, now: float) -> None:
        assert t.fd is not None
        try:
            st = os.fstat(t.fd)
        except OSError:
            self._release(t, "error")
            return
        size = st.st_size
        view = FileView(t.fd, t.dev, t.ino, size, t.scope)
        # mtime too: truncated and rewritten to the very same size is a change the size hides
        changed = size != t.size or st.st_mtime_ns != t.mtime_ns
        truncated = size < t.offset or (changed and not self.strategy.matches(view, t.fp, t.dev, t.ino))
        if truncated:
            self._detach(t, now)
            return
        if changed:
            t.size = size
            t.mtime_ns = st.st_mtime_ns
            t.last_change = now
            grown = self.strategy.extend(view, t.fp)
            if grown != t.fp:
                t.fp = grown
                self._track(t)
        if st.st_nlink == 0 and t.state == "live":
            t.state = "draining"
        telemetry.set_file_lag(t.target.abspath, t.lag)
        if t.offset >= size and t.partial_since is None:
            if t.state == "draining":
                if t.acks.committed >= t.offset:
                    self._release(t, "deleted")
            elif self.limits.close_inactive is not None and now - t.last_change >= self.limits.close_inactive:
                self._close_idle(t)

    def _detach(self, t: Tailer, now: float) -> None:
        """``t``'s file was truncated: keep the stream for its copy; the file's new bytes are a new stream."""
        telemetry.FileRotated(t.target.abspath, t.id, "truncate", t.offset).emit()
        target = t.target
        t.close()
        self._by_inode.pop((t.dev, t.ino), None)
        if self._by_path.get(target.abspath) is t:
            del self._by_path[target.abspath]
        t.state = "detached"
        t.detached_at = now
        t.partial_since = None
        t.skipping = False
        self._pending[target.abspath] = _Pending(target, now, "truncated")

    def _close_idle(self, t: Tailer) -> None:
        t.close()  # stays in _by_inode: the same inode found again is this stream

    def _close_one_idle(self) -> bool:
        idle = [t for t in self.tailers.values() if t.fd is not None and t.lag == 0 and t.partial_since is None
                and t.state == "live"]
        if not idle:
            return False
        self._close_idle(min(idle, key=lambda t: t.last_change))
        return True

    def _poll_closed(self, now: float) -> None:
        for t in list(self.tailers.values()):
            if t.fd is not None or t.state != "live":
                continue
            tg = t.target
            try:
                st = stat_beneath(tg.root, tg.relpath, report=False)
            except OSError:
                st = None
            if st is None or (st.st_dev, st.st_ino) != (t.dev, t.ino):
                if now - t.last_change >= self.limits.forget_after:
                    self._release(t, "gone")
                continue
            if st.st_size != t.size:
                self._pending.setdefault(tg.abspath, _Pending(tg, now, "changed"))

    def _release(self, t: Tailer, reason: str) -> None:
        t.close()
        self.tailers.pop(t.id, None)
        if self._by_inode.get((t.dev, t.ino)) is t:
            del self._by_inode[(t.dev, t.ino)]
        if self._by_path.get(t.target.abspath) is t:
            del self._by_path[t.target.abspath]
        self.registry.forget(t.id)
        telemetry.FileReleased(t.target.abspath, t.id, t.offset, reason).emit()

    # --- for the read loop ------------------------------------------------------------------------

    def readable(self) -> list[Tailer]:
        """Open streams with bytes past their read position, or a partial line waiting."""
        return [t for t in self.tailers.values() if t.fd is not None and (t.size > t.offset or t.partial_since)]

    @property
    def open_files(self) -> int:
        return sum(1 for t in self.tailers.values() if t.fd is not None)

    @property
    def pending_paths(self) -> dict[str, str]:
        """Files not yet bound to a stream, and why (for tests and /debug)."""
        return {k: v.reason for k, v in self._pending.items()}

    def close_all(self) -> None:
        for t in self.tailers.values():
            t.close()

    def stream_for(self, path: str) -> Tailer | None:
        return self._by_path.get(path)

    def entry_of(self, t: Tailer) -> Entry | None:
        e = self.registry.get(t.id)
        return None if e is None else replace(e)


def _same_start(fd_a: int, fd_b: int, n: int = 4096) -> bool:
    """Whether two files hold the same bytes over their common length (up to ``n``)."""
    a, b = os.pread(fd_a, n, 0), os.pread(fd_b, n, 0)
    m = min(len(a), len(b))
    return a[:m] == b[:m]
