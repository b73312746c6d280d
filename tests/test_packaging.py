"""One install per role (pyproject.toml extras; docs/ARCHITECTURE.md, "One install per role").

Every third-party import of a module must be installed by its role's install: the base
dependencies plus the role's extra (and what those require in turn). A module that needs a new
library fails here until the library is added to the right extra. The installs themselves are
built into fresh virtual environments by tests/integration/test_role_installs.py.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"logpipe", "shipper", "consumer", "parsers"}

# (folder, the extras its modules may use beyond the base), most specific folder first.
ROLES: list[tuple[str, tuple[str, ...]]] = [
    ("shipper/sinks/sls", ("shipper", "sls")),
    ("consumer/sources/sls", ("consumer", "sls")),
    ("shipper", ("shipper",)),
    ("consumer", ("consumer",)),
    ("parsers", ()),
    ("logpipe/__init__.py", ()),
    ("logpipe/core", ()),
    ("logpipe/cli", ()),
    ("logpipe/tools", ("tools",)),
    ("logpipe/dev", ("dev",)),
]


def project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]  # type: ignore[no-any-return]


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    p = project()
    optional: dict[str, list[str]] = p["optional-dependencies"]  # type: ignore[assignment]
    texts = list(p["dependencies"])  # type: ignore[call-overload]
    for extra in extras:
        texts += optional[extra]
    out: list[Requirement] = []
    for text in texts:
        req = Requirement(text)
        if canonicalize_name(req.name) == "logpipe":  # dev = logpipe[shipper,sls,consumer,tools]
            out += declared(tuple(sorted(req.extras)))
        else:
            out.append(req)
    return out


@cache
def _requires(dist: str, extras: frozenset[str]) -> frozenset[str]:
    """``dist`` and every distribution it requires, recursively (as installed here)."""
    seen = {canonicalize_name(dist)}
    try:
        reqs = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return frozenset(seen)
    for text in reqs:
        req = Requirement(text)
        envs = [{"extra": e} for e in extras] or [{"extra": ""}]
        if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
            continue
        seen |= _requires(req.name, frozenset(req.extras))
    return frozenset(seen)


def installed_by(extras: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for req in declared(extras):
        out |= _requires(req.name, frozenset(req.extras))
    return out


def role_of(path: Path) -> tuple[str, tuple[str, ...]]:
    rel = path.relative_to(ROOT).as_posix()
    for folder, extras in ROLES:
        if rel == folder or rel.startswith(folder + "/"):
            return folder, extras
    raise AssertionError(f"{rel}: in no role of tests/test_packaging.py ROLES")


def third_party_imports(path: Path) -> set[str]:
    """Top-level names of the modules ``path`` imports (lazy imports count), first party and stdlib left out."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in FIRST_PARTY and n not in sys.stdlib_module_names and n != "__future__"}


@cache
def _providers() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    return {canonicalize_name(d) for d in _providers().get(module, [])}


def sources() -> list[Path]:
    return sorted(p for top in FIRST_PARTY for p in (ROOT / top).rglob("*.py"))


def test_every_import_is_installed_by_its_roles_install() -> None:
    bad = []
    for path in sources():
        _folder, extras = role_of(path)
        allowed = installed_by(extras)
        for module in sorted(third_party_imports(path)):
            dists = distributions_of(module)
            if not dists:
                bad.append(f"{path.relative_to(ROOT)}: imports {module}, which no installed distribution provides")
            elif not dists & allowed:
                extra = "+".join(("base", *extras))
                bad.append(f"{path.relative_to(ROOT)}: imports {module} ({', '.join(sorted(dists))}), not in {extra}")
    assert bad == []


@pytest.mark.parametrize(
    ("extras", "absent"),
    [
        (("shipper",), {"duckdb", "elasticsearch", "aliyun-log-python-sdk"}),
        (("consumer",), {"duckdb", "watchdog", "aliyun-log-python-sdk"}),
        (("tools",), {"aiokafka", "watchdog", "aliyun-log-python-sdk"}),
        ((), {"aiokafka", "elasticsearch", "duckdb", "watchdog", "aliyun-log-python-sdk", "ruamel-yaml"}),
    ],
)
def test_a_role_does_not_install_what_another_role_needs(extras: tuple[str, ...], absent: set[str]) -> None:
    assert installed_by(extras) & absent == set()


def test_dev_installs_every_role() -> None:
    dev = installed_by(("dev",))
    for extra in ("shipper", "sls", "consumer", "tools"):
        assert installed_by((extra,)) <= dev, extra


def test_the_check_sees_a_missing_dependency(tmp_path: Path) -> None:
    """The checker itself: DuckDB imported by a shipper module is not covered by the shipper's install."""
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom shipper import config\n\ndef f() -> None:\n    import duckdb.typing\n")
    assert third_party_imports(probe) == {"duckdb"}
    assert not distributions_of("duckdb") & installed_by(("shipper",))
    assert role_of(ROOT / "shipper/sinks/sls/service.py") == ("shipper/sinks/sls", ("shipper", "sls"))
