"""Open, stat and list files beneath a root without ever following a symlink or ``..``.

A pod controls its EmptyDir and can plant ``access.log -> /etc/shadow``, a symlinked directory,
a FIFO or a device node. Everything the shipper reads under a root goes through this module:

- :func:`open_beneath` returns a read-only fd for a *regular file* beneath ``root``. It uses
  ``openat2(2)`` with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` where the kernel has it (5.6+, and
  not blocked by seccomp), else walks the path one component at a time from a directory fd with
  ``O_NOFOLLOW``. Either way the file is first opened ``O_PATH`` (which never opens a device or
  blocks on a FIFO) and checked to be a regular file, then opened for reading and compared by
  (device, inode) with what was checked, so a swap between the two opens is caught.
- :func:`stat_beneath` is ``lstat`` with the same guarantees for every component.
- :func:`scandir_beneath` and :func:`walk_beneath` list directories from directory fds and never
  descend into a symlink.

Refusals raise :class:`PathEscape` (an ``OSError``) with a ``reason`` of ``symlink``, ``escape``,
``not_regular`` or ``hardlink``, and emit the ``SymlinkRefused`` telemetry event (a warning log line
and ``logpipe_shipper_symlink_refusals{reason}``) unless the caller passes ``report=False``.

The root itself is trusted (it comes from the operator's configuration) and may be a symlink.

Hard links cannot be told from the original by path: a hard link to a file outside the root looks
like any regular file. Creating one needs the target on the same filesystem *and* visible in the
pod's mount namespace, which a pod without hostPath mounts does not have; ``refuse_hardlinks=True``
refuses every file with ``st_nlink > 1`` for operators who want that belt as well.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

# openat2(2) resolve flags, from <linux/openat2.h>.
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08

# openat2 came with the unified syscall table (Linux 5.6): the same number on every 64-bit arch we
# ship for; alpha (547) and others are left to the fallback walk.
_OPENAT2_NR = {"x86_64": 437, "amd64": 437, "aarch64": 437, "arm64": 437, "riscv64": 437,
               "ppc64le": 437, "s390x": 437, "i686": 437, "armv7l": 437}

_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NOFOLLOW | os.O_NONBLOCK
_PATH_FLAGS = os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW
_DIR_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY | os.O_NOFOLLOW

Reason = Literal["symlink", "escape", "not_regular", "hardlink"]
Kind = Literal["file", "dir", "symlink", "other"]


class PathEscape(OSError):
    """A path was refused: a symlink, a ``..``/absolute escape, not a regular file, or a hard link."""

    def __init__(self, root: str, relpath: str, reason: Reason, detail: str = "") -> None:
        super().__init__(errno.ELOOP if reason == "symlink" else errno.EPERM,
                         f"refused ({reason}{': ' + detail if detail else ''})", f"{root}/{relpath}")
        self.root = root
        self.relpath = relpath
        self.reason: Reason = reason


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _Openat2:
    """ctypes binding of openat2(2); ``available`` turns False for good on ENOSYS/EPERM (seccomp)."""

    def __init__(self) -> None:
        self.nr = _OPENAT2_NR.get(platform.machine().lower())
        self.available = self.nr is not None
        self._syscall = None
        if self.available:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fn = libc.syscall
                fn.restype = ctypes.c_long
                fn.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p,
                               ctypes.POINTER(_OpenHow), ctypes.c_size_t]
                self._syscall = fn
            except (OSError, AttributeError):
                self.available = False
        self.available = self.available and self.probe()

    def probe(self) -> bool:
        """Whether the kernel (and seccomp) let openat2 through: one call on ``/``."""
        if self._syscall is None:
            return False
        try:
            fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            os.close(self(fd, ".", _PATH_FLAGS & ~os.O_NOFOLLOW))
            return True
        except (OSError, NotImplementedError):
            return False
        finally:
            os.close(fd)

    def __call__(self, dirfd: int, path: str, flags: int) -> int:
        """The new fd, or raises OSError; raises ``NotImplementedError`` if the kernel lacks it."""
        assert self._syscall is not None and self.nr is not None
        how = _OpenHow(flags, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
        for _ in range(8):  # EAGAIN: a concurrent rename raced a ".." check; the kernel asks to retry
            fd = self._syscall(self.nr, dirfd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
            if fd >= 0:
                return int(fd)
            err = ctypes.get_errno()
            if err == errno.EAGAIN:
                continue
            if err in (errno.ENOSYS, errno.EPERM, errno.E2BIG):
                # ENOSYS: kernel < 5.6; EPERM: an old seccomp profile denying unknown syscalls.
                self.available = False
                raise NotImplementedError("openat2")
            raise OSError(err, os.strerror(err), path)
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


_openat2 = _Openat2()


def openat2_available() -> bool:
    """Whether :func:`open_beneath` currently uses openat2 (else the O_NOFOLLOW walk)."""
    return _openat2.available


def set_openat2(enabled: bool) -> None:
    """Force the fallback walk (``False``) or re-enable openat2 if the platform has it (tests)."""
    _openat2.available = enabled and _openat2.probe()


def _components(root: str, relpath: str) -> list[str]:
    if "\x00" in relpath:
        raise PathEscape(root, relpath, "escape", "NUL byte in path")
    if relpath.startswith("/"):
        raise PathEscape(root, relpath, "escape", "absolute path")
    parts = [p for p in relpath.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathEscape(root, relpath, "escape", "'..' component")
    return parts


def _report(exc: PathEscape, report: bool) -> PathEscape:
    if report:
        from shipper.telemetry import SymlinkRefused  # late import: telemetry pulls in prometheus

        SymlinkRefused(root=exc.root, relpath=exc.relpath, reason=exc.reason).emit()
    return exc


def _open_root(root: str) -> int:
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _walk_open(root: str, relpath: str, rootfd: int, parts: list[str], last_flags: int) -> int:
    """Fallback: open ``parts`` from ``rootfd`` one component at a time, never following a symlink."""
    cur = rootfd
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            flags = last_flags if last else os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                nxt = os.open(name, flags, dir_fd=cur)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    try:
                        st = os.stat(name, dir_fd=cur, follow_symlinks=False)
                    except OSError:
                        raise exc from None
                    if stat.S_ISLNK(st.st_mode):
                        raise PathEscape(root, relpath, "symlink", "/".join(parts[: i + 1])) from None
                raise
            if cur != rootfd:
                os.close(cur)
            cur = nxt
        return cur
    except BaseException:
        if cur != rootfd:
            os.close(cur)
        raise


def _is_final_symlink(rootfd: int, parts: list[str]) -> bool:
    try:
        fd = _openat2(rootfd, "/".join(parts), _PATH_FLAGS)
    except (OSError, NotImplementedError):
        return False
    try:
        return stat.S_ISLNK(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _open_from(root: str, relpath: str, rootfd: int, parts: list[str], flags: int) -> int:
    """Open ``parts`` beneath ``rootfd`` with ``flags``: openat2 if possible, else the walk."""
    if not parts:
        return os.open(".", flags & ~os.O_NOFOLLOW, dir_fd=rootfd)
    if _openat2.available:
        try:
            return _openat2(rootfd, "/".join(parts), flags)
        except NotImplementedError:
            pass
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathEscape(root, relpath, "symlink") from None
            if exc.errno == errno.EXDEV:
                raise PathEscape(root, relpath, "escape") from None
            if exc.errno == errno.ENOTDIR and flags & os.O_DIRECTORY and _is_final_symlink(rootfd, parts):
                raise PathEscape(root, relpath, "symlink") from None  # O_NOFOLLOW|O_DIRECTORY on a link
            raise
    return _walk_open(root, relpath, rootfd, parts, flags)


def _open_checked(root: str, relpath: str, rootfd: int, parts: list[str], refuse_hardlinks: bool) -> int:
    pfd = _open_from(root, relpath, rootfd, parts, _PATH_FLAGS)
    try:
        st = os.fstat(pfd)
    finally:
        os.close(pfd)
    if stat.S_ISLNK(st.st_mode):
        raise PathEscape(root, relpath, "symlink")
    if not stat.S_ISREG(st.st_mode):
        raise PathEscape(root, relpath, "not_regular", stat.filemode(st.st_mode))
    if refuse_hardlinks and st.st_nlink > 1:
        raise PathEscape(root, relpath, "hardlink", f"{st.st_nlink} links")
    fd = _open_from(root, relpath, rootfd, parts, _READ_FLAGS)
    try:
        st2 = os.fstat(fd)
        if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(st2.st_mode):
            # Replaced between the check and the open: refuse rather than trust the newcomer.
            raise PathEscape(root, relpath, "not_regular", "replaced while opening")
        # O_NONBLOCK only guarded the open against FIFOs; a regular file's reads never block on it.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_beneath(root: str, relpath: str, *, refuse_hardlinks: bool = False, report: bool = True) -> int:
    """A read-only, close-on-exec fd for the regular file ``relpath`` beneath ``root``.

    Raises :class:`PathEscape` if any component is a symlink, the path is absolute or has ``..``,
    the file is not a regular file (FIFO, device, socket, directory), or, with
    ``refuse_hardlinks``, it has more than one link; other failures raise the usual ``OSError``
    (``FileNotFoundError`` ...). The caller owns the returned fd.
    """
    try:
        parts = _components(root, relpath)
        if not parts:
            raise PathEscape(root, relpath, "not_regular", "the root itself")
        rootfd = _open_root(root)
        try:
            return _open_checked(root, relpath, rootfd, parts, refuse_hardlinks)
        finally:
            os.close(rootfd)
    except PathEscape as exc:
        raise _report(exc, report) from None


def stat_beneath(root: str, relpath: str, *, report: bool = True) -> os.stat_result:
    """``lstat`` of ``relpath`` beneath ``root``; a symlink in any component (the last included)
    raises :class:`PathEscape`. Directories, FIFOs etc. are returned as they are."""
    try:
        parts = _components(root, relpath)
        rootfd = _open_root(root)
        try:
            fd = _open_from(root, relpath, rootfd, parts, _PATH_FLAGS)
        finally:
            os.close(rootfd)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if stat.S_ISLNK(st.st_mode):
            raise PathEscape(root, relpath, "symlink")
        return st
    except PathEscape as exc:
        raise _report(exc, report) from None


def open_dir_beneath(root: str, relpath: str = "", *, report: bool = True) -> int:
    """A read-only directory fd for ``relpath`` beneath ``root`` (``""`` is the root), no symlinks."""
    try:
        parts = _components(root, relpath)
        rootfd = _open_root(root)
        if not parts:
            return rootfd
        try:
            return _open_from(root, relpath, rootfd, parts, _DIR_FLAGS)
        finally:
            os.close(rootfd)
    except PathEscape as exc:
        raise _report(exc, report) from None


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry as seen without following it."""

    relpath: str  # relative to the root given to the lister
    name: str
    kind: Kind
    stat: os.stat_result | None  # lstat, for (wanted) files only; None for the rest


def _kind(e: os.DirEntry[str]) -> Kind:
    if e.is_symlink():
        return "symlink"
    if e.is_dir(follow_symlinks=False):
        return "dir"
    if e.is_file(follow_symlinks=False):
        return "file"
    return "other"


def _entries(dirfd: int, prefix: str, want: Callable[[str], bool] | None = None,
             ) -> list[tuple[Entry, os.DirEntry[str]]]:
    out: list[tuple[Entry, os.DirEntry[str]]] = []
    with os.scandir(dirfd) as it:
        for e in it:
            kind = _kind(e)
            st = None
            if kind == "file" and (want is None or want(e.name)):
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
            out.append((Entry(f"{prefix}{e.name}", e.name, kind, st), e))
    return out


def scandir_beneath(root: str, relpath: str = "") -> list[Entry]:
    """The entries of directory ``relpath`` beneath ``root``, symlinks reported as ``symlink``."""
    fd = open_dir_beneath(root, relpath)
    try:
        prefix = "/".join(_components(root, relpath))
        return [e for e, _ in _entries(fd, f"{prefix}/" if prefix else "")]
    finally:
        os.close(fd)


def walk_beneath(root: str, relpath: str = "", *, max_depth: int = 8,
                 want: Callable[[str], bool] | None = None) -> Iterator[Entry]:
    """Every entry under directory ``relpath`` beneath ``root``, depth first, never through a symlink.

    Directories are yielded and descended into up to ``max_depth`` levels below ``relpath``;
    files, symlinks and other entries are yielded. Subdirectories that vanish or cannot be read
    while walking are skipped; failing to open ``relpath`` itself raises (``FileNotFoundError``
    tells a missing tree from an unreadable one). Files get their ``stat`` only if ``want(name)``
    (default: all), so a tree of unrelated files costs no stat call each.
    """
    top = open_dir_beneath(root, relpath)
    prefix = "/".join(_components(root, relpath))
    yield from _walk(top, f"{prefix}/" if prefix else "", max_depth, want)


def _walk(dirfd: int, prefix: str, depth_left: int, want: Callable[[str], bool] | None) -> Iterator[Entry]:
    try:
        entries = _entries(dirfd, prefix, want)
    except OSError:
        os.close(dirfd)
        return
    subdirs: list[Entry] = []
    for entry, _ in entries:
        yield entry
        if entry.kind == "dir" and depth_left > 0:
            subdirs.append(entry)
    try:
        for d in subdirs:
            try:
                sub = os.open(d.name, _DIR_FLAGS, dir_fd=dirfd)
            except OSError:
                continue  # vanished, replaced by a symlink (ELOOP), or unreadable
            yield from _walk(sub, f"{d.relpath}/", depth_left - 1, want)
    finally:
        os.close(dirfd)
