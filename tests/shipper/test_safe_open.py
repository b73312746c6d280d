"""The security boundary: nothing outside a root, and nothing through a symlink, is ever opened.

Every test runs twice: with openat2(2) (when the kernel and seccomp allow it) and with the fallback
walk of O_NOFOLLOW directory fds.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from shipper import safe_open
from shipper.safe_open import (
    PathEscape,
    open_beneath,
    open_dir_beneath,
    scandir_beneath,
    stat_beneath,
    walk_beneath,
)

SECRET = b"root:$6$secret-hash:19000:0:99999:7:::\n"


@pytest.fixture(params=["openat2", "walk"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    was = safe_open.openat2_available()
    if request.param == "openat2":
        safe_open.set_openat2(True)
        if not safe_open.openat2_available():
            pytest.skip("openat2 is not available on this kernel")
    else:
        safe_open.set_openat2(False)
    yield request.param
    safe_open.set_openat2(was)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/pod/logs/access.log`` with a secret file outside the root, next to it."""
    root = tmp_path / "root"
    (root / "pod" / "logs").mkdir(parents=True)
    (root / "pod" / "logs" / "access.log").write_bytes(b'{"status":200}\n')
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "shadow").write_bytes(SECRET)
    (tmp_path / "outside" / "access.log").write_bytes(SECRET)
    return root


def refusals(reason: str) -> float:
    return REGISTRY.get_sample_value("logpipe_shipper_symlink_refusals_total", {"reason": reason}) or 0.0


def read_all(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def test_a_regular_file_beneath_the_root_is_opened_read_only(mode: str, tree: Path) -> None:
    fd = open_beneath(str(tree), "pod/logs/access.log")
    try:
        flags = os.get_blocking(fd), os.get_inheritable(fd)
        assert flags == (True, False)  # blocking (O_NONBLOCK cleared), close-on-exec
        with pytest.raises(OSError):
            os.write(fd, b"x")
    finally:
        os.close(fd)
    assert read_all(open_beneath(str(tree), "./pod//logs/access.log")) == b'{"status":200}\n'


def test_access_log_symlinked_to_etc_shadow_is_refused_warned_and_counted(
    mode: str, tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.symlink("/etc/shadow", tree / "pod" / "logs" / "evil.log")
    os.symlink(tree.parent / "outside" / "shadow", tree / "pod" / "logs" / "evil2.log")
    before = refusals("symlink")
    for name in ("evil.log", "evil2.log"):
        with pytest.raises(PathEscape) as exc:
            open_beneath(str(tree), f"pod/logs/{name}")
        assert exc.value.reason == "symlink"
    assert refusals("symlink") == before + 2
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == ["SymlinkRefused"] * 2


def test_a_symlinked_directory_in_the_middle_is_refused(mode: str, tree: Path) -> None:
    os.symlink(tree.parent / "outside", tree / "pod" / "link")
    with pytest.raises(PathEscape) as exc:
        open_beneath(str(tree), "pod/link/access.log")
    assert exc.value.reason == "symlink"
    with pytest.raises(PathEscape):
        stat_beneath(str(tree), "pod/link/access.log")
    with pytest.raises(PathEscape):
        scandir_beneath(str(tree), "pod/link")


def test_a_symlink_to_a_file_inside_the_root_is_refused_too(mode: str, tree: Path) -> None:
    os.symlink("access.log", tree / "pod" / "logs" / "alias.log")
    os.symlink("logs", tree / "pod" / "logs2")
    for rel in ("pod/logs/alias.log", "pod/logs2/access.log"):
        with pytest.raises(PathEscape) as exc:
            open_beneath(str(tree), rel)
        assert exc.value.reason == "symlink"


@pytest.mark.parametrize("rel", ["../outside/shadow", "pod/../../outside/shadow", "pod/logs/../access.log",
                                 "/etc/shadow", "pod/logs/../../..", "pod/logs/access.log\x00x"])
def test_dot_dot_and_absolute_paths_are_refused_before_any_lookup(mode: str, tree: Path, rel: str) -> None:
    before = refusals("escape")
    with pytest.raises(PathEscape) as exc:
        open_beneath(str(tree), rel)
    assert exc.value.reason == "escape"
    assert refusals("escape") == before + 1


def test_a_fifo_planted_as_access_log_is_refused_without_blocking(mode: str, tree: Path) -> None:
    os.mkfifo(tree / "pod" / "logs" / "fifo-access.log")
    outcome: list[BaseException | int] = []

    def attempt() -> None:
        try:
            outcome.append(open_beneath(str(tree), "pod/logs/fifo-access.log"))
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(5)  # a blocking open of a FIFO with no writer would hang here
    assert not t.is_alive(), "opening a FIFO blocked"
    assert isinstance(outcome[0], PathEscape) and outcome[0].reason == "not_regular"


def test_sockets_directories_and_devices_are_not_regular_files(mode: str, tree: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tree / "pod" / "logs" / "sock.log"))
    try:
        for rel in ("pod/logs/sock.log", "pod/logs", ""):
            with pytest.raises(PathEscape) as exc:
                open_beneath(str(tree), rel)
            assert exc.value.reason == "not_regular"
    finally:
        sock.close()
    try:
        os.mknod(tree / "pod" / "logs" / "null.log", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        return  # not root: a device cannot be planted here (the check above covers the path)
    with pytest.raises(PathEscape) as exc:
        open_beneath(str(tree), "pod/logs/null.log")
    assert exc.value.reason == "not_regular"


def test_hard_links_are_opened_unless_refused(mode: str, tree: Path) -> None:
    """A hard link cannot be told from its original by path (documented): it is read as the file it
    is. ``refuse_hardlinks`` refuses any file with more than one link."""
    link = tree / "pod" / "logs" / "hard.log"
    os.link(tree.parent / "outside" / "access.log", link)
    assert read_all(open_beneath(str(tree), "pod/logs/hard.log")) == SECRET
    with pytest.raises(PathEscape) as exc:
        open_beneath(str(tree), "pod/logs/hard.log", refuse_hardlinks=True)
    assert exc.value.reason == "hardlink"
    assert read_all(open_beneath(str(tree), "pod/logs/access.log", refuse_hardlinks=True))


def test_missing_files_raise_file_not_found_not_path_escape(mode: str, tree: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_beneath(str(tree), "pod/logs/nope.log")
    with pytest.raises(FileNotFoundError):
        open_beneath(str(tree), "nope/logs/access.log")


def test_report_false_refuses_silently(mode: str, tree: Path) -> None:
    os.symlink("/etc/shadow", tree / "pod" / "logs" / "evil.log")
    before = refusals("symlink")
    with pytest.raises(PathEscape):
        open_beneath(str(tree), "pod/logs/evil.log", report=False)
    assert refusals("symlink") == before


def test_the_root_itself_may_be_a_symlink(mode: str, tree: Path) -> None:
    """The root comes from the operator's config (e.g. /var/log/pods -> /data/pods): trusted."""
    os.symlink(tree, tree.parent / "root-link")
    assert read_all(open_beneath(str(tree.parent / "root-link"), "pod/logs/access.log"))


def test_stat_beneath_is_lstat_and_refuses_a_final_symlink(mode: str, tree: Path) -> None:
    st = stat_beneath(str(tree), "pod/logs/access.log")
    assert st.st_ino == os.stat(tree / "pod" / "logs" / "access.log").st_ino
    assert stat.S_ISDIR(stat_beneath(str(tree), "pod").st_mode)
    os.symlink("/etc/shadow", tree / "pod" / "logs" / "evil.log")
    with pytest.raises(PathEscape):
        stat_beneath(str(tree), "pod/logs/evil.log")


def test_walk_lists_symlinks_as_symlinks_and_never_descends_into_them(mode: str, tree: Path) -> None:
    os.symlink(tree.parent / "outside", tree / "pod" / "out")
    os.symlink("/etc/shadow", tree / "pod" / "logs" / "evil.log")
    (tree / "pod" / "logs" / "deep" / "er").mkdir(parents=True)
    (tree / "pod" / "logs" / "deep" / "er" / "x.log").write_text("x\n")
    entries = {e.relpath: e.kind for e in walk_beneath(str(tree), "pod")}
    assert entries == {
        "pod/out": "symlink",
        "pod/logs": "dir",
        "pod/logs/access.log": "file",
        "pod/logs/evil.log": "symlink",
        "pod/logs/deep": "dir",
        "pod/logs/deep/er": "dir",
        "pod/logs/deep/er/x.log": "file",
    }
    shallow = {e.relpath for e in walk_beneath(str(tree), "pod", max_depth=2)}
    assert "pod/logs/deep/er" in shallow and "pod/logs/deep/er/x.log" not in shallow
    files = [e for e in walk_beneath(str(tree)) if e.kind == "file"]
    assert all(e.stat is not None and stat.S_ISREG(e.stat.st_mode) for e in files)


def test_open_dir_beneath_gives_a_directory_fd_usable_with_scandir(mode: str, tree: Path) -> None:
    fd = open_dir_beneath(str(tree), "pod/logs")
    try:
        with os.scandir(fd) as it:
            assert [e.name for e in it] == ["access.log"]
    finally:
        os.close(fd)
    assert [e.name for e in scandir_beneath(str(tree), "pod/logs")] == ["access.log"]


def test_a_file_swapped_between_the_check_and_the_open_is_refused(
    mode: str, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race a pod could try: a regular file while checked, something else when opened."""
    real = safe_open._open_from
    logs = tree / "pod" / "logs"
    (logs / "other.log").write_bytes(b"another inode\n")

    def swapping(root: str, relpath: str, rootfd: int, parts: list[str], flags: int) -> int:
        if not flags & os.O_PATH:
            os.replace(logs / "other.log", logs / "access.log")
        return real(root, relpath, rootfd, parts, flags)

    monkeypatch.setattr(safe_open, "_open_from", swapping)
    with pytest.raises(PathEscape) as exc:
        open_beneath(str(tree), "pod/logs/access.log")
    assert exc.value.reason == "not_regular"
