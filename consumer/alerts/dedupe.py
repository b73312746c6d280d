"""Documents already evaluated, remembered by source identity, so a redelivery is not counted twice.

Kafka delivery is at least once: after a rebalance that hands this process the same partitions
again, records after the last commit are read a second time. Their documents carry the line's
identity (``logpipe.file_id`` + ``log.offset``, the same identity as the Elasticsearch ``_id``);
the engine skips one it evaluated recently, so a window does not count a line twice. Bounded: the
``capacity`` most recent identities (a redelivery is at most a commit interval's worth of records).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any


def identity(doc: Mapping[str, Any]) -> tuple[str, int] | None:
    """``(file_id, offset)`` of a document, or None when it carries no source identity."""
    lp = doc.get("logpipe")
    lg = doc.get("log")
    if not isinstance(lp, dict) or not isinstance(lg, dict):
        return None
    file_id = lp.get("file_id")
    offset = lg.get("offset")
    if not file_id or not isinstance(offset, int):
        return None
    return file_id, offset


class RecentIds:
    """The last ``capacity`` identities seen; :meth:`seen` records one and says if it was known."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[tuple[str, int], None] = OrderedDict()

    def seen(self, key: tuple[str, int]) -> bool:
        """True if ``key`` was recorded recently; records it otherwise."""
        if key in self._ids:
            return True
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False
