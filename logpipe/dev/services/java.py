"""Finding a Java runtime of the version a service needs (Kafka: 17+, Elasticsearch: 21+)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from logpipe.dev.services.errors import JavaNotFoundError

JVM_ROOT = Path("/usr/lib/jvm")
_VERSION = re.compile(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class JavaHome:
    """A JDK/JRE folder and its feature version (17, 21, 25, ...)."""

    home: Path
    major: int

    @property
    def java(self) -> Path:
        """The ``java`` launcher."""
        return self.home / "bin" / "java"


def java_major(home: Path) -> int | None:
    """Feature version of the Java in ``home``, read from its ``release`` file."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        m = _VERSION.match(line)
        if m:
            major = int(m.group(1))
            return int(m.group(2) or 0) if major == 1 else major  # "1.8" means 8
    return None


def _candidates(env_vars: tuple[str, ...]) -> list[Path]:
    homes: list[Path] = []
    for var in env_vars:
        if os.environ.get(var):
            homes.append(Path(os.environ[var]))
    on_path = shutil.which("java")
    if on_path:
        homes.append(Path(os.path.realpath(on_path)).parent.parent)
    if JVM_ROOT.is_dir():
        homes += sorted((p for p in JVM_ROOT.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True)
    return homes


def find_java(min_major: int, *, service: str, env_vars: tuple[str, ...] = ("JAVA_HOME",)) -> JavaHome:
    """The first Java >= ``min_major``: from ``env_vars``, then ``java`` on PATH, then /usr/lib/jvm/*."""
    seen: list[str] = []
    for home in _candidates(env_vars):
        major = java_major(home)
        if major is None or not (home / "bin" / "java").exists():
            continue
        seen.append(f"{home} (Java {major})")
        if major >= min_major:
            return JavaHome(home, major)
    found = "; found: " + ", ".join(seen) if seen else "; no Java found"
    raise JavaNotFoundError(
        f"{service} needs Java {min_major} or newer{found} — install one (e.g. a Temurin JDK under "
        f"{JVM_ROOT}) or point {env_vars[0]} at it"
    )
