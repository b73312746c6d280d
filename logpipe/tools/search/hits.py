"""One indexed log document as search returns it, with typed access to the fields we show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from logpipe.tools.search import docfields as F


def get_path(source: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` in a nested document; also finds keys written flat (``"a.b": x``)."""
    if dotted in source:
        return source[dotted]
    node: Any = source
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping):
            return None
        if part in node:
            node = node[part]
            continue
        rest = ".".join(parts[i:])
        return node.get(rest) if rest in node else None
    return node


def parse_es_time(value: Any) -> datetime | None:
    """An ``@timestamp`` as indexed (ISO 8601 text, or epoch milliseconds) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        text = value.replace("Z", "+00:00")
        # Python < 3.12 accepts at most 6 fraction digits; date_nanos values carry 9.
        if "." in text:
            head, _, tail = text.partition(".")
            digits = "".join(c for c in tail if c.isdigit())
            zone = tail[len(digits) :]
            text = f"{head}.{digits[:6]}{zone}"
        try:
            t = datetime.fromisoformat(text)
        except ValueError:
            return None
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True, slots=True)
class LogDoc:
    """A hit: its ``_id``, its index and its ``_source``, plus where it stands in a --context block."""

    id: str
    index: str
    source: Mapping[str, Any]
    sort: tuple[Any, ...] = field(default=())
    context: str | None = None  # None for a hit, "before"/"after" for a --context line

    @classmethod
    def from_hit(cls, hit: Mapping[str, Any]) -> LogDoc:
        """Build from one element of ``hits.hits``."""
        return cls(
            id=str(hit.get("_id", "")),
            index=str(hit.get("_index", "")),
            source=hit.get("_source") or {},
            sort=tuple(hit.get("sort") or ()),
        )

    def get(self, dotted: str) -> Any:
        return get_path(self.source, dotted)

    def text(self, dotted: str) -> str:
        v = self.get(dotted)
        return "" if v is None else str(v)

    @property
    def timestamp(self) -> datetime | None:
        return parse_es_time(self.get(F.TIMESTAMP))

    @property
    def ingested_ms(self) -> int | None:
        """``event.ingested`` as epoch milliseconds."""
        t = parse_es_time(self.get(F.INGESTED))
        return None if t is None else int(t.timestamp() * 1000)

    @property
    def file_id(self) -> str:
        return self.text(F.FILE_ID)

    @property
    def offset(self) -> int | None:
        v = self.get(F.OFFSET)
        try:
            return int(v) if v is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def log_type(self) -> str:
        t = self.text(F.TYPE)
        if t:
            return t
        # logpipe-<type>-YYYY.MM.DD
        parts = self.index.rsplit("-", 2)
        return parts[-2] if len(parts) == 3 else ""

    def order_key(self) -> tuple[float, str, int, str]:
        """Time order with a tiebreaker: timestamp, then the file stream and the offset in it, then id."""
        t = self.timestamp
        return (
            t.timestamp() if t is not None else 0.0,
            self.file_id,
            self.offset if self.offset is not None else -1,
            self.id,
        )

    def with_context(self, context: str | None) -> LogDoc:
        return LogDoc(self.id, self.index, self.source, self.sort, context)
