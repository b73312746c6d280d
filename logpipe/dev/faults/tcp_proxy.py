"""A TCP fault proxy on loopback: forwards ``127.0.0.1:<port>`` to a target and injects faults.

Modes (set with :meth:`FaultProxy.set_mode` at any time):

- ``pass``: bytes flow both ways;
- ``blackhole``: nothing is forwarded in either direction and no reset is sent (like packets dropped
  on the wire): connections stall, and once the mode is ``pass`` again they go on where they
  stopped, as TCP retransmission would; new connections are accepted but hear nothing;
- ``reset``: every connection is closed with a reset (SO_LINGER 0), new ones too;
- ``mute``: a server that accepts connections, reads every request and never answers (a hung
  process whose kernel still completes handshakes). Connections open at that moment lose their
  server side for good and stay mute even after ``pass`` (their stream is cut mid-conversation, so
  only the client's request timeout ends them); connections made after ``pass`` work.

``latency`` (seconds) delays every chunk in each direction by that much without limiting
throughput (chunks queue with their due time, as packets behind a ``tc netem delay`` do).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import dataclass, field

MODES = ("pass", "blackhole", "reset", "mute")
_CHUNK = 65536
_QUEUED = 256  # chunks in flight per direction (16 MiB): backpressure beyond it, as a full TCP window


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    muted: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    """``await start()`` listens on ``listen_port`` (0: a free one) and returns the port."""

    def __init__(self, target_host: str, target_port: int, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.latency = 0.0
        self.port = listen_port
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: one of {', '.join(MODES)}")
        self.mode = mode
        if mode in ("pass", "mute"):
            self._flowing.set()
        else:
            self._flowing.clear()
        if mode == "reset":
            for c in list(self._conns):
                _reset(c.client)
                if c.upstream is not None:
                    c.upstream.close()
        if mode == "mute":
            for c in list(self._conns):
                self._mute(c)

    @property
    def connections(self) -> int:
        """Client connections open through the proxy now."""
        return len(self._conns)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for c in list(self._conns):
                for w in (c.client, c.upstream):
                    if w is not None:
                        w.close()
                for t in c.tasks:
                    t.cancel()
            await self._server.wait_closed()
            self._server = None

    def _mute(self, c: _Conn) -> None:
        c.muted = True
        if c.upstream is not None:  # the server side is gone; the client keeps a silent socket
            c.upstream.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "reset":
            _reset(writer)
            return
        c = _Conn(writer)
        self._conns.add(c)
        try:
            await self._flowing.wait()  # a black hole: the handshake is done, nothing else happens
            if self.mode == "reset":
                _reset(writer)
                return
            if self.mode == "mute":
                c.muted = True
            else:
                try:
                    up_r, c.upstream = await asyncio.open_connection(*self.target)
                except OSError:
                    return
                if self.mode == "mute":  # muted while connecting
                    self._mute(c)
            if c.muted:
                await _swallow(reader)
                return
            assert c.upstream is not None
            c.tasks = [asyncio.create_task(self._pipe(reader, c.upstream, c, to_server=True)),
                       asyncio.create_task(self._pipe(up_r, writer, c, to_server=False))]
            await asyncio.gather(*c.tasks, return_exceptions=True)
        finally:
            self._conns.discard(c)
            for w in (writer, c.upstream):
                if w is not None:
                    w.close()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, c: _Conn, to_server: bool) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUED)
        sender = asyncio.create_task(self._send(queue, w, c))
        try:
            while True:
                try:
                    data = await r.read(_CHUNK)
                except OSError:
                    data = b""
                if not data:
                    break
                if c.muted:
                    if to_server:
                        continue  # read and forgotten: the hung server never answers
                    return
                await queue.put((time.monotonic() + self.latency, data))
            if c.muted:  # no end of stream either: the client's socket stays open and silent
                return
            await queue.put((0.0, b""))  # end of stream, after what is queued
            await sender
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, ConnectionError):
                await sender

    async def _send(self, queue: asyncio.Queue[tuple[float, bytes]], w: asyncio.StreamWriter, c: _Conn) -> None:
        while True:
            due, data = await queue.get()
            if not data:
                with contextlib.suppress(OSError):
                    w.write_eof()
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._flowing.wait()
            if c.muted:
                continue
            w.write(data)
            await w.drain()


async def _swallow(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(OSError):
        while await reader.read(_CHUNK):
            pass


def _reset(w: asyncio.StreamWriter) -> None:
    sock = w.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.close()
