"""Where dev services keep downloads (cache) and their data, pid files and logs (state).

The cache survives ``logpipe dev down --purge``; the state folder does not. As root both live under
``/var`` rather than ``/root`` (mode 0700), because Elasticsearch runs as its own unprivileged user and
must read its distribution and own its data. ``LOGPIPE_CACHE_DIR`` and ``LOGPIPE_STATE_DIR`` override.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _default_cache() -> Path:
    if os.geteuid() == 0:
        return Path("/var/cache/logpipe")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "logpipe"


def _default_state() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/logpipe/dev")
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "logpipe" / "dev"


@dataclass(frozen=True)
class DevPaths:
    """The cache (downloads, unpacked distributions) and state (data, pids, logs) folders."""

    cache: Path
    state: Path

    @classmethod
    def from_env(cls) -> DevPaths:
        """Paths from ``LOGPIPE_CACHE_DIR`` / ``LOGPIPE_STATE_DIR`` or the defaults."""
        cache = os.environ.get("LOGPIPE_CACHE_DIR")
        state = os.environ.get("LOGPIPE_STATE_DIR")
        return cls(
            cache=Path(cache) if cache else _default_cache(),
            state=Path(state) if state else _default_state(),
        )

    def service_state(self, name: str) -> Path:
        """The state folder of one service (its data, config and log)."""
        return self.state / name

    def pidfile(self, name: str) -> Path:
        """The pid file of one service."""
        return self.state / "run" / f"{name}.pid"

    @property
    def in_use(self) -> Path:
        """The file tests lock shared while using services, and exclusive while stopping one."""
        return self.state / "in-use.lock"

    @property
    def lock(self) -> Path:
        """The file that serialises ``up``/``down``/``start``/``stop`` across processes."""
        return self.state / "services.lock"
