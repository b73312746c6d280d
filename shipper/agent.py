"""The node agent: discovery -> streams/tailers -> pipeline -> sink, the registry, and the HTTP endpoint.

:meth:`Agent.run` wires the parts and runs until ``stop`` is set (SIGTERM/SIGINT in the CLI):

1. the registry is read back; the HTTP endpoint comes up; the sink connects (retried until it does);
2. discovery's events add and remove files (``shipper/streams.py``);
3. :meth:`Agent.read_from_sources` reads new lines and appends them to the pipeline, pausing while
   too many bytes are unacknowledged;
4. :meth:`Agent.on_delivered` — the ack path — moves each stream's contiguous low-water mark and is
   the only caller of ``Registry.commit``; the registry is written every ``flush_interval``.

On stop: reading stops, in-flight batches get ``shutdown_grace`` seconds to be acknowledged, the
registry is written, and ``run`` returns 0. Lines still unacknowledged then are read again after
the restart (at-least-once: duplicates are limited to that tail).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

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


def _configured_sink(cfg: ShipperConfig) -> Sink:
    """The sink ``cfg.sink`` selects (imported late: each pulls in its own client library)."""
    if cfg.sink.type == "sls":
        from shipper.sinks.sls.sink import SlsSink

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
        self.http = HttpServer(cfg.http.host, cfg.http.port, self._ready)
        self.http_port = 0
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

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
        while not self._stopping:
            now = time.monotonic()
            if now - last_poll >= poll:
                assert self.streams is not None
                self.streams.poll()
                last_poll = now
            progressed = await self.read_round(now)
            await asyncio.sleep(0 if progressed else poll)

    async def read_round(self, now: float) -> bool:
        """One read from each stream with new bytes; True if anything was read."""
        streams, pipeline, limits = self.streams, self.pipeline, self.read_limits
        assert streams is not None
        progressed = False
        for t in streams.readable():
            await pipeline.wait_for_capacity()
            if self._stopping:
                break
            if t.fd is None:
                continue
            try:
                chunk = t.read(limits, now, flush_partial=t.state == "draining")
            except OSError as exc:
                telemetry.FileOpenFailed(t.target.abspath, str(exc)).emit()
                continue
            if chunk is None:
                continue
            progressed = True
            t.size = max(t.size, chunk.end)
            pipeline.append(t, chunk)
            if chunk.nlines:
                telemetry.LinesRead(t.target.abspath, t.meta.log_type, chunk.nlines,
                                    chunk.end - chunk.start).emit()
        return progressed

    # --- lifecycle -------------------------------------------------------------------------------

    def _ready(self) -> tuple[bool, str]:
        if not self.registry.loaded:
            return False, "registry not loaded"
        if not self.sink.connected:
            return False, f"sink {self.sink.name} not connected"
        return True, "ready"

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
        while True:
            await asyncio.sleep(self.cfg.registry.flush_interval)
            await self._write_registry()

    async def _write_registry(self) -> None:
        if not self.registry.dirty:
            return
        data = self.registry.snapshot()
        try:
            await asyncio.to_thread(write_atomically, self.registry.path, data)
            telemetry.RegistryWritten(str(self.registry.path), len(self.registry)).emit()
        except OSError as exc:
            self.registry.mark_dirty()
            telemetry.RegistryWritten(str(self.registry.path), len(self.registry), error=str(exc)).emit()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

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

    async def run(self, stop: asyncio.Event) -> int:
        """Ship until ``stop`` is set; returns the exit code (0 after a clean flush)."""
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
        self._spawn(self._connect_sink(), "sink-connect")
        self._spawn(self.pipeline.run(), "pipeline-linger")
        self._spawn(self._flush_registry(), "registry-flush")
        discovery_started = False
        try:
            await discovery.start()
            discovery_started = True
            self._spawn(self._follow_discovery(discovery), "discovery-events")
            self._spawn(self.read_from_sources(), "read")
            await stop.wait()
        finally:
            await self._shutdown(discovery if discovery_started else None)
        return 0

    async def _shutdown(self, discovery: Discovery | None) -> None:
        self._stopping = True
        if discovery is not None:
            with contextlib.suppress(Exception):
                await discovery.stop()
        for task in self._tasks:
            if task.get_name() in ("read", "discovery-events", "registry-flush", "sink-connect"):
                task.cancel()
        for task in self._tasks:
            if task.get_name() in ("read", "discovery-events", "registry-flush", "sink-connect"):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        flushed = await self.pipeline.drain(self.cfg.shutdown_grace)
        unacked = self.pipeline.bytes_in_flight
        await self.pipeline.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.registry.mark_dirty()
        await self._write_registry()
        with contextlib.suppress(Exception):
            await self.sink.close()
        if self.streams is not None:
            self.streams.close_all()
        await self.http.stop()
        telemetry.ShipperStopped("stop" if flushed else "grace period over", unacked).emit()
