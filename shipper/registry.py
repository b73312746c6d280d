"""The registry: each stream's committed offset and identity, kept in one versioned JSON file.

The file reads ``{"version": 1, "files": [{...}, ...]}`` and is written atomically (a temp file in
the same directory, fsync, ``os.replace``, fsync of the directory: Vector's ``checkpointer.rs``), so a
crash at any instant leaves either the previous or the new checkpoint, never a torn one.

Offsets change in exactly one place: :meth:`Registry.commit`, whose only caller is the pipeline's
ack path (``shipper/agent.py`` ``on_delivered``): "we only checkpoint what was delivered" is visible
there. Identity updates (a stream found, renamed, its fingerprint grown) go through :meth:`track`,
which never moves an offset forward.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from shipper import telemetry

VERSION = 1


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream's checkpoint: resume reading it at ``offset`` if ``fp`` still matches."""

    id: str
    scope: str  # root + directory: a stream is only ever matched within its scope
    path: str  # where it was last seen (for humans and for the "is the original still there" check)
    root: str
    relpath: str
    dev: int
    ino: int
    fp_len: int
    fp_digest: str
    offset: int  # committed: every byte before it was acknowledged by the sink
    updated: float = field(default=0.0)  # epoch seconds of the last change

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Entry:
        return cls(
            id=str(d["id"]),
            scope=str(d["scope"]),
            path=str(d["path"]),
            root=str(d.get("root", "")),
            relpath=str(d.get("relpath", "")),
            dev=int(d["dev"]),
            ino=int(d["ino"]),
            fp_len=int(d["fp_len"]),
            fp_digest=str(d["fp_digest"]),
            offset=int(d["offset"]),
            updated=float(d.get("updated", 0.0)),
        )


class RegistryError(Exception):
    """The registry file exists but cannot be used (unknown version)."""


class Registry:
    """The checkpoints of all streams, in memory, and their file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._entries: dict[str, Entry] = {}
        self._dirty = False
        self.loaded = False

    # --- reading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Registry:
        """Read the registry file (absent: empty). A torn or corrupt file is set aside, not trusted."""
        reg = cls(path)
        reg.remove_stale_temps()
        try:
            raw = reg.path.read_bytes()
        except FileNotFoundError:
            reg.loaded = True
            return reg
        try:
            doc = orjson.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            version = doc.get("version")
            if version != VERSION:
                raise RegistryError(
                    f"{reg.path}: registry version {version!r} is not supported (this shipper reads {VERSION})"
                    " — fix: point --registry at a new file or delete it to start over"
                )
            for item in doc.get("files", []):
                e = Entry.from_json(item)
                reg._entries[e.id] = e
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            # Only our own atomic writes produce this file; anything unreadable is set aside for a human.
            aside = reg.path.with_name(f"{reg.path.name}.corrupt-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(reg.path, aside)
            telemetry.RegistryWritten(str(reg.path), 0, error=f"unreadable, moved to {aside}: {exc}").emit()
            reg._entries.clear()
        reg.loaded = True
        return reg

    def remove_stale_temps(self) -> None:
        """Delete temp files a killed writer left (``.registry.json.tmp-<pid>``): on a small volume
        they would hold the space the next write needs."""
        with contextlib.suppress(OSError):
            for p in self.path.parent.glob(f".{self.path.name}.tmp-*"):
                with contextlib.suppress(OSError):
                    p.unlink()

    def get(self, stream_id: str) -> Entry | None:
        return self._entries.get(stream_id)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    # --- changing ----------------------------------------------------------------------------

    def track(self, entry: Entry) -> None:
        """Record a stream's identity (new, renamed, fingerprint grown); keeps the committed offset."""
        old = self._entries.get(entry.id)
        offset = entry.offset if old is None else old.offset
        self._entries[entry.id] = replace(entry, offset=offset, updated=time.time())
        self._dirty = True

    def commit(self, stream_id: str, offset: int) -> None:
        """Move a stream's checkpoint to ``offset``. Called only from the ack path."""
        old = self._entries.get(stream_id)
        if old is None or offset == old.offset:
            return
        self._entries[stream_id] = replace(old, offset=offset, updated=time.time())
        self._dirty = True

    def forget(self, stream_id: str) -> None:
        """Drop a stream (its file was read to the end and deleted, or it expired)."""
        if self._entries.pop(stream_id, None) is not None:
            self._dirty = True

    # --- writing -----------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return self._dirty

    def snapshot(self) -> bytes:
        """The file's content now (cheap; the slow part, :func:`write_atomically`, can run in a thread)."""
        self._dirty = False
        files = [e.to_json() for e in self._entries.values()]
        return orjson.dumps({"version": VERSION, "files": files})

    def write(self) -> None:
        """Write the registry file now (synchronously)."""
        data = self.snapshot()
        try:
            write_atomically(self.path, data)
        except OSError as exc:
            self._dirty = True
            telemetry.RegistryWritten(str(self.path), len(self._entries), error=str(exc)).emit()
            raise
        telemetry.RegistryWritten(str(self.path), len(self._entries)).emit()

    def mark_dirty(self) -> None:
        """A write failed: write again next time."""
        self._dirty = True


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename over, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # a half-written temp on a full disk would keep it full
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
