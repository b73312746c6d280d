"""Finding who listens on a port, from /proc/net/tcp rows and from the live system."""

from __future__ import annotations

import os
import socket

from logpipe.dev.services.ports import parse_listeners, port_open, port_owner

# Rows as the kernel writes them: local address, remote address, state (0A = LISTEN), ..., inode.
ROWS = [
    "   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0",
    "   1: 0100007F:2384 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0",
    "   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1 0",
]


def test_only_listening_rows_of_the_port_count() -> None:
    assert parse_listeners(ROWS, 0x2384) == {4242}  # 9092; the ESTABLISHED row (01) is not a listener
    assert parse_listeners(ROWS, 80) == {5151}
    assert parse_listeners(ROWS, 9200) == set()


def test_owner_of_our_own_listening_socket_is_this_process() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        owner = port_owner(port)
        assert owner is not None
        assert owner.pid == os.getpid()
        assert f"port {port} (pid {os.getpid()}:" in owner.describe()
        assert port_open("127.0.0.1", port)
    assert port_owner(port) is None
    assert not port_open("127.0.0.1", port)
