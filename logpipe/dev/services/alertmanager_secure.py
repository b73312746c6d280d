"""The real Alertmanager with its own ``--web.config.file``: TLS and basic auth (a bcrypt hash).

For tests and local trials of a secured Alertmanager; the usual one (``alertmanager.py``) stays
open. Certificates come from the dev CA (``tls.py``), the password is random and kept in a file,
and the web config holds only its bcrypt hash, as Alertmanager's documentation asks.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

import yaml

from logpipe.dev.services.alertmanager import CONFIG, find_binary
from logpipe.dev.services.errors import DevServiceError, ServiceStartError
from logpipe.dev.services.tls import ensure_ca, issue

USER = "logpipe"


@dataclass(frozen=True)
class SecuredAlertmanager:
    """How to reach it (the password only as a file)."""

    url: str
    ca_file: Path
    username: str
    password_file: Path


class SecureAlertmanager:
    """One Alertmanager process on ``port`` with TLS and basic auth, state in ``folder``."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> SecuredAlertmanager:
        import bcrypt  # the dev extra: only this test rig needs it

        f = self.folder
        (f / "data").mkdir(parents=True, exist_ok=True)
        ca = ensure_ca(f / "tls", "logpipe dev Alertmanager CA")
        cert = issue(f / "tls", "alertmanager", ["localhost"], ca)
        pw_file = f / "secrets" / "alertmanager-password"
        if not pw_file.exists():
            pw_file.parent.mkdir(parents=True, exist_ok=True)
            pw_file.write_text(secrets.token_urlsafe(16))
        pw = pw_file.read_text().strip()
        web = {
            "tls_server_config": {"cert_file": str(cert.cert), "key_file": str(cert.key)},
            "basic_auth_users": {USER: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=10)).decode()},
        }
        (f / "web.yml").write_text(yaml.safe_dump(web))
        (f / "alertmanager.yml").write_text(CONFIG)
        return SecuredAlertmanager(f"https://localhost:{self.port}", ca[0], USER, pw_file)

    def start(self, timeout: float = 60.0) -> SecuredAlertmanager:
        binary = find_binary()
        if binary is None:
            raise DevServiceError("Alertmanager is not installed — run `logpipe dev up alertmanager` first")
        info = self._write_config()
        with open(self.folder / "alertmanager.out", "ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [binary, f"--config.file={self.folder / 'alertmanager.yml'}",
                 f"--storage.path={self.folder / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                 f"--web.config.file={self.folder / 'web.yml'}", "--cluster.listen-address=", "--log.level=warn"],
                stdout=log, stderr=log, cwd=self.folder,
            )
        ctx = ssl.create_default_context(cafile=str(info.ca_file))
        token = b64encode(f"{USER}:{info.password_file.read_text().strip()}".encode()).decode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.folder / "alertmanager.out").read_text(errors="replace")[-2000:]
                raise ServiceStartError(f"the secured Alertmanager exited:\n{tail}")
            req = urllib.request.Request(f"{info.url}/-/ready", headers={"Authorization": f"Basic {token}"})
            try:
                with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
                    if r.status == 200:
                        return info
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise ServiceStartError(f"the secured Alertmanager did not get ready on port {self.port} in {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
