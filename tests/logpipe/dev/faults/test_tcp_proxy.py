"""The fault proxy's modes against a real echo server on loopback (real sockets, no Kafka needed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from logpipe.dev.faults.tcp_proxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    p = FaultProxy("127.0.0.1", int(server.sockets[0].getsockname()[1]))
    await p.start()
    try:
        yield p
    finally:
        await p.stop()
        server.close()
        await server.wait_closed()


async def _connect(p: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", p.port)


async def _roundtrip(r: asyncio.StreamReader, w: asyncio.StreamWriter, data: bytes, timeout: float = 2.0) -> bytes:
    w.write(data)
    await w.drain()
    return await asyncio.wait_for(r.readexactly(len(data)), timeout)


async def test_pass_forwards_both_ways_and_end_of_stream(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    big = bytes(range(256)) * 4096  # 1 MiB, several chunks, in order
    assert await _roundtrip(r, w, big) == big
    w.write_eof()
    assert await asyncio.wait_for(r.read(), 2) == b""  # the server's close comes through
    w.close()


async def test_a_black_hole_stalls_without_a_reset_and_resumes_where_it_stopped(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    assert await _roundtrip(r, w, b"before") == b"before"
    proxy.set_mode("blackhole")
    w.write(b"during")
    await w.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(r.readexactly(6), 0.5)
    r2, w2 = await _connect(proxy)  # a new connection is accepted but hears nothing
    w2.write(b"new")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(r2.readexactly(3), 0.3)
    assert not w.is_closing()
    proxy.set_mode("pass")
    assert await asyncio.wait_for(r.readexactly(6), 2) == b"during"
    assert await asyncio.wait_for(r2.readexactly(3), 2) == b"new"
    w.close()
    w2.close()


async def test_reset_closes_open_and_new_connections(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    assert await _roundtrip(r, w, b"x") == b"x"
    proxy.set_mode("reset")
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(r.readexactly(1), 2)
    r2, w2 = await _connect(proxy)
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
        await _roundtrip(r2, w2, b"y")
    proxy.set_mode("pass")
    r3, w3 = await _connect(proxy)
    assert await _roundtrip(r3, w3, b"z") == b"z"
    for x in (w, w2, w3):
        x.close()


async def test_mute_reads_and_never_answers_and_keeps_the_socket_open(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    assert await _roundtrip(r, w, b"a") == b"a"
    proxy.set_mode("mute")
    w.write(b"request" * 10000)  # read and forgotten: the write does not block
    await asyncio.wait_for(w.drain(), 2)
    r2, w2 = await _connect(proxy)
    w2.write(b"hello")
    await w2.drain()
    for rd in (r, r2):  # no answer, and no end of stream either
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rd.read(1), 0.5)
    proxy.set_mode("pass")
    with pytest.raises(TimeoutError):  # a connection muted once stays mute
        await asyncio.wait_for(r.read(1), 0.5)
    r3, w3 = await _connect(proxy)
    assert await _roundtrip(r3, w3, b"fresh") == b"fresh"
    assert proxy.connections == 3
    w.close()
    w2.close()
    w3.close()
    await asyncio.sleep(0.2)
    assert proxy.connections == 0  # closing the client frees the muted connection


async def test_latency_delays_each_chunk_without_limiting_throughput(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    proxy.latency = 0.2
    began = time.monotonic()
    assert await _roundtrip(r, w, b"ping") == b"ping"
    rtt = time.monotonic() - began
    assert 0.4 <= rtt < 1.5  # 0.2 s each way

    # 40 writes spaced 10 ms apart: pipelined, they all arrive about one round trip later,
    # not 40 round trips later (a proxy sleeping per chunk would take 16 s)
    began = time.monotonic()
    for i in range(40):
        w.write(b"%03d" % i)
        await w.drain()
        await asyncio.sleep(0.01)
    got = await asyncio.wait_for(r.readexactly(120), 5)
    assert got == b"".join(b"%03d" % i for i in range(40))
    assert time.monotonic() - began < 2.5
    w.close()


async def test_a_fixed_listen_port_and_a_bad_mode() -> None:
    p = FaultProxy("127.0.0.1", 9)
    port = await p.start()
    await p.stop()
    fixed = FaultProxy("127.0.0.1", 9, listen_port=port)
    assert await fixed.start() == port  # reusable at once (a broker advertises this port)
    await fixed.stop()
    with pytest.raises(ValueError, match="one of pass"):
        fixed.set_mode("slow")
