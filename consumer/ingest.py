"""Records -> works: the read path of the consumer, one partition's fetched records at a time.

For every record :meth:`Ingest.records` registers its offset (``consumer/offsets.py``) and makes the
work that will resolve it (``consumer/work.py``), handed to the dispatcher (``consumer/dispatch.py``):

- a plain access line: the native encoder's finished ``_bulk`` item (``parsers/access_encoder.py``);
- otherwise the partition's parser (``parsers/line_parser.py``): a :class:`~parsers.Parsed` document
  (a reassembled CRI line also stands for the fragment records it absorbed); an
  :class:`~parsers.Unparseable` record, dead-lettered with its reason; a :class:`~parsers.Partial`
  CRI fragment, held unresolved until its document comes; :class:`~parsers.Many` documents, one
  work each, sharing the record's offset (STYLE.md #15).

Each document gets its index and deterministic ``_id`` here (``_id = document_id(file_id, offset)``
unless the parser named one), so a replay overwrites instead of duplicating.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from consumer.bulk import index_name
from consumer.offsets import PartitionOffsets
from consumer.ports import Clock, SourceRecord
from consumer.telemetry import RecordsConsumed, RecordsEncodedNatively
from consumer.work import SharedOffsets, TopicPartitionKey, Work
from logpipe.core.envelope import decode_headers
from parsers import Many, Parsed, ParseResult, Partial
from parsers.access_encoder import EncodeFn, document_id


class RecordParser(Protocol):
    """One partition's parser (``parsers.LineParser``): it holds that partition's CRI fragments."""

    def parse(self, value: bytes, headers: Mapping[str, str]) -> ParseResult: ...

    def expire(self, older_than_s: float) -> list[Parsed]: ...


class WorkSink(Protocol):
    """Where finished works go (``consumer.dispatch.Dispatch``)."""

    def index(self, work: Work) -> None: ...

    def dead_letter(self, work: Work) -> None: ...


class Ingest:
    """Turns fetched records into works, with a parser per assigned partition."""

    def __init__(
        self,
        offsets: PartitionOffsets,
        out: WorkSink,
        index_prefix: str,
        clock: Clock,
        new_parser: Callable[[], RecordParser],
        stamp: Callable[[], str],
        encode: EncodeFn | None = None,
    ) -> None:
        self._offsets = offsets
        self._out = out
        self._prefix = index_prefix
        self._clock = clock
        self._new_parser = new_parser
        self._stamp = stamp  # event.ingested for natively encoded items
        self._encode = encode
        self._parsers: dict[TopicPartitionKey, RecordParser] = {}

    def assign(self, partitions: Sequence[TopicPartitionKey]) -> None:
        for tp in partitions:
            self._parsers[tp] = self._new_parser()

    def revoke(self, partitions: Sequence[TopicPartitionKey]) -> None:
        for tp in partitions:
            self._parsers.pop(tp, None)  # its buffered fragments go too: the next owner reads them again

    def partitions(self) -> list[TopicPartitionKey]:
        return list(self._parsers)

    def records(self, tp: TopicPartitionKey, records: Sequence[SourceRecord]) -> None:
        """Parse the records of one partition and route each to the indexer or the dead-letter sink."""
        generation = self._offsets.generation(tp)
        parser = self._parsers.get(tp)
        if generation is None or parser is None:
            return  # revoked meanwhile: the next owner reads them
        RecordsConsumed(topic=tp[0], count=len(records)).emit()
        topic, partition = tp
        offsets = self._offsets
        track, parse, index = offsets.track, parser.parse, self._out.index
        encode, native = self._encode, 0
        stamp = self._stamp()
        for rec in records:
            offset = rec.offset
            if not track(tp, offset):
                continue
            value = rec.value or b""
            raw_headers = rec.headers or ()  # aiokafka hands a fresh tuple per record
            if encode is not None and (item := encode(value, raw_headers, stamp)) is not None:
                work = Work(topic, partition, generation, [offset], value, raw_headers, rec.key, offset, None, "access")
                work.item, work.index, work.doc_id = item
                native += 1
                index(work)
                continue
            result = parse(value, decode_headers(raw_headers))
            if isinstance(result, Parsed):
                work = Work(topic, partition, generation, [offset], value, raw_headers, rec.key, offset)
                if result.absorbed > 0:
                    work.offsets.extend(offsets.absorb(tp, result.fragments, result.absorbed))
                self._document(work, result)
            elif isinstance(result, Partial):
                offsets.add_fragment(tp, result.key, offset)
            elif isinstance(result, Many):
                self._parts(Work(topic, partition, generation, [offset], value, raw_headers, rec.key, offset), result)
            else:
                work = Work(topic, partition, generation, [offset], value, raw_headers, rec.key, offset)
                work.reason = result.reason
                self._out.dead_letter(work)
        if native:
            RecordsEncodedNatively(topic=topic, count=native).emit()

    def expire(self, older_than_s: float) -> None:
        """Index the CRI lines whose final fragment has not come for ``older_than_s`` seconds."""
        for tp, parser in list(self._parsers.items()):
            generation = self._offsets.generation(tp)
            if generation is None:
                continue
            for parsed in parser.expire(older_than_s):
                offsets = self._offsets.absorb(tp, parsed.fragments, max(parsed.absorbed, 1))
                message = parsed.doc.get("message")
                work = Work(
                    topic=tp[0], partition=tp[1], generation=generation, offsets=offsets,
                    raw=message.encode() if isinstance(message, str) else b"",  # for a dead letter
                    headers=[], key=None, kafka_offset=offsets[-1] if offsets else -1,
                )
                self._document(work, parsed)

    def _parts(self, record: Work, many: Many) -> None:
        """The documents of one record: each part its own work, the record's offset shared by all."""
        if not many.parts:
            self._offsets.resolve(record)  # nothing to index: the record is done
            return
        shared = SharedOffsets(record.offsets, len(many.parts))
        for number, part in enumerate(many.parts):
            work = Work(
                record.topic, record.partition, record.generation, [], record.raw, record.headers,
                record.key, record.kafka_offset, shared=shared,
            )
            if isinstance(part, Parsed):
                self._document(work, part, number)
            else:
                work.reason = part.reason
                self._out.dead_letter(work)

    def _document(self, work: Work, parsed: Parsed, part: int | None = None) -> None:
        doc = parsed.doc
        work.doc = doc
        work.log_type = parsed.log_type
        work.index = parsed.index or index_name(self._prefix, parsed.log_type, doc, self._clock.time())
        if parsed.doc_id:
            work.doc_id = parsed.doc_id
        else:
            lp = doc.get("logpipe") or {}
            lg = doc.get("log") or {}
            file_id, offset = lp.get("file_id"), lg.get("offset")
            position: int | str
            if file_id and isinstance(offset, int):
                position = offset
            else:  # no source identity in the headers: the Kafka position is the next best stable identity
                file_id, position = f"kafka:{work.topic}/{work.partition}", work.kafka_offset
            work.doc_id = document_id(file_id, position if part is None else f"{position}/{part}")
        self._out.index(work)
