"""Sharing the services between test processes: outage tests wait until nobody else is using them.

Several engineers' pytest sessions use the same local services. A test that uses a service holds a
*shared* ``flock`` on one file while it runs; a test that stops a service first turns its lock into an
*exclusive* one, so it waits for other tests to finish and holds back new ones until it ends. Waits are
bounded: after ``timeout`` a test goes ahead anyway rather than hang the suite.
"""

from __future__ import annotations

import fcntl
import logging
import time
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class ServiceUseLock:
    """A readers-writer lock across processes (readers: tests using services; writer: an outage)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self.mode: str | None = None  # "shared", "exclusive" or None

    def _file(self) -> IO[str]:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a")  # held open across calls: the lock lives with it
        return self._fh

    def _try(self, op: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._file(), op | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.1)

    def shared(self, timeout: float = 300.0) -> None:
        """Use the services; waits while another process runs an outage test."""
        if self._try(fcntl.LOCK_SH, timeout):
            self.mode = "shared"
        else:
            log.warning("another test keeps the services stopped for over %.0f s; going ahead", timeout)
            self.mode = None

    def exclusive(self, timeout: float = 60.0) -> None:
        """Take the services for an outage; waits until no other process is using them."""
        if self.mode == "exclusive":
            return
        # Converting a flock is not atomic: on failure we hold nothing, so retake the shared lock.
        if self._try(fcntl.LOCK_EX, timeout):
            self.mode = "exclusive"
            return
        log.warning("other tests kept using the services for over %.0f s; stopping one anyway", timeout)
        self.shared()

    def release(self) -> None:
        """Let others go ahead."""
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
        self.mode = None
