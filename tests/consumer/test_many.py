"""One record, several documents (``parsers.Many``): the parts share the record's offset.

The record is committed only when the last part is indexed or dead-lettered; an unparseable part
is dead-lettered alone with its reason while the others are indexed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from consumer.config import ConsumerConfig
from consumer.service import ConsumerService
from consumer.work import Work
from logpipe.core.envelope import document_id
from parsers import Many, Parsed, Unparseable

TP = ("logpipe-trace", 0)


@dataclass
class Rec:
    offset: int
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class ManyParser:
    """Every record becomes the parts it was told to."""

    def __init__(self, results: dict[bytes, Any]) -> None:
        self.results = results

    def parse(self, value: bytes, headers: Any) -> Any:
        return self.results[value]


def span(name: str, **extra: Any) -> Parsed:
    doc = {"@timestamp": "2026-11-27T02:00:00.000Z", "name": name}
    doc |= {"logpipe": {"file_id": "fp::t"}, "log": {"offset": 7}}
    return Parsed(doc, "trace", **extra)


async def service(results: dict[bytes, Any]) -> tuple[ConsumerService, list[Work]]:
    cfg = ConsumerConfig.model_validate({"kafka": {"topics": [TP[0]]}, "native_encoder": False})
    svc = ConsumerService(cfg, tune_gc=False)
    letters: list[Work] = []

    async def send(work: Work) -> None:
        letters.append(work)

    svc.dlq.send = send  # type: ignore[method-assign]
    svc.offsets.assign(TP)
    svc._parsers[TP] = ManyParser(results)  # type: ignore[assignment]
    return svc, letters


async def close(svc: ConsumerService) -> None:
    await svc.es.close()
    await svc.dlq.close()
    await svc.source.close()


async def test_the_offset_of_a_record_moves_only_when_its_last_document_is_indexed() -> None:
    parts = (span("a", doc_id="span-a", index="p-jaeger-span-2026-11-27"), span("b"), span("c"))
    svc, _ = await service({b"req": Many(parts), b"next": Many((span("d", doc_id="span-d"),))})
    try:
        svc._ingest(TP, [Rec(10, b"req"), Rec(11, b"next")])  # type: ignore[list-item]
        req = svc.batcher.take()
        assert req is not None and len(req.items) == 4
        a, b, c, d = req.items
        assert (a.doc_id, a.index) == ("span-a", "p-jaeger-span-2026-11-27")
        assert b.index == "logpipe-trace-2026.11.27"
        # Parts without their own id: the record's position and the part number, stable on replay.
        assert (b.doc_id, c.doc_id) == (document_id("fp::t", "7/1"), document_id("fp::t", "7/2"))

        svc._on_indexed([d, a, c])
        assert svc.offsets.committable() == {TP: 10}  # b still out: neither 10 nor 11 may be committed
        svc._on_indexed([b])
        assert svc.offsets.committable() == {TP: 12}
        assert svc.buffered_bytes == 0
    finally:
        await close(svc)


async def test_an_unparseable_part_is_dead_lettered_alone_and_the_rest_indexed() -> None:
    svc, letters = await service({b"req": Many((span("a"), Unparseable("span 1: no traceId"), span("c")))})
    try:
        svc._ingest(TP, [Rec(3, b"req")])  # type: ignore[list-item]
        req = svc.batcher.take()
        assert req is not None and [w.doc["name"] for w in req.items if w.doc] == ["a", "c"]
        await asyncio.sleep(0.01)  # the dead letter's task
        assert [(w.reason, w.raw, w.kafka_offset) for w in letters] == [("span 1: no traceId", b"req", 3)]
        assert svc.offsets.committable() == {TP: 3}
        svc._on_indexed(req.items)
        assert svc.offsets.committable() == {TP: 4}
    finally:
        await close(svc)


async def test_a_record_with_no_documents_is_resolved_at_once() -> None:
    svc, _ = await service({b"empty": Many(())})
    try:
        svc._ingest(TP, [Rec(0, b"empty")])  # type: ignore[list-item]
        assert svc.batcher.take() is None
        assert svc.offsets.committable() == {TP: 1}
    finally:
        await close(svc)
