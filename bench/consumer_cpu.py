"""The consumer's own CPU per record, by log type, on its record path — no services, one process.

    python bench/consumer_cpu.py [--records 40000] [--repeat 3]

What a loaded shared machine can still measure (CPU time, not wall ratios): the mixed stream of
``consumer_bench.py --mix`` (``mixed_stream_gen.py``) and the OTLP lines of ``trace_bench.py`` (1 and
20 spans a line) go through the consumer's own ``Ingest`` (native encoder first, else the parser;
``_id``, index) into a ``BulkBatcher`` (the ``_bulk`` item bytes), with the consumer's GC policy.
Spans also pay their dependency link record (``link_from_document`` + ``encode``). Best of
``--repeat`` runs, ``time.process_time``. Compare two trees in the same minute:
``PYTHONPATH=<tree> python bench/consumer_cpu.py`` for each.
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass

from mixed_stream_gen import make_mixed_records
from trace_bench import make_records as make_span_records

from consumer.bulk import BulkBatcher
from consumer.clock import SystemClock
from consumer.dependencies.link import link_from_document
from consumer.gc_policy import apply_gc_policy
from consumer.ingest import Ingest
from consumer.offsets import PartitionOffsets
from consumer.work import Work
from logpipe.core.envelope import LineRecord
from parsers import LineParser
from parsers.access_encoder import AccessEncoder


@dataclass
class Rec:
    """A fetched record as the source hands it (``consumer.ports.SourceRecord``)."""

    offset: int
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    key: bytes


class Batches:
    """The dispatcher's encoding step: every work's ``_bulk`` item, a request closed every 4 000."""

    def __init__(self) -> None:
        self.batcher = BulkBatcher(1 << 40, 4000)
        self.works = 0

    def index(self, work: Work) -> None:
        self.works += 1
        self.batcher.add(work)
        if work.log_type == "trace" and work.doc is not None and (link := link_from_document(work.doc)):
            link.encode()

    def dead_letter(self, work: Work) -> None:
        self.works += 1


def cpu_per_record(records: list[LineRecord], topic: str, repeat: int) -> tuple[float, float]:
    """(best CPU µs per record, documents per record) through Ingest + the bulk encoding."""
    recs = [Rec(i, r.value, tuple(r.headers()), r.key) for i, r in enumerate(records)]
    best, docs = float("inf"), 0.0
    for _ in range(repeat):
        parser = LineParser()
        offsets, out = PartitionOffsets(), Batches()
        ingest = Ingest(offsets, out, "bench", SystemClock(), LineParser, lambda: "2026-12-02T00:00:00.000Z",
                        AccessEncoder(parser.fieldmap, "bench").encode)
        tp = (topic, 0)
        offsets.assign(tp)
        ingest.assign([tp])
        start = time.process_time()
        for i in range(0, len(recs), 500):  # fetches of 500 records
            ingest.records(tp, recs[i : i + 500])
        best = min(best, time.process_time() - start)
        docs = out.works / len(recs)
    return best / len(recs) * 1e6, docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=40_000, help="records of the mixed stream")
    ap.add_argument("--spans", type=int, default=4_000, help="spans of each OTLP shape")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    apply_gc_policy()
    mixed = make_mixed_records(args.records, uuid.uuid4().hex[:6])
    total = 0.0
    for kind in ("access", "stdout", "app", "trace"):
        recs = [r for r in mixed if r.meta.log_type == kind]
        us, docs = cpu_per_record(recs, kind, args.repeat)
        total += us * len(recs)
        print(f"mixed stream, {kind:6s} {len(recs):6d} records: {us:5.1f} us/record ({docs:.2f} docs/record)")
    print(f"mixed stream, all: {total / len(mixed):.1f} us/record")
    for per_line in (1, 20):
        recs = make_span_records(args.spans, per_line, uuid.uuid4().hex[:6])
        us, _ = cpu_per_record(recs, "trace", args.repeat)
        print(f"OTLP, {per_line:2d} span(s)/line: {us * len(recs) / args.spans:5.1f} us/span")


if __name__ == "__main__":
    main()
