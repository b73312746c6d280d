"""A TCP fault proxy on loopback: forwards ``127.0.0.1:<port>`` to a target and injects faults.

Modes (set :attr:`FaultProxy.mode` at any time):

- ``pass``: bytes flow both ways;
- ``blackhole``: nothing is forwarded in either direction and no reset is sent (like packets dropped
  on the wire): connections stall, and once the mode is ``pass`` again they go on where they
  stopped, as TCP retransmission would; new connections are accepted but hear nothing;
- ``reset``: every connection is closed with a reset (SO_LINGER 0), new ones too.

``latency`` (seconds) delays every chunk forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.latency = 0.0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def set_mode(self, mode: str) -> None:
        if mode not in ("pass", "blackhole", "reset"):
            raise ValueError(mode)
        self.mode = mode
        if mode == "pass":
            self._flowing.set()
        else:
            self._flowing.clear()
        if mode == "reset":
            for w in list(self._writers):
                _reset(w)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            _reset(writer)
            return
        self._writers.add(writer)
        try:
            await self._flowing.wait()  # a black hole: the handshake is done, nothing else happens
            if self.mode == "reset":
                _reset(writer)
                return
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_w)
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)
        for w in (writer, up_w):
            self._writers.discard(w)
            w.close()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            data = await r.read(65536)
            if not data:
                break
            await self._flowing.wait()
            if self.latency:
                await asyncio.sleep(self.latency)
            w.write(data)
            await w.drain()
        with contextlib.suppress(OSError):
            w.write_eof()


def _reset(w: asyncio.StreamWriter) -> None:
    sock = w.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.close()
