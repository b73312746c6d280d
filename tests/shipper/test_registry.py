"""The registry file: versioned, atomic, read back; corrupt files set aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipper.registry import Entry, Registry, RegistryError


def entry(i: int, offset: int = 0) -> Entry:
    return Entry(id=f"fingerprint::{i:032x}", scope="/r//d", path=f"/r/d/{i}.log", root="/r", relpath=f"d/{i}.log",
                 dev=1, ino=100 + i, fp_len=10, fp_digest="ab" * 16, offset=offset)


def test_written_and_read_back(tmp_path: Path) -> None:
    reg = Registry.load(tmp_path / "reg.json")
    assert reg.loaded and len(reg) == 0
    reg.track(entry(1))
    reg.commit(entry(1).id, 42)
    reg.write()
    doc = json.loads((tmp_path / "reg.json").read_text())
    assert doc["version"] == 1 and doc["files"][0]["offset"] == 42
    again = Registry.load(tmp_path / "reg.json")
    e = again.get(entry(1).id)
    assert e is not None and e.offset == 42 and e.ino == 101
    assert not list(tmp_path.glob(".reg.json.tmp-*"))


def test_track_never_moves_a_committed_offset(tmp_path: Path) -> None:
    reg = Registry.load(tmp_path / "reg.json")
    reg.track(entry(1))
    reg.commit(entry(1).id, 42)
    reg.track(entry(1, offset=0))  # a rename: identity changes, the checkpoint stays
    e = reg.get(entry(1).id)
    assert e is not None and e.offset == 42


def test_corrupt_file_is_set_aside_and_not_trusted(tmp_path: Path) -> None:
    (tmp_path / "reg.json").write_bytes(b'{"version": 1, "files": [{"id": "x"')  # torn
    reg = Registry.load(tmp_path / "reg.json")
    assert len(reg) == 0 and reg.loaded
    assert list(tmp_path.glob("reg.json.corrupt-*"))


def test_unknown_version_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    (tmp_path / "reg.json").write_text('{"version": 7, "files": []}')
    with pytest.raises(RegistryError, match="version 7"):
        Registry.load(tmp_path / "reg.json")


def test_commit_has_one_caller_the_ack_path() -> None:
    root = Path(__file__).resolve().parents[2] / "shipper"
    callers = [p.relative_to(root).as_posix() for p in root.rglob("*.py") if ".commit(" in p.read_text()]
    assert callers == ["agent.py"]
    assert (root / "agent.py").read_text().count("registry.commit(") == 1
