"""Elasticsearch 9 from the integ-test zip on Maven Central, single node, run as an unprivileged user.

The integ-test distribution holds only the core modules (no painless, analysis-common, data streams,
ingest-common, ILM): enough for plain indices, mappings, bulk indexing, search and aggregations.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import zipfile
from pathlib import Path

from logpipe.dev.services.errors import DevServiceError
from logpipe.dev.services.java import find_java
from logpipe.dev.services.maven import Artifact, copy_dependencies
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.service import LocalService, Report, _silent

ES_VERSION = "9.5.2"
DIST_GROUP = "org.elasticsearch.distribution.integ-test-zip"
HEAP = "1g"
RUN_AS = "logpipe-es"  # Elasticsearch refuses to run as root


def unzip(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into ``dest`` keeping the files' permission bits (zipfile drops them)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)


def ensure_user(name: str) -> None:
    """Create the system user ``name`` (no home, no shell) unless it exists."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 and done.returncode != 9:  # 9: created meanwhile by a concurrent caller
        raise DevServiceError(f"cannot create the user {name} for Elasticsearch: {done.stderr.strip()}")


def chown_tree(path: Path, user: str) -> None:
    """Give ``path`` and everything below it to ``user``."""
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for entry in dirs + files:
            os.chown(os.path.join(root, entry), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


class ElasticsearchService(LocalService):
    """A single-node Elasticsearch on 127.0.0.1 (HTTP ``port``, transport ``transport_port``)."""

    name = "elasticsearch"
    start_timeout = 240.0

    def __init__(
        self, paths: DevPaths, report: Report = _silent, port: int = 9200, transport_port: int = 9300
    ) -> None:
        super().__init__(paths, report)
        self.port = port
        self.transport_port = transport_port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports(self) -> list[int]:
        return [self.port, self.transport_port]

    @property
    def user(self) -> str | None:
        return RUN_AS if os.geteuid() == 0 else None

    @property
    def home(self) -> Path:
        """The unpacked distribution in the cache (read-only for the service)."""
        return self.paths.cache / "elasticsearch" / ES_VERSION / f"elasticsearch-{ES_VERSION}"

    def provision(self) -> None:
        if (self.home / "bin" / "elasticsearch").exists():
            return
        base = self.paths.cache / "elasticsearch" / ES_VERSION
        downloads = base / "download"
        archive = downloads / f"elasticsearch-{ES_VERSION}.zip"
        if not archive.exists():
            self.report(f"fetching Elasticsearch {ES_VERSION} with mvn (first run only)...")
            dist = Artifact(DIST_GROUP, "elasticsearch", ES_VERSION, "zip")
            copy_dependencies(
                [dist],
                downloads,
                base / "mvn",
            )
        tmp = base / f"unpack.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        unzip(archive, tmp)
        os.replace(tmp / f"elasticsearch-{ES_VERSION}", self.home)
        shutil.rmtree(tmp, ignore_errors=True)
        # The service user must reach the distribution through every parent folder.
        for folder in (self.paths.cache, base.parent, base):
            folder.chmod(folder.stat().st_mode | 0o755)

    @property
    def _config(self) -> Path:
        return self.state_dir / "config"

    def elasticsearch_yml(self) -> str:
        """Single node on loopback, no security, no disk watermarks (a full disk must not block tests)."""
        settings = {
            "cluster.name": "logpipe-dev",
            "node.name": "logpipe-dev-1",
            "path.data": str(self.state_dir / "data"),
            "path.logs": str(self.state_dir / "logs"),
            "network.host": "127.0.0.1",
            "http.port": str(self.port),
            "transport.port": str(self.transport_port),
            "discovery.type": "single-node",
            "xpack.security.enabled": "false",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.destructive_requires_name": "false",
        }
        return "".join(f"{k}: {v}\n" for k, v in settings.items())

    def prepare(self) -> None:
        for sub in ("data", "logs", "tmp"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        if not (self._config / "jvm.options").exists():
            shutil.copytree(self.home / "config", self._config, dirs_exist_ok=True)
        (self._config / "elasticsearch.yml").write_text(self.elasticsearch_yml())
        self.paths.state.chmod(self.paths.state.stat().st_mode | 0o755)
        user = self.user
        if user is not None:
            ensure_user(user)
            chown_tree(self.state_dir, user)
            for folder in (self.paths.state, *self.paths.state.parents):
                if folder == Path("/"):
                    break
                if not os.access(folder, os.X_OK) or folder.stat().st_mode & 0o001 == 0:
                    raise DevServiceError(
                        f"{folder} is not reachable for the user {user} that runs Elasticsearch — "
                        "set LOGPIPE_STATE_DIR to a folder outside it"
                    )

    def command(self) -> list[str]:
        return [str(self.home / "bin" / "elasticsearch")]

    def environment(self) -> dict[str, str]:
        java = find_java(21, service="Elasticsearch", env_vars=("LOGPIPE_ES_JAVA_HOME", "ES_JAVA_HOME"))
        env = super().environment()
        env.update(
            ES_JAVA_HOME=str(java.home),
            ES_PATH_CONF=str(self._config),
            ES_TMPDIR=str(self.state_dir / "tmp"),
            ES_JAVA_OPTS=f"-Xms{HEAP} -Xmx{HEAP}",
        )
        return env
