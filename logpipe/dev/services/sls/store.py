"""Logstores held in memory: shards with hash ranges, LogGroups in arrival order, cursors as positions.

A logstore starts with ``shard_count`` readwrite shards splitting the 128-bit hash space evenly, as
the service does. A split makes the shard readonly and adds two children that share its range; a
merge makes two adjacent shards readonly and adds one child over both ranges. A readonly shard keeps
its data and can still be read; writes go to readwrite shards only. Cursors are positions within one
shard (the shard is named by the URL), encoded as the service's opaque base64 text.
"""

from __future__ import annotations

import base64
import itertools
import time
from dataclasses import dataclass, field

HASH_SPACE = 1 << 128


def _key(value: int) -> str:
    return f"{value:032x}"


@dataclass(slots=True)
class Shard:
    """One shard: its hash range ``[begin, end)``, status and the serialized LogGroups it holds."""

    id: int
    begin: int
    end: int
    status: str = "readwrite"
    created: int = field(default_factory=lambda: int(time.time()))
    parents: tuple[int, ...] = ()
    """The shards this one was split or merged from (their data precedes this shard's)."""
    groups: list[bytes] = field(default_factory=list)
    received: list[int] = field(default_factory=list)

    @property
    def writable(self) -> bool:
        return self.status == "readwrite"

    def describe(self) -> dict[str, object]:
        """The ListShards entry."""
        return {
            "shardID": self.id,
            "status": self.status,
            "inclusiveBeginKey": _key(self.begin),
            "exclusiveEndKey": _key(self.end) if self.end < HASH_SPACE else "f" * 32,
            "createTime": self.created,
        }


@dataclass(slots=True)
class Logstore:
    """One logstore: its shards by id and the round-robin position of ``/shards/lb`` writes."""

    name: str
    created: int = field(default_factory=lambda: int(time.time()))
    shards: dict[int, Shard] = field(default_factory=dict)
    _rr: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def with_shards(cls, name: str, count: int) -> Logstore:
        store = cls(name)
        step = HASH_SPACE // count
        for i in range(count):
            end = HASH_SPACE if i == count - 1 else (i + 1) * step
            store.shards[i] = Shard(i, i * step, end, created=store.created)
        return store

    def writable(self) -> list[Shard]:
        return [s for s in self.shards.values() if s.writable]

    def pick(self, hash_key: str | None) -> Shard:
        """The shard a PutLogs goes to: by hash key (``/shards/route``) or round robin (``lb``)."""
        live = self.writable()
        if hash_key:
            value = int(hash_key[:32].ljust(32, "0"), 16)
            for shard in live:
                if shard.begin <= value < shard.end:
                    return shard
        return live[next(self._rr) % len(live)]

    def append(self, shard: Shard, group: bytes, now: int) -> None:
        shard.groups.append(group)
        shard.received.append(now)

    def _new_id(self) -> int:
        return max(self.shards) + 1

    def split(self, shard_id: int, split_key: str) -> list[Shard]:
        """Split a readwrite shard at ``split_key``; returns [parent, left, right] as ListShards does."""
        parent = self.shards.get(shard_id)
        if parent is None or not parent.writable:
            raise ValueError(f"shard {shard_id} is not a readwrite shard")
        at = int(split_key[:32].ljust(32, "0"), 16)
        if not parent.begin < at < parent.end:
            raise ValueError(f"split key {split_key} is not inside shard {shard_id}'s range")
        parent.status = "readonly"
        left = Shard(self._new_id(), parent.begin, at, parents=(parent.id,))
        self.shards[left.id] = left
        right = Shard(self._new_id(), at, parent.end, parents=(parent.id,))
        self.shards[right.id] = right
        return [parent, left, right]

    def merge(self, shard_id: int) -> list[Shard]:
        """Merge a readwrite shard with its right neighbour; returns [child, left, right]."""
        left = self.shards.get(shard_id)
        if left is None or not left.writable:
            raise ValueError(f"shard {shard_id} is not a readwrite shard")
        right = next((s for s in self.writable() if s.begin == left.end), None)
        if right is None:
            raise ValueError(f"shard {shard_id} has no readwrite right neighbour")
        left.status = right.status = "readonly"
        child = Shard(self._new_id(), left.begin, right.end, parents=(left.id, right.id))
        self.shards[child.id] = child
        return [child, left, right]


def encode_cursor(position: int) -> str:
    """SLS cursors are opaque base64 text; the SDK reads them as base64 of a decimal number."""
    return base64.b64encode(str(position).encode()).decode()


def decode_cursor(cursor: str) -> int | None:
    try:
        value = int(base64.b64decode(cursor, validate=True).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    return value if value >= 0 else None


class Store:
    """Projects -> logstores; ``auto_create`` makes unknown ones on first write (and on read)."""

    def __init__(self, *, auto_create: bool = True, shard_count: int = 1) -> None:
        self.auto_create = auto_create
        self.shard_count = shard_count
        self.projects: dict[str, dict[str, Logstore]] = {}

    def create(self, project: str, logstore: str, shard_count: int | None = None) -> Logstore:
        stores = self.projects.setdefault(project, {})
        if logstore not in stores:
            stores[logstore] = Logstore.with_shards(logstore, shard_count or self.shard_count)
        return stores[logstore]

    def get(self, project: str, logstore: str) -> Logstore | None:
        found = self.projects.get(project, {}).get(logstore)
        if found is None and self.auto_create:
            return self.create(project, logstore)
        return found

    def project_exists(self, project: str) -> bool:
        return self.auto_create or project in self.projects

    @staticmethod
    def cursor_at(shard: Shard, where: str) -> int | None:
        """Position for ``from=begin|end|<unix seconds>`` (first group received at or after it)."""
        if where == "begin":
            return 0
        if where == "end":
            return len(shard.groups)
        if not where.isdigit():
            return None
        ts = int(where)
        for i, received in enumerate(shard.received):
            if received >= ts:
                return i
        return len(shard.groups)
