"""The consumer's composition root: builds every client from the config and hands the loop its parts.

:class:`ConsumerApp` is what ``logpipe consume`` runs. It builds the Elasticsearch client and its
``_bulk`` endpoint (``consumer/es_client.py``), the source ``source.type`` names — Kafka
(``consumer/sources/kafka/``) or SLS (``consumer/sources/sls/``) — and its dead-letter destination
(the Kafka topic, ``consumer/deadletter.py``, or an SLS logstore), the native access-line encoder, and the HTTP
server (``consumer/http.py``); it installs the index templates before anything is indexed, schedules
retention (when there is no ILM) and the GC policy, and runs :class:`consumer.loop.ConsumeLoop`
with those parts. The alert engine is built by the CLI (its rule file) and passed in.

The loop and the side tasks run under a :class:`~logpipe.core.supervisor.Supervisor`: retention and
the dependency stage are restarted when they fail (a fresh stage reads again from its committed
offsets); the consume loop failing is fatal (``Policy.EXIT``): the app then flushes,
commits only what is indexed or dead-lettered, and :meth:`ConsumerApp.run` returns 1, so the kubelet
restarts the container. ``/healthz`` fails when the loop's heartbeat has not turned for
``health.stall_after`` or a task failed for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from consumer.clock import SystemClock
from consumer.config import ConsumerConfig
from consumer.deadletter import DeadLetterWriter
from consumer.dependencies.producer import LinkProducer
from consumer.dependencies.stage import DependencyStage
from consumer.es_client import ElasticsearchBulk, es_refusal, make_client
from consumer.gc_policy import apply_gc_policy
from consumer.http import HealthServer
from consumer.index_templates import install_templates
from consumer.loop import ConsumeLoop
from consumer.ports import AlertSink, DeadLetterSink, Source
from consumer.retention import run_retention
from consumer.retry import until_ok
from consumer.sources.kafka import KafkaSource
from consumer.sources.sls.config import SlsSourceConfig
from consumer.spanmetrics.exposition import render as render_span_metrics
from consumer.spanmetrics.store import SpanMetrics
from consumer.telemetry import log
from logpipe.core.es_connection import es_auth_options
from logpipe.core.supervisor import Policy, Supervisor
from parsers.access_encoder import NATIVE_AVAILABLE, AccessEncoder, EncodeFn
from parsers.fieldmap import FieldMap


def native_encoder(cfg: ConsumerConfig) -> EncodeFn | None:
    """The C fast path for plain access lines (same documents, ``parsers/access_encoder.py``), if on and built."""
    if cfg.native_encoder and NATIVE_AVAILABLE:
        return AccessEncoder(FieldMap(cfg.fields), cfg.index.prefix).encode
    if cfg.native_encoder:
        log.warning("NativeEncoderUnavailable", extra={"fields": {"fix": "pip install -e . (needs a C compiler)"}})
    return None


def build_source(cfg: ConsumerConfig, supervisor: Supervisor | None = None) -> tuple[Source, DeadLetterSink]:
    """The source ``cfg.source`` names and its dead-letter destination (``supervisor`` runs the
    source's own long-running tasks: the SLS membership heartbeat)."""
    def kafka_dlq() -> DeadLetterWriter:
        return DeadLetterWriter(cfg.kafka.bootstrap, cfg.kafka.dead_letter_topic, security=cfg.kafka)

    if isinstance(cfg.source, SlsSourceConfig):
        from consumer.sources.sls.deadletter import SlsDeadLetterWriter  # the SLS SDK only when asked for
        from consumer.sources.sls.source import SlsSource

        sls = SlsSource(cfg.source, supervisor=supervisor)
        if cfg.source.dead_letter == "kafka":
            return sls, kafka_dlq()
        return sls, SlsDeadLetterWriter(sls.service, cfg.source.dead_letter_logstore)
    return KafkaSource(cfg.kafka), kafka_dlq()


class ConsumerApp:
    """One consumer-group member indexing records of its source (Kafka or SLS) into Elasticsearch."""

    def __init__(
        self,
        cfg: ConsumerConfig,
        alerts: AlertSink | None = None,
        on_listening: Callable[[int], None] | None = None,
        *,
        tune_gc: bool = True,
    ) -> None:
        self.cfg = cfg
        self._tune_gc = tune_gc
        self._on_listening = on_listening
        self.es = make_client(cfg.elasticsearch, cfg.bulk.request_timeout, cfg.bulk.retry_max)
        self.supervisor = Supervisor("consumer")
        self.source, self.dlq = build_source(cfg, self.supervisor)
        self.clock = SystemClock()
        # Credentials read before each _bulk: a rotated password or API key file needs no restart.
        bulk = ElasticsearchBulk(self.es, partial(es_auth_options, cfg.elasticsearch))
        td = cfg.trace_dependencies
        # The service dependency graph needs the links topic on Kafka: not computed for an SLS source.
        deps = td.enabled and not isinstance(cfg.source, SlsSourceConfig)
        links = LinkProducer(cfg.kafka.bootstrap, td.topic, td.partitions, security=cfg.kafka) if deps else None
        # This replica's share of the links topic (consumer/dependencies/); a new one per (re)start.
        self._dependency_runs = 0
        self.dependencies = DependencyStage(cfg, self.es) if deps else None
        if self.dependencies is not None:
            self.supervisor.watch(self.dependencies.heartbeat)  # a hung links fetch fails /healthz
        sm = cfg.span_metrics
        # Spans Elasticsearch accepted, counted for /metrics (consumer/spanmetrics/).
        self.span_metrics = (
            SpanMetrics(sm.max_series_per_service, sm.max_services, [round(b * 1000, 6) for b in sm.buckets],
                        sm.max_series)
            if sm.enabled else None
        )
        self.loop = ConsumeLoop(
            cfg, self.source, bulk, self.dlq, alerts, self.clock, encode=native_encoder(cfg), links=links,
            span_metrics=self.span_metrics,
        )
        span_text = partial(render_span_metrics, self.span_metrics) if self.span_metrics is not None else None
        self.http = HealthServer(cfg.http.host, cfg.http.port, self._ready, self._healthy, span_text)
        self._templates_ready = False
        self.ilm = False

    @property
    def started(self) -> bool:
        return self.loop.started

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> int:
        """Serve HTTP, install templates (waiting for Elasticsearch) while the loop's parts start and
        join the group; returns the HTTP port."""
        port = await self.http.start()
        log.info("HttpListening", extra={"fields": {"host": self.cfg.http.host, "port": port}})
        if self._on_listening is not None:
            self._on_listening(port)
        # Joining the group overlaps the templates check (a restarted static member is back sooner);
        # nothing is fetched before both are done, so nothing is indexed before the templates exist.
        joining = asyncio.ensure_future(self.loop.start())
        try:
            await self._install_templates()
        except BaseException:
            joining.cancel()
            await asyncio.gather(joining, return_exceptions=True)
            raise
        if self.loop.stopping.is_set():
            await asyncio.gather(joining, return_exceptions=True)  # returns at once once stopping
            return port  # stopped while waiting for Elasticsearch: nothing was fetched
        if not self.ilm:
            es, prefix, days = self.es, self.cfg.index.prefix, self.cfg.index.retention_days
            self.supervisor.start("retention", lambda: run_retention(es, prefix, days))
        if self.dependencies is not None:
            self.supervisor.start("dependencies", self._run_dependencies)
        if await joining and self._tune_gc:
            apply_gc_policy()
        return port

    async def _run_dependencies(self) -> None:
        """The dependency stage; after a failure (it wrote and committed what it could on the way out)
        a fresh one starts at the committed offsets: what was held is read again, nothing counted twice."""
        self._dependency_runs += 1
        if self._dependency_runs > 1 or self.dependencies is None:  # the old one's Kafka client is closed
            self.dependencies = DependencyStage(self.cfg, self.es)
            self.supervisor.watch(self.dependencies.heartbeat)  # replaces the old stage's
        await self.dependencies.run()  # returns only once stopped (else the supervisor counts a failure)

    async def _install_templates(self) -> None:
        if not self.cfg.index.install_templates:
            self._templates_ready = True
            return

        async def install() -> None:
            try:
                self.ilm = await install_templates(self.es, self.cfg.index)
            except Exception as exc:
                refused = es_refusal(exc, self.cfg.elasticsearch)  # a security cause: one line with the fix
                if refused is not None:
                    raise refused from None
                raise
            self._templates_ready = True

        # Nothing may be indexed before the templates exist (indices would get dynamic mappings).
        bulk = self.cfg.bulk
        stopping = self.loop.stopping
        await until_ok("TemplatesNotInstalled", install, stopping, self.clock, bulk.retry_initial, bulk.retry_max)

    def request_stop(self) -> None:
        """Ask :meth:`run` to finish (signal handlers call this): a clean stop, so a static member
        leaves its groups on the way out (the pod is going away; consumer/sources/kafka/membership.py)."""
        for source in (self.source, self.dependencies.source if self.dependencies is not None else None):
            if isinstance(source, KafkaSource):
                source.leave_on_close = True
        self.loop.request_stop()

    async def run(self) -> int:
        """Start, loop until :meth:`request_stop` or a fatal task failure, then drain and close;
        returns the exit code (0, or 1 after a failure)."""
        sup = self.supervisor
        try:
            await self.start()
            if self.loop.started:
                sup.start("consume", self.loop.serve, Policy.EXIT, once=True)  # returns only once stopping
                waits = {asyncio.ensure_future(self.loop.stopping.wait()), asyncio.ensure_future(sup.failed.wait())}
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
        finally:
            await self.close()
        return 1 if sup.failed.is_set() else 0

    async def close(self) -> None:
        """Stop the loop (flush, grace, commit, disconnect), then the side tasks and the clients."""
        self.loop.request_stop()
        await self.supervisor.stop("consume")
        await self.loop.close()
        if self.dependencies is not None:
            # After the loop: the links its last spans produced are read on the next start (committed
            # offsets), so the stage only writes what it holds and commits that.
            self.dependencies.request_stop()
            await self.supervisor.finish("dependencies", self.cfg.shutdown_grace)
        await self.supervisor.stop()
        await self.es.close()
        await self.http.close()

    def _healthy(self) -> tuple[bool, dict[str, Any]]:
        sup = self.supervisor
        if sup.failed.is_set():
            return False, {"failed": sup.failure}
        hb = self.loop.heartbeat
        # Before the loop runs (waiting for Elasticsearch or Kafka at start) nothing can stall.
        if self.loop.started and sup.running("consume") and hb.stalled(self.cfg.health.stall_after):
            return False, {"stalled": hb.name, "seconds": round(hb.age(), 1)}
        delivery = self.loop.dispatch.heartbeat
        if self.loop.started and delivery.stalled(self.cfg.health.delivery_stall_after):
            return False, {"stalled": delivery.name, "seconds": round(delivery.age(), 1)}
        for other in sup.stalled(self.cfg.health.stall_after):  # the source's own (SLS membership)
            return False, {"stalled": other.name, "seconds": round(other.age(), 1)}
        return True, {}

    def _ready(self) -> tuple[bool, dict[str, Any]]:
        indexer = self.loop.indexer
        detail: dict[str, Any] = {
            "kafka": self.loop.started,
            "elasticsearch": indexer.available,
            "templates": self._templates_ready,
            "partitions": len(self.loop.offsets.partitions()),
            "buffered_bytes": self.loop.buffered_bytes,
        }
        if not indexer.available:
            detail["elasticsearch_error"] = indexer.last_error
        kafka_error: str | None = getattr(self.source, "broker_error", None)  # the Kafka source's probe
        if kafka_error:
            detail["kafka_error"] = kafka_error
        if self.dependencies is not None:
            detail["trace_dependencies"] = {
                "started": self.dependencies.started, "partitions": self.dependencies.partitions,
                "traces_held": len(self.dependencies.join),
            }
        return (self.loop.started and not kafka_error and indexer.available and self._templates_ready, detail)
