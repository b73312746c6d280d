"""Merging --context blocks (unit)."""

from __future__ import annotations

from logpipe.tools.search.context import Block, block_of, merge_blocks
from logpipe.tools.search.hits import LogDoc


def line(file_id: str, offset: int) -> LogDoc:
    return LogDoc(f"{file_id}@{offset}", "i", {"logpipe": {"file_id": file_id}, "log": {"offset": offset}})


def offsets(b: Block) -> list[tuple[int | None, str | None]]:
    return [(d.offset, d.context) for d in b.docs]


def test_overlapping_blocks_of_one_file_merge_and_hits_stay_hits() -> None:
    a = block_of(line("f", 30), [line("f", 20), line("f", 10)], [line("f", 40), line("f", 50)])
    b = block_of(line("f", 40), [line("f", 30), line("f", 20)], [line("f", 50), line("f", 60)])
    merged = merge_blocks([a, b])
    assert len(merged) == 1
    assert offsets(merged[0]) == [
        (10, "before"), (20, "before"), (30, None), (40, None), (50, "after"), (60, "after"),
    ]


def test_distant_or_other_file_blocks_stay_apart() -> None:
    a = block_of(line("f", 30), [line("f", 20)], [line("f", 40)])
    b = block_of(line("f", 90), [line("f", 80)], [])
    c = block_of(line("g", 35), [], [])
    assert [offsets(x) for x in merge_blocks([a, b, c])] == [
        [(20, "before"), (30, None), (40, "after")],
        [(80, "before"), (90, None)],
        [(35, None)],
    ]
