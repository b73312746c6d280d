"""Prometheus Alertmanager from the Debian package, run with our own config on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess

from logpipe.dev.services.errors import DevServiceError
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.service import LocalService, Report, _silent

PACKAGE = "prometheus-alertmanager"
BINARIES = ("prometheus-alertmanager", "alertmanager")

# Alerts go nowhere: tests read them back through the API, nothing needs delivering.
CONFIG = """\
route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
"""


def find_binary() -> str | None:
    """The Alertmanager executable on PATH (Debian names it prometheus-alertmanager)."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=900)


class AlertmanagerService(LocalService):
    """Alertmanager with a null receiver; clustering off; data under the state folder."""

    name = "alertmanager"
    start_timeout = 60.0

    def __init__(self, paths: DevPaths, report: Report = _silent, port: int = 9093) -> None:
        super().__init__(paths, report)
        self.port = port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports(self) -> list[int]:
        return [self.port]

    def provision(self) -> None:
        if find_binary():
            return
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise DevServiceError(f"Alertmanager is not installed — run: apt-get install -y {PACKAGE}")
        self.report(f"installing {PACKAGE} with apt-get (first run only)...")
        done = _apt("install", "-y", "-q", PACKAGE)
        if done.returncode != 0:  # a fresh machine may need its package lists first
            _apt("update", "-q")
            done = _apt("install", "-y", "-q", PACKAGE)
        if done.returncode != 0 or not find_binary():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
            raise DevServiceError(f"apt-get install {PACKAGE} failed:\n{tail}")

    def prepare(self) -> None:
        (self.state_dir / "data").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "alertmanager.yml").write_text(CONFIG)

    def command(self) -> list[str]:
        binary = find_binary()
        if binary is None:
            raise DevServiceError(f"Alertmanager is not installed — run: apt-get install -y {PACKAGE}")
        return [
            binary,
            f"--config.file={self.state_dir / 'alertmanager.yml'}",
            f"--storage.path={self.state_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
