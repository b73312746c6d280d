"""The cyclic garbage collector's policy while the consumer runs.

Per line the consumer allocates ~20 container objects (the decoded JSON, the nested document, its
Kafka record) that live until Elasticsearch accepted the document — a few hundred milliseconds — and
form no reference cycles: freeing them is reference counting's job, and every collection the cyclic
GC runs meanwhile scans them for nothing. Measured in the end-to-end bench (docs/BENCHMARKS.md):
7 µs of the consumer's CPU per document went to the collector with the thresholds
``(50_000, 20, 100)``, ~2-3 µs with ``(500_000, 20, 100)``; a young generation of 500 000 objects
mostly holds documents already indexed and freed by the time it is collected.
"""

from __future__ import annotations

import gc

THRESHOLDS = (500_000, 20, 100)


def apply_gc_policy() -> None:
    """Freeze what exists now (clients, connections, compiled rules: never garbage) out of the
    collector's way and collect the young generation less often. Call once start-up is done."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
