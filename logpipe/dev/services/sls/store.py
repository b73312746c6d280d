"""Logstores held in memory: one shard each, LogGroups in arrival order, cursors as positions."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Logstore:
    """One logstore (one shard): serialized LogGroups and the second each one arrived."""

    name: str
    created: int = field(default_factory=lambda: int(time.time()))
    groups: list[bytes] = field(default_factory=list)
    received: list[int] = field(default_factory=list)


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

    def __init__(self, *, auto_create: bool = True) -> None:
        self.auto_create = auto_create
        self.projects: dict[str, dict[str, Logstore]] = {}

    def create(self, project: str, logstore: str) -> Logstore:
        stores = self.projects.setdefault(project, {})
        return stores.setdefault(logstore, Logstore(logstore))

    def get(self, project: str, logstore: str) -> Logstore | None:
        found = self.projects.get(project, {}).get(logstore)
        if found is None and self.auto_create:
            return self.create(project, logstore)
        return found

    def project_exists(self, project: str) -> bool:
        return self.auto_create or project in self.projects

    def cursor_at(self, store: Logstore, where: str) -> int | None:
        """Position for ``from=begin|end|<unix seconds>`` (first group received at or after it)."""
        if where == "begin":
            return 0
        if where == "end":
            return len(store.groups)
        if not where.isdigit():
            return None
        ts = int(where)
        for i, received in enumerate(store.received):
            if received >= ts:
                return i
        return len(store.groups)
