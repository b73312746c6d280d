"""Fetching distributions from Maven Central with ``mvn`` and a throwaway pom."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from logpipe.dev.services.errors import MavenError


@dataclass(frozen=True)
class Artifact:
    """Maven coordinates of one dependency."""

    group: str
    artifact: str
    version: str
    type: str = "jar"

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}:{self.type}"


def _pom(artifacts: Sequence[Artifact]) -> str:
    deps = "\n".join(
        f"    <dependency><groupId>{a.group}</groupId><artifactId>{a.artifact}</artifactId>"
        f"<version>{a.version}</version><type>{a.type}</type></dependency>"
        for a in artifacts
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>logpipe.dev.services</groupId>
  <artifactId>fetch</artifactId>
  <version>1</version>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def copy_dependencies(
    artifacts: Sequence[Artifact], dest: Path, workdir: Path, *, timeout: float = 1800
) -> None:
    """Download ``artifacts`` and their runtime dependencies into ``dest`` (jars/zips, flat)."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenError("mvn is not installed — install Maven (apt-get install -y maven)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "pom.xml").write_text(_pom(artifacts))
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(workdir / "pom.xml"),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={dest}",
    ]
    names = ", ".join(map(str, artifacts))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MavenError(f"mvn took longer than {timeout:.0f} s fetching {names}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise MavenError(
            f"mvn failed (exit {done.returncode}) fetching {names}; last lines:\n{tail}"
        )
