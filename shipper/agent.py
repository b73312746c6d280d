"""The node agent: discovery -> streams/tailers -> pipeline -> sink, the registry, and the HTTP endpoint.

:meth:`Agent.run` wires the parts and runs until ``stop`` is set (SIGTERM/SIGINT in the CLI):

1. the registry is read back; the HTTP endpoint comes up; the sink connects (retried until it does);
2. discovery's events add and remove files (``shipper/streams.py``);
3. :meth:`Agent.read_from_sources` reads new lines and appends them to the pipeline, pausing while
   too many bytes are unacknowledged;
4. :meth:`Agent.on_delivered` — the ack path — moves each stream's contiguous low-water mark and is
   the only caller of ``Registry.commit``; the registry is written every ``flush_interval``.

Every long-running task runs under one :class:`~logpipe.core.supervisor.Supervisor`: discovery, its
event follower, the read loop, the batch linger and the registry writer are restarted with backoff
when they fail; a task that keeps failing makes the agent flush and exit 1 (the kubelet restarts it).
Their heartbeats and the pipeline's delivery heartbeat decide ``/healthz``; ``/readyz`` says whether
lines can be delivered now and whether checkpoints are being saved.

File reads run in worker threads (``read`` pool) and registry writes in another, so a slow or hung
disk delays that file or that checkpoint, never the event loop that drives the sink's acks and
heartbeats: a read not done within ``tail.read_timeout`` is left to finish in the background.

On stop: reading stops, in-flight batches get ``shutdown_grace`` seconds to be acknowledged, the
registry is written, and ``run`` returns 0 (1 after a task failure). Lines still unacknowledged then
are read again after the restart (at-least-once: duplicates are limited to that tail).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from logpipe.core.config_base import ConfigError
from logpipe.core.supervisor import Heartbeat, Supervisor
from shipper import telemetry
from shipper.config import ShipperConfig
from shipper.discovery import Discovery, FileAdded, FileRemoved
from shipper.http import HttpServer
from shipper.identity import strategy
from shipper.pipeline import Batch, Pipeline
from shipper.pod_meta import PodMetadata
from shipper.registry import Registry, write_atomically
from shipper.rules import Rules
from shipper.sinks.base import Sink
from shipper.streams import StreamSet
from shipper.tailer import Chunk, Tailer

READ_THREADS = 4  # reads in flight at once; a hung one holds its thread until the disk answers

# Stopped first on shutdown (the rest, the linger, keeps batches moving while the pipeline drains).
_INTAKE = ("read", "discovery", "discovery-events", "registry-flush", "sink-connect")


def _configured_sink(cfg: ShipperConfig) -> Sink:
    """The sink ``cfg.sink`` selects (imported late: each pulls in its own client library)."""
    if cfg.sink.type == "sls":
        try:
            from shipper.sinks.sls.sink import SlsSink
        except ModuleNotFoundError as exc:  # a Kafka-only install: '.[shipper]' without the 'sls' extra
            raise ConfigError(
                "sink",
                [f"sink.type: sls needs the SLS SDK, which this install lacks ({exc}) — fix: pip install"
                 " 'logpipe[shipper,sls]', or build the image with --build-arg EXTRAS=shipper,sls"],
            ) from None

        return SlsSink(cfg.sink)
    from shipper.sinks.kafka.sink import KafkaSink

    return KafkaSink(cfg.kafka)


class Agent:
    """One shipper process."""

    def __init__(self, cfg: ShipperConfig, sink: Sink | None = None) -> None:
        self.cfg = cfg
        if sink is None:
            sink = _configured_sink(cfg)
        self.sink: Sink = sink
        self.registry = Registry(cfg.registry.path)
        self.read_limits = cfg.tail.read_limits()
        self.streams: StreamSet | None = None
        self.pipeline = Pipeline(self.sink, cfg.pipeline.limits(), self.on_delivered)
        self.http = HttpServer(cfg.http.host, cfg.http.port, self._ready, self._healthy)
        self.http_port = 0
        self._stopping = False
        h = cfg.health
        self.supervisor = Supervisor("shipper", max_restarts=h.max_restarts, restart_window=h.restart_window)
        self.read_heartbeat: Heartbeat = self.supervisor.heartbeat("read")
        self.registry_heartbeat: Heartbeat = self.supervisor.heartbeat("registry-flush")
        self._read_pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="logpipe-read")
        self._registry_pool = ThreadPoolExecutor(1, thread_name_prefix="logpipe-registry")
        self._slow_reads: set[Tailer] = set()
        self.registry_error = ""  # the last registry write's error; "" once a write succeeds
        self._registry_failing_since = 0.0

    # --- the ack path ---------------------------------------------------------------------------

    def on_delivered(self, batch: Batch) -> None:
        """A batch is acknowledged: move each stream's checkpoint over its contiguous prefix."""
        for t, (start, end) in batch.ranges.items():
            if end > start:
                self.registry.commit(t.id, t.acks.resolve(start))
        for log_type, (lines, nbytes) in batch.by_type.items():
            telemetry.LinesAcked(log_type, lines, nbytes).emit()

    # --- the read path ---------------------------------------------------------------------------

    async def read_from_sources(self) -> None:
        """Read new lines from every open stream and hand them to the pipeline, until stopped."""
        poll = self.cfg.tail.poll_interval
        last_poll = 0.0
        hb = self.read_heartbeat
        while not self._stopping:
            hb.beat()
            now = time.monotonic()
            if now - last_poll >= poll:
                assert self.streams is not None
                self.streams.poll()
                last_poll = now
            progressed = await self.read_round(now)
            await asyncio.sleep(0 if progressed else poll)

    async def read_round(self, now: float) -> bool:
        """One read from each stream with new bytes; True if anything was read."""
        streams, pipeline = self.streams, self.pipeline
        assert streams is not None
        progressed = False
        for t in streams.readable():
            if t.reading:
                continue  # its last read is still running (slow disk): the other files go on
            if not pipeline.has_capacity:
                with self.read_heartbeat.waiting():  # the sink is behind: waiting is not being stuck
                    await pipeline.wait_for_capacity()
            if self._stopping:
                break
            if t.fd is None:
                continue
            chunk = await self._read(t, now)
            if chunk is None:
                continue
            progressed = True
            self._take(t, chunk)
        return progressed

    async def _read(self, t: Tailer, now: float) -> Chunk | None:
        """``t.read`` in a worker thread; None when nothing was read or the read outlived ``read_timeout``."""
        t.reading = True
        fut = self._read_pool.submit(t.read, self.read_limits, now, t.state == "draining")
        wrapped = asyncio.wrap_future(fut)
        done, _ = await asyncio.wait({wrapped}, timeout=self.cfg.tail.read_timeout)
        if not done:
            telemetry.ReadStalled(t.target.abspath, self.cfg.tail.read_timeout).emit()
            self._slow_reads.add(t)
            wrapped.add_done_callback(lambda _f: self._late_read(t, fut))
            return None
        return self._finish_read(t, fut)

    def _finish_read(self, t: Tailer, fut: Future[Chunk | None]) -> Chunk | None:
        t.read_ended()
        try:
            return fut.result()
        except OSError as exc:
            telemetry.FileOpenFailed(t.target.abspath, str(exc)).emit()
            return None

    def _late_read(self, t: Tailer, fut: Future[Chunk | None]) -> None:
        """A slow read ended (on the loop): its lines join the pipeline as if read just now."""
        self._slow_reads.discard(t)
        chunk = self._finish_read(t, fut)
        if chunk is not None and not self._stopping:
            self._take(t, chunk)

    def _take(self, t: Tailer, chunk: Chunk) -> None:
        t.size = max(t.size, chunk.end)
        self.pipeline.append(t, chunk)
        if chunk.nlines:
            telemetry.LinesRead(t.target.abspath, t.meta.log_type, chunk.nlines, chunk.end - chunk.start).emit()

    # --- health ----------------------------------------------------------------------------------

    def _healthy(self) -> tuple[bool, str]:
        """Making progress: no task failed for good, no work loop stalled, some read thread free."""
        sup, h = self.supervisor, self.cfg.health
        if sup.failed.is_set():
            return False, sup.failure
        stalled = [f"{hb.name} ({hb.age():.0f}s)" for hb in sup.stalled(h.stall_after)]
        if self.pipeline.heartbeat.stalled(h.delivery_stall_after):
            stalled.append(f"delivery ({self.pipeline.heartbeat.age():.0f}s)")
        if stalled:
            return False, "stalled: " + ", ".join(stalled)
        if len(self._slow_reads) >= READ_THREADS:
            hung = ", ".join(t.target.abspath for t in self._slow_reads)
            return False, f"all {READ_THREADS} read threads hung: {hung}"
        return True, "ok"

    def _ready(self) -> tuple[bool, str]:
        if not self.registry.loaded:
            return False, "registry not loaded"
        if not self.sink.connected:
            return False, f"sink {self.sink.name} not connected"
        if self.registry_error:
            since = time.monotonic() - self._registry_failing_since
            return False, f"checkpoints not saved for {since:.0f}s: {self.registry_error}"
        return True, "ready"

    # --- the tasks -------------------------------------------------------------------------------

    async def _connect_sink(self) -> None:
        delay = 0.2
        while not self._stopping:
            try:
                await self.sink.start()
                return
            except Exception as exc:
                telemetry.BatchSendFailed(self.sink.name, 0, 0, delay, f"connect: {exc}").emit()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _follow_discovery(self, discovery: Discovery) -> None:
        streams = self.streams
        assert streams is not None
        async for ev in discovery.events():
            if isinstance(ev, FileAdded):
                streams.add(ev.target)
            elif isinstance(ev, FileRemoved):
                streams.remove(ev.target)

    async def _flush_registry(self) -> None:
        hb = self.registry_heartbeat
        while True:
            with hb.waiting():
                await asyncio.sleep(self.cfg.registry.flush_interval)
            await self._write_registry()
            hb.beat()

    async def _write_registry(self) -> None:
        """Write the registry if it changed (in its own thread); a failure keeps it dirty for the next turn."""
        if not self.registry.dirty:
            return
        data = self.registry.snapshot()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._registry_pool, write_atomically, self.registry.path, data)
        except OSError as exc:
            self.registry.mark_dirty()
            if not self.registry_error:
                self._registry_failing_since = time.monotonic()
            self.registry_error = str(exc)
            telemetry.RegistryWritten(str(self.registry.path), len(self.registry), error=str(exc)).emit()
            return
        self.registry_error = ""
        telemetry.RegistryWritten(str(self.registry.path), len(self.registry)).emit()

    def load_state(self, clock: Callable[[], float] = time.monotonic) -> StreamSet:
        """Read the registry back and set up the streams (before anything is read)."""
        cfg = self.cfg
        self.registry = Registry.load(cfg.registry.path)
        self.streams = StreamSet(
            self.registry,
            strategy(cfg.identity.strategy, cfg.identity.fingerprint_bytes),
            cfg.tail.stream_limits(),
            clock=clock,
        )
        return self.streams

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> int:
        """Ship until ``stop`` is set; returns the exit code (0 after a clean flush, 1 after a task failed)."""
        cfg = self.cfg
        self.load_state()
        self.http_port = await self.http.start()
        telemetry.ShipperStarted(cfg.node_name, self.http_port, str(self.registry.path), len(self.registry)).emit()
        discovery = Discovery(
            cfg.pods_root,
            cfg.logs_root,
            node=cfg.node_name,
            rules=Rules.from_config(cfg.rules),
            config=cfg.discovery,
            pod_meta=PodMetadata(cfg.pod_metadata, cfg.node_name),
        )
        sup = self.supervisor
        sup.watch(discovery.heartbeat)
        sup.start("sink-connect", self._connect_sink, once=True)
        sup.start("pipeline-linger", self.pipeline.run)
        sup.start("registry-flush", self._flush_registry)
        discovery_started = False
        try:
            await discovery.start(background=False)
            discovery_started = True
            sup.start("discovery", discovery.run)
            sup.start("discovery-events", lambda: self._follow_discovery(discovery))
            sup.start("read", self.read_from_sources)
            stopped = asyncio.ensure_future(stop.wait())
            failed = asyncio.ensure_future(sup.failed.wait())
            try:
                await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                failed.cancel()
        finally:
            await self._shutdown(discovery if discovery_started else None)
        return 1 if sup.failed.is_set() else 0

    async def _shutdown(self, discovery: Discovery | None) -> None:
        """Stop reading, let in-flight batches finish within the grace period, write what was acknowledged."""
        self._stopping = True
        await self.supervisor.stop(*_INTAKE)
        if discovery is not None:
            with contextlib.suppress(Exception):
                await discovery.stop()
        flushed = await self.pipeline.drain(self.cfg.shutdown_grace)
        unacked = self.pipeline.bytes_in_flight
        await self.pipeline.close()
        await self.supervisor.stop()
        self.registry.mark_dirty()
        await self._write_registry()
        with contextlib.suppress(Exception):
            await self.sink.close()
        if self.streams is not None:
            self.streams.close_all()
        await self.http.stop()
        self._read_pool.shutdown(wait=False, cancel_futures=True)  # a hung read must not hang the exit
        self._registry_pool.shutdown(wait=False)
        reason = self.supervisor.failure or ("stop" if flushed else "grace period over")
        telemetry.ShipperStopped(reason, unacked).emit()
