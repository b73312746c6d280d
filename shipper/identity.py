"""File identity as named strategies: which *stream* a file on disk is, across rotations and restarts.

A stream is the sequence of bytes one writer appended to one log, wherever it now lives: renamed
(``access.log`` -> ``access.log.1``), copied (copytruncate's ``access.log.1``) or reopened after a
restart. Ids read ``<strategy>::<hex>`` and the strategy is chosen by name in the config.

``fingerprint`` (the default) identifies a stream by a hash of its first bytes *and* its scope (the
root and directory it lives in), with device/inode kept only as a hint:

- rename rotation: same inode, same first bytes -> same stream, offset kept;
- copytruncate: the copy has the stream's first bytes -> same stream, continued at its offset; the
  truncated original has new first bytes (or a size below the offset) -> a new stream read from 0;
- inode reuse: a new file on a recycled inode has different first bytes -> never a stale offset;
- equal first lines in two pods: different scopes -> different streams (Filebeat's fingerprint and
  Vector's checksum hash content only, and confuse them).

The fingerprint covers the first ``bytes`` (1 KiB) bytes. A shorter file is identified once its
first line is complete (or after the partial-line timeout); the fingerprint then covers the bytes
present, and grows (``extend``) while the stream is read, up to ``bytes``. Matching always hashes
the first ``length`` bytes the stored fingerprint covers, so a grown fingerprint stays comparable.

``device_inode`` is the naive strategy (Fluent Bit's and Vector's ``device_and_inode``): it keeps
its offset through rename rotation only; it exists so tests can show what the default fixes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Literal, Protocol

StrategyName = Literal["fingerprint", "device_inode"]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A hash of a file's first ``length`` bytes."""

    length: int
    digest: str  # hex

    @classmethod
    def of(cls, prefix: bytes) -> Fingerprint:
        return cls(len(prefix), hashlib.blake2b(prefix, digest_size=16).hexdigest())


NO_FINGERPRINT = Fingerprint(0, "")


@dataclass(frozen=True, slots=True)
class FileView:
    """What is known of an open file when deciding its identity."""

    fd: int
    dev: int
    ino: int
    size: int
    scope: str  # root + directory of the file: streams never match across scopes


class IdentityStrategy(Protocol):
    """Decides whether an open file can be identified yet, its id, and whether it is a known stream."""

    @property
    def name(self) -> str: ...

    def fingerprint(self, view: FileView, waited: bool) -> Fingerprint | None:
        """The file's fingerprint, or None while it cannot be told apart yet (too short)."""
        ...

    def stream_id(self, view: FileView, fp: Fingerprint) -> str:
        """The id of a new stream starting with this file."""
        ...

    def matches(self, view: FileView, fp: Fingerprint, dev: int, ino: int) -> bool:
        """Whether the file holds the stream known by ``fp`` (and last seen at ``dev``/``ino``)."""
        ...

    def extend(self, view: FileView, fp: Fingerprint) -> Fingerprint:
        """A fingerprint covering more of the file, when the file has grown (same stream)."""
        ...


def read_prefix(fd: int, n: int) -> bytes:
    """The first ``n`` bytes of the file (fewer if it is shorter)."""
    return os.pread(fd, n, 0) if n > 0 else b""


@dataclass(frozen=True)
class FingerprintStrategy:
    """Identity = hash of the first ``nbytes`` bytes, scoped by directory; inode only a hint."""

    nbytes: int = 1024
    name: str = "fingerprint"

    def fingerprint(self, view: FileView, waited: bool) -> Fingerprint | None:
        prefix = read_prefix(view.fd, self.nbytes)
        if not prefix:
            return None
        if len(prefix) < self.nbytes and b"\n" not in prefix and not waited:
            return None  # a lone partial first line: wait for its newline (or the partial timeout)
        return Fingerprint.of(prefix)

    def stream_id(self, view: FileView, fp: Fingerprint) -> str:
        h = hashlib.blake2b(f"{view.scope}\0{fp.length}\0{fp.digest}".encode(), digest_size=16)
        return f"{self.name}::{h.hexdigest()}"

    def matches(self, view: FileView, fp: Fingerprint, dev: int, ino: int) -> bool:
        if fp.length == 0 or view.size < fp.length:
            return False
        return Fingerprint.of(read_prefix(view.fd, fp.length)) == fp

    def extend(self, view: FileView, fp: Fingerprint) -> Fingerprint:
        if fp.length >= self.nbytes or view.size <= fp.length:
            return fp
        return Fingerprint.of(read_prefix(view.fd, min(self.nbytes, view.size)))


@dataclass(frozen=True)
class DeviceInodeStrategy:
    """Identity = (device, inode): survives renames, fails copytruncate and inode reuse."""

    name: str = "device_inode"

    def fingerprint(self, view: FileView, waited: bool) -> Fingerprint | None:
        return Fingerprint(0, f"{view.dev}:{view.ino}")

    def stream_id(self, view: FileView, fp: Fingerprint) -> str:
        return f"{self.name}::{view.dev:x}:{view.ino:x}"

    def matches(self, view: FileView, fp: Fingerprint, dev: int, ino: int) -> bool:
        return (view.dev, view.ino) == (dev, ino)

    def extend(self, view: FileView, fp: Fingerprint) -> Fingerprint:
        return fp


def strategy(name: StrategyName, fingerprint_bytes: int = 1024) -> IdentityStrategy:
    """The identity strategy called ``name``."""
    if name == "fingerprint":
        return FingerprintStrategy(nbytes=fingerprint_bytes)
    if name == "device_inode":
        return DeviceInodeStrategy()
    raise ValueError(f"unknown identity strategy {name!r}: use fingerprint or device_inode")
