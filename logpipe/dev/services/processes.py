"""Processes we start, recorded in pid files, and stopped by exactly that record (never by name).

Each service runs in its own session (``setsid``), so the pid file's pid is also the session id; a
launcher's children (Elasticsearch's CLI starts the server JVM) belong to it too. A record also holds
the leader's start time, so a pid reused by an unrelated process is never mistaken for ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    """The few fields of /proc/<pid>/stat we need."""

    pid: int
    state: str
    session: int
    start_ticks: int


def read_stat(pid: int, proc: Path = _PROC) -> ProcStat | None:
    """Parse /proc/<pid>/stat, or None when the process does not exist."""
    try:
        raw = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    return parse_stat(pid, raw)


def parse_stat(pid: int, raw: str) -> ProcStat:
    """Parse the text of /proc/<pid>/stat (the command may hold spaces and parentheses)."""
    rest = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(pid=pid, state=rest[0], session=int(rest[3]), start_ticks=int(rest[19]))


@dataclass(frozen=True)
class PidRecord:
    """A process we started: its pid (= session id) and the start time that proves it is ours."""

    pid: int
    start_ticks: int
    command: list[str]

    def save(self, path: Path) -> None:
        """Write the record atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> PidRecord | None:
        """Read a record, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads(path.read_text())
            pid, ticks, command = int(data["pid"]), int(data["start_ticks"]), list(data["command"])
            return cls(pid=pid, start_ticks=ticks, command=command)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def members(self, proc: Path = _PROC) -> list[int]:
        """Live processes of this record's session (the leader and whatever it started)."""
        pids: list[int] = []
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            st = read_stat(int(entry.name), proc)
            if st is None or st.state in ("Z", "X") or st.session != self.pid:
                continue
            if st.start_ticks >= self.start_ticks:
                pids.append(st.pid)
        return pids

    def alive(self, proc: Path = _PROC) -> bool:
        """True while any process of this record's session runs."""
        leader = read_stat(self.pid, proc)
        if leader is not None and leader.state not in ("Z", "X") and leader.start_ticks == self.start_ticks:
            return True
        return bool(self.members(proc))


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    user: str | None = None,
) -> PidRecord:
    """Start ``command`` detached in its own session, output appended to ``log``; return its record."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,  # survives our exit, and its session id names all its processes
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    st = read_stat(proc.pid)
    return PidRecord(pid=proc.pid, start_ticks=st.start_ticks if st else 0, command=list(command))


def terminate(record: PidRecord, timeout: float = 30.0) -> None:
    """SIGTERM every process of the record's session, SIGKILL what is left after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        members = record.members()
        if not members:
            return
        for pid in members:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(record.pid)
            if not record.members():
                return
            time.sleep(0.2)


def _reap(pid: int) -> None:
    """Collect the leader's exit status when it is our child, so it does not linger as a zombie.

    Only this pid: waiting on any child would steal exit statuses other code is waiting for.
    """
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
