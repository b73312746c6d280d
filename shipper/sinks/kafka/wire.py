"""What a line becomes in Kafka: its topic, key, headers and value — written here and nowhere else.

- topic: the dead-letter topic for dead-lettered lines, else the shipper rule's topic, else the
  config's topic for the log type (``logpipe-<type>``);
- key: the Component (one service's lines stay ordered in one partition);
- headers: :class:`~logpipe.core.envelope.HeaderTemplate` (envelope version 2: ``lp.meta``, one bytes
  object per run, built from a per-file part cached here; and the line's ``lp.offset``), which the
  consumer's ``decode_headers`` and C encoder read back;
- value: the line's bytes, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

from logpipe.core.envelope import H_OFFSET, HeaderTemplate, LineRun
from shipper.sinks.kafka.config import KafkaSinkConfig

Headers = list[tuple[str, bytes]]


class WireFormat:
    """Topic choice and record building for runs of lines, with one cache of per-file headers."""

    def __init__(self, cfg: KafkaSinkConfig, cache_limit: int = 8192) -> None:
        self.cfg = cfg
        self._templates: dict[int, HeaderTemplate] = {}  # id(meta) -> template (checked: ids are reused)
        self._limit = cache_limit

    def topic_of(self, run: LineRun) -> str:
        if "deadletter" in run.flags:
            return self.cfg.dead_letter_topic
        return run.topic or self.cfg.topic_for(run.meta.log_type)

    def template(self, run: LineRun) -> HeaderTemplate:
        m = run.meta
        t = self._templates.get(id(m))
        if t is None or t.meta_of is not m:
            if len(self._templates) >= self._limit:
                self._templates.clear()
            t = self._templates[id(m)] = HeaderTemplate(m)
        return t

    def key_of(self, run: LineRun) -> bytes:
        return run.meta.component.encode()

    def records(self, run: LineRun) -> Iterator[tuple[bytes, Headers]]:
        """(value, headers) of each line of ``run``, in file order."""
        meta = self.template(run).meta(run.read_ts_ms, run.flags)
        pos = run.offset
        for v in run.values:
            yield v, [meta, (H_OFFSET, b"%d" % pos)]  # HeaderTemplate.line, inlined: once per line
            pos += len(v) + 1
