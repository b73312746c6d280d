"""Pid records: a process we started is found by its session and stopped with everything it started."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from logpipe.dev.services.processes import PidRecord, parse_stat, read_stat, spawn, terminate


def test_stat_parsing_survives_spaces_and_parentheses_in_the_command() -> None:
    fields = " ".join(["S", "1", "77", "77"] + ["0"] * 15 + ["123456"] + ["0"] * 30)
    st = parse_stat(77, f"77 (java (x) y) {fields}")
    assert (st.state, st.session, st.start_ticks) == ("S", 77, 123456)


def test_a_record_survives_a_save_and_load(tmp_path: Path) -> None:
    record = PidRecord(pid=123, start_ticks=456, command=["java", "-version"])
    record.save(tmp_path / "run" / "x.pid")
    assert PidRecord.load(tmp_path / "run" / "x.pid") == record
    (tmp_path / "broken.pid").write_text("{not json")
    assert PidRecord.load(tmp_path / "broken.pid") is None
    assert PidRecord.load(tmp_path / "missing.pid") is None


def test_a_reused_pid_is_not_ours(tmp_path: Path) -> None:
    record = spawn([sys.executable, "-c", "import time; time.sleep(60)"], env={}, cwd=tmp_path, log=tmp_path / "o")
    try:
        st = read_stat(record.pid)
        assert st is not None and st.start_ticks == record.start_ticks and record.alive()
        # Same pid, later start time: what a recycled pid looks like from an old pid file.
        stale = PidRecord(pid=record.pid, start_ticks=record.start_ticks + 10_000, command=[])
        assert not stale.alive()
        terminate(stale, timeout=1)  # must not touch the process that now has the pid
        assert record.alive()
    finally:
        terminate(record, timeout=5)


def test_terminate_stops_the_leader_and_its_children(tmp_path: Path) -> None:
    # Like Elasticsearch's launcher, the leader starts a child; both must go.
    child = "import time; time.sleep(60)"
    script = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(60)"
    record = spawn([sys.executable, "-c", script], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "out.log")
    deadline = time.monotonic() + 10
    while len(record.members()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = record.members()
    assert record.pid in members and len(members) == 2
    assert record.alive()
    terminate(record, timeout=5)
    assert record.members() == []
    assert not record.alive()
