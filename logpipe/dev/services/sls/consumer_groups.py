"""Consumer groups of the local SLS: members, shard assignment by heartbeat, and checkpoints.

The service's protocol, as the SDK's ``ConsumerWorker`` (and logpipe's SLS source) drive it:

* a member heartbeats every few seconds with the shards it holds and gets back the shards it should
  hold; a member silent for longer than the group's ``timeout`` is dropped and its shards go to
  the others on their next heartbeat;
* shards are spread evenly: a member over its fair share is asked to give the extra ones up (they
  leave its answer) and they are handed to another member only once the holder stops listing them,
  so two members never read one shard at once;
* a checkpoint is the cursor of the next LogGroup to read; with ``forceSuccess=false`` only the
  shard's holder may move it;
* readonly shards (after a split or merge) are handed out until their checkpoint reaches their end;
  in an ``order`` group a child shard is handed out only after all its parents are finished, so
  the logs of one hash key are read in the order they were written.

Pure bookkeeping with an injected clock: the HTTP layer (``server.py``) calls it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from logpipe.dev.services.sls.store import Logstore, Shard, decode_cursor


@dataclass(slots=True)
class Checkpoint:
    cursor: str
    consumer: str
    updated: int


@dataclass(slots=True)
class ConsumerGroup:
    name: str
    timeout: int
    in_order: bool
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    members: dict[str, float] = field(default_factory=dict)
    """member name -> time of its last heartbeat"""
    owner: dict[int, str] = field(default_factory=dict)
    releasing: dict[int, str] = field(default_factory=dict)
    """shards a member was asked to give up and still lists: not handed to anyone else yet"""

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "timeout": self.timeout, "order": self.in_order}


class ConsumerGroups:
    """Every consumer group of every logstore; ``clock`` gives seconds (``time.time``)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._groups: dict[tuple[str, str], dict[str, ConsumerGroup]] = {}

    def of(self, project: str, logstore: str) -> dict[str, ConsumerGroup]:
        return self._groups.setdefault((project, logstore), {})

    def get(self, project: str, logstore: str, name: str) -> ConsumerGroup | None:
        return self.of(project, logstore).get(name)

    # -- shards that may be handed out ------------------------------------------------------------

    def _finished(self, group: ConsumerGroup, shard: Shard) -> bool:
        if shard.writable:
            return False
        cp = group.checkpoints.get(shard.id)
        position = decode_cursor(cp.cursor) if cp is not None and cp.cursor else None
        return position is not None and position >= len(shard.groups)

    def assignable(self, group: ConsumerGroup, store: Logstore) -> list[int]:
        out = []
        for shard in store.shards.values():
            if self._finished(group, shard):
                continue
            if group.in_order and any(
                p in store.shards and not self._finished(group, store.shards[p]) for p in shard.parents
            ):
                continue  # its parents' logs come first
            out.append(shard.id)
        return sorted(out)

    # -- heartbeat --------------------------------------------------------------------------------

    def heartbeat(self, group: ConsumerGroup, store: Logstore, member: str, held: list[int]) -> list[int]:
        """Record ``member``'s heartbeat (it holds ``held``); returns the shards it should hold."""
        now = self.clock()
        group.members[member] = now
        for name, seen in list(group.members.items()):
            if now - seen > group.timeout:
                del group.members[name]  # silent too long: its shards are free
        live = set(group.members)
        shards = set(self.assignable(group, store))
        group.owner = {s: m for s, m in group.owner.items() if m in live and s in shards}
        # a shard given up is free once its holder no longer lists it (or is gone)
        group.releasing = {
            s: m
            for s, m in group.releasing.items()
            if m in live and s in shards and not (m == member and s not in held)
        }
        fair = math.ceil(len(shards) / len(live)) if live else 0
        mine = sorted(s for s, m in group.owner.items() if m == member)
        for extra in mine[fair:]:  # over its share: it gives these up before anyone else reads them
            del group.owner[extra]
            group.releasing[extra] = member
        mine = mine[:fair]
        taken = set(group.owner) | set(group.releasing)
        for shard in sorted(shards - taken):
            if len(mine) >= fair:
                break
            group.owner[shard] = member
            mine.append(shard)
        return sorted(mine)

    # -- checkpoints ------------------------------------------------------------------------------

    def update_checkpoint(self, group: ConsumerGroup, shard: int, cursor: str, member: str, force: bool) -> bool:
        """Store a checkpoint; False when ``force`` is off and ``member`` does not hold ``shard``."""
        if not force and group.owner.get(shard) != member:
            return False
        group.checkpoints[shard] = Checkpoint(cursor, member, int(self.clock()))
        return True

    def checkpoints(self, group: ConsumerGroup, store: Logstore, shard: int | None) -> list[dict[str, object]]:
        ids = [shard] if shard is not None else sorted(store.shards)
        out: list[dict[str, object]] = []
        for sid in ids:
            cp = group.checkpoints.get(sid)
            out.append(
                {
                    "shard": sid,
                    "checkpoint": cp.cursor if cp else "",
                    "updateTime": cp.updated if cp else 0,
                    "consumer": cp.consumer if cp else "",
                }
            )
        return out
