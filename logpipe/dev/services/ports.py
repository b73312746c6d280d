"""Who listens on a TCP port: read from /proc (no extra tools), so errors can name the process."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"


@dataclass(frozen=True)
class PortOwner:
    """A process listening on a port (``pid`` is None when /proc does not tell, e.g. another user)."""

    port: int
    pid: int | None
    command: str | None

    def describe(self) -> str:
        """``"port 9092 (pid 123: java -cp ...)"``, or just the port when the owner is unknown."""
        if self.pid is None:
            return f"port {self.port} (owner not visible)"
        return f"port {self.port} (pid {self.pid}: {self.command or '?'})"


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[int]:
    """Socket inodes of TCP listeners on ``port`` (IPv4 and IPv6, any address)."""
    inodes: set[int] = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        inodes |= parse_listeners(lines, port)
    return inodes


def parse_listeners(lines: list[str], port: int) -> set[int]:
    """Inodes of LISTEN rows for ``port`` in /proc/net/tcp{,6} body lines."""
    found: set[int] = set()
    for line in lines:
        cols = line.split()
        if len(cols) < 10 or cols[3] != _LISTEN:
            continue
        local_port = int(cols[1].rsplit(":", 1)[1], 16)
        if local_port == port:
            found.add(int(cols[9]))
    return found


def _command(pid: int, proc: Path) -> str | None:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    text = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split())
    return text[:160] + ("..." if len(text) > 160 else "")


def port_owner(port: int, proc: Path = Path("/proc")) -> PortOwner | None:
    """The process listening on ``port``, or None when nothing listens there."""
    inodes = listening_inodes(port, proc)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(entry / "fd" / fd) in targets:
                    pid = int(entry.name)
                    return PortOwner(port, pid, _command(pid, proc))
            except OSError:
                continue
    return PortOwner(port, None, None)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
