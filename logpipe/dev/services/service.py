"""What a locally run service provides to the manager: how to provision, configure and start it."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from logpipe.dev.services.backend import ServiceName
from logpipe.dev.services.paths import DevPaths

Report = Callable[[str], None]


def _silent(_: str) -> None:
    return None


class LocalService(ABC):
    """One service run as a local process. Subclasses know their distribution, config and command."""

    name: ServiceName
    #: How long a start may take before it counts as failed (a busy 2-core machine is slow).
    start_timeout: float = 120.0
    #: Services that must be healthy before this one starts (``up`` starts them first).
    requires: tuple[ServiceName, ...] = ()

    def __init__(self, paths: DevPaths, report: Report = _silent) -> None:
        self.paths = paths
        self.report = report

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """What clients connect to, e.g. ``127.0.0.1:9092`` or ``http://127.0.0.1:9200``."""

    @property
    @abstractmethod
    def ports(self) -> list[int]:
        """Every port the service binds; the first is the one clients use."""

    @property
    def user(self) -> str | None:
        """The user to run as (None: the current user)."""
        return None

    @property
    def state_dir(self) -> Path:
        """This service's data, config and log folder."""
        return self.paths.service_state(self.name)

    @property
    def log(self) -> Path:
        """The file that collects the service's stdout and stderr."""
        return self.state_dir / f"{self.name}.out"

    @abstractmethod
    def provision(self) -> None:
        """Download and unpack the distribution into the cache unless already there."""

    @abstractmethod
    def prepare(self) -> None:
        """Write the configuration into the state folder and initialise data on the first run."""

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the service in the foreground."""

    def environment(self) -> dict[str, str]:
        """The process environment (a minimal copy of ours plus the service's variables)."""
        keep = ("PATH", "LANG", "LC_ALL", "TZ")
        return {k: os.environ[k] for k in keep if k in os.environ}

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the service's output, for error messages."""
        try:
            with open(self.log, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 16384))
                text = fh.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
