"""Reading a figure off a ``/metrics`` page in the Prometheus text format (dev tools, benches, tests)."""

from __future__ import annotations


def sample_total(exposition: str, prefix: str) -> float:
    """The sum of the sample values on the lines of ``exposition`` that start with ``prefix``; 0.0 if none do.

    ``prefix`` is a metric name, which adds up all its labelled series, or a name and ``{`` to leave out a
    metric whose name merely begins with it. ``# HELP``/``# TYPE`` lines never count.
    """
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith(prefix) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total
