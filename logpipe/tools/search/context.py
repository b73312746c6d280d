"""``--context N``: the N events before and after each hit from the same file stream, like ``grep -C`` (a
stack trace the shipper joined is one event, one document).

Neighbours are found by ``logpipe.file_id`` + ``log.offset`` (a rotated file keeps its id, so context
crosses a rotation). Blocks of the same file that overlap are merged; the others are printed with a
``--`` between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from logpipe.tools.search import docfields as F
from logpipe.tools.search.client import SearchClient
from logpipe.tools.search.hits import LogDoc
from logpipe.tools.search.query_builder import context_queries, index_pattern


@dataclass
class Block:
    """Consecutive lines of one file: hits and their context, in offset order."""

    file_id: str
    docs: list[LogDoc]

    @property
    def first_offset(self) -> int:
        return min((d.offset for d in self.docs if d.offset is not None), default=-1)

    @property
    def last_offset(self) -> int:
        return max((d.offset for d in self.docs if d.offset is not None), default=-1)


def block_of(hit: LogDoc, before: Sequence[LogDoc], after: Sequence[LogDoc]) -> Block:
    """One hit with its neighbours (``before`` nearest first, as searched; ``after`` nearest first)."""
    docs = [d.with_context("before") for d in reversed(before)]
    docs.append(hit.with_context(None))
    docs += [d.with_context("after") for d in after]
    return Block(hit.file_id, docs)


def _merge_into(block: Block, other: Block) -> None:
    by_offset: dict[int | None, LogDoc] = {d.offset: d for d in block.docs}
    for d in other.docs:
        held = by_offset.get(d.offset)
        if held is None or (held.context is not None and d.context is None):
            by_offset[d.offset] = d  # a line that is a hit in either block stays a hit
    block.docs = sorted(by_offset.values(), key=lambda d: d.offset if d.offset is not None else -1)


def merge_blocks(blocks: Sequence[Block]) -> list[Block]:
    """Merge each block into the previous one when both are from the same file and overlap."""
    out: list[Block] = []
    for b in blocks:
        prev = out[-1] if out else None
        if (
            prev is not None
            and b.file_id
            and prev.file_id == b.file_id
            and b.first_offset <= prev.last_offset
            and b.last_offset >= prev.first_offset
        ):
            _merge_into(prev, b)
        else:
            out.append(Block(b.file_id, list(b.docs)))
    return out


async def with_context(client: SearchClient, prefix: str, hits: Sequence[LogDoc], lines: int) -> list[Block]:
    """Blocks for ``hits`` (in their order) with ``lines`` lines of context each, in one round trip."""
    located = [h for h in hits if h.file_id and h.offset is not None]
    bodies = []
    for h in located:
        before, after = context_queries(h.file_id, h.offset or 0, lines)
        bodies += [before, after]
    types = sorted({h.log_type for h in located} & set(F.LOG_TYPES))
    results = await client.msearch(index_pattern(prefix, types), bodies) if bodies else []
    found: dict[str, tuple[list[LogDoc], list[LogDoc]]] = {}
    for i, h in enumerate(located):
        found[h.id] = (results[2 * i], results[2 * i + 1])
    blocks = [block_of(h, *found.get(h.id, ([], []))) for h in hits]
    return merge_blocks(blocks)
