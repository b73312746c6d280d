"""Upgrades: a registry written by the release before this one (``fixtures/registry-v1.json``, written
by ``logpipe ship`` on a real tree: access, app, trace and a CRI stdout file) is read by this one with
every stream's identity and committed offset, and written back in the same version."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from shipper.registry import VERSION, Registry, RegistryError

FIXTURE = Path(__file__).parent / "fixtures" / "registry-v1.json"


def test_a_version_1_registry_is_read_with_every_offset(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    shutil.copy(FIXTURE, path)
    old = orjson.loads(FIXTURE.read_bytes())
    reg = Registry.load(path)
    assert reg.loaded and len(reg) == len(old["files"]) == 4
    for f in old["files"]:
        e = reg.get(f["id"])
        assert e is not None
        assert (e.offset, e.dev, e.ino, e.fp_len, e.fp_digest, e.path) == (
            f["offset"], f["dev"], f["ino"], f["fp_len"], f["fp_digest"], f["path"])
    assert not list(tmp_path.glob("*.corrupt-*"))
    reg.mark_dirty()
    reg.write()
    again = orjson.loads(path.read_bytes())
    assert again["version"] == VERSION == 1
    key = lambda f: f["id"]  # noqa: E731
    assert sorted(again["files"], key=key) == sorted(old["files"], key=key)


def test_a_registry_from_a_newer_release_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    doc = orjson.loads(FIXTURE.read_bytes()) | {"version": VERSION + 1}
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(RegistryError, match="not supported"):
        Registry.load(path)
    assert orjson.loads(path.read_bytes())["version"] == VERSION + 1
