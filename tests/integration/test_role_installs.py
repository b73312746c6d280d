"""One install per role, for real: each role's extra installed into a fresh virtual environment.

The tree is built into wheels the way the Dockerfiles build it (``LOGPIPE_NATIVE=0``: pure Python,
no C extension; ``LOGPIPE_NATIVE=1``: with it), each role is installed from them into its own venv,
and in that venv every module of the role imports, its ``logpipe`` verbs answer ``--help``, and
the other roles' libraries are absent. The dependencies come from a wheelhouse under the logpipe
cache dir (filled from the package index the first time, offline afterwards).

Each role's installed size is printed (``-s`` shows it); docs/ARCHITECTURE.md records the figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from logpipe.dev.services.paths import DevPaths

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("logpipe", "shipper", "consumer", "parsers")


@dataclass(frozen=True)
class Role:
    extras: str
    native: bool
    packages: tuple[str, ...]  # every module under these must import...
    verbs: tuple[str, ...]  # `logpipe VERB --help` must answer
    present: tuple[str, ...]
    absent: tuple[str, ...]
    others: tuple[str, ...] = ()  # ...except those under these (another extra's)
    # `logpipe ARGS...` that must exit 0, run in the repository; {access_log} is a small access log
    runs: tuple[tuple[str, ...], ...] = ()


ROLES = {
    "shipper": Role(
        "shipper",
        False,
        ("shipper", "parsers", "logpipe.core"),
        ("ship",),
        ("watchdog",),  # the Kafka client: whichever shipper/sinks/kafka imports (every module must import)
        ("duckdb", "elasticsearch", "aliyun", "parsers._access_encoder", "ruamel.yaml"),
        others=("shipper.sinks.sls",),
    ),
    "shipper+sls": Role(
        "shipper,sls", False, ("shipper.sinks.sls",), ("ship",), ("aliyun",), ("duckdb", "parsers._access_encoder")
    ),
    "consumer": Role(
        "consumer",
        True,
        ("consumer", "parsers", "logpipe.core"),
        ("consume", "alerts"),
        ("elasticsearch", "aiokafka", "parsers._access_encoder"),
        ("duckdb", "watchdog", "aliyun"),
        others=("consumer.sources.sls",),
    ),
    "tools": Role(
        "tools",
        False,
        ("logpipe.tools",),
        ("query", "search", "trace", "config"),
        ("duckdb", "elasticsearch"),
        ("aiokafka", "confluent_kafka", "watchdog", "aliyun", "parsers._access_encoder"),
        runs=(
            ("config", "check", "examples/shipper.yaml"),
            ("config", "check", "examples/consumer.yaml"),
            ("query", "{access_log}", "--by", "status", "--format", "json"),
        ),
    ),
}

PROBE = textwrap.dedent(
    """
    import importlib, importlib.util, pkgutil, sys
    packages, present, absent, others = (sys.argv[i].split(",") for i in (1, 2, 3, 4))
    failed = []
    for name in packages:
        pkg = importlib.import_module(name)
        mods = [name] + [m.name for m in pkgutil.walk_packages(pkg.__path__, name + ".")]
        for mod in mods:
            if any(mod == o or mod.startswith(o + ".") for o in others if o):
                continue
            try:
                importlib.import_module(mod)
            except Exception as exc:
                failed.append(f"{mod}: {type(exc).__name__}: {exc}")
    def found(m):
        try:
            return importlib.util.find_spec(m) is not None
        except ModuleNotFoundError:
            return False
    failed += [f"{m}: missing" for m in present if not found(m)]
    failed += [f"{m}: installed" for m in absent if found(m)]
    print("\\n".join(failed))
    sys.exit(1 if failed else 0)
    """
)


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    env.update(kw.pop("env", {}))  # type: ignore[call-overload]
    return subprocess.run(args, capture_output=True, text=True, env=env, **kw)  # type: ignore[call-overload]


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 0, f"{what} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """(the pure wheel, the wheel with the C extension, the dependency wheelhouse)."""
    work = tmp_path_factory.mktemp("roles")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in PACKAGES:  # the sources only: no in-place built .so, no build/ of an earlier build
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info"))
    house = DevPaths.from_env().cache / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    if not any(house.glob("setuptools-*.whl")):
        _check(_run(_pip("wheel", "-q", "-w", str(house), "setuptools>=68", "wheel")), "pip wheel setuptools")
    built = {}
    for native in ("0", "1"):
        out = work / f"dist-{native}"
        offline = ["--no-index", "--find-links", str(house)]
        build = _pip("wheel", "-q", "--no-deps", *offline, "-w", str(out), str(src))
        _check(_run(build, env={"LOGPIPE_NATIVE": native}), f"LOGPIPE_NATIVE={native} pip wheel")
        (built[native],) = out.glob("logpipe-*.whl")
    assert built["0"].name.endswith("-py3-none-any.whl"), built["0"].name  # pure: no extension inside
    assert "-cp311-" in built["1"].name, built["1"].name
    all_extras = f"{built['1']}[shipper,sls,consumer,tools]"
    # `pip wheel -w house` saves logpipe's own wheel there too; an earlier tree's copy (same file name)
    # would be taken as "already downloaded" and its old dependency list used instead of this tree's.
    for stale in house.glob("logpipe-*.whl"):
        stale.unlink()
    complete = _pip("download", "-q", "--no-index", "--find-links", str(house), "-d", str(work / "probe"), all_extras)
    if _run(complete).returncode:  # a dependency not in the wheelhouse yet: fetch what is missing
        _check(_run(_pip("wheel", "-q", "-w", str(house), all_extras)), "pip wheel (the wheelhouse)")
        for ours in house.glob("logpipe-*.whl"):
            ours.unlink()
    yield built["0"], built["1"], house


def _site_size(venv: Path) -> int:
    (site,) = venv.glob("lib/python*/site-packages")
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@pytest.mark.parametrize("name", list(ROLES))
def test_each_role_installs_alone_and_runs(name: str, wheels: tuple[Path, Path, Path], tmp_path: Path) -> None:
    role = ROLES[name]
    pure, native, house = wheels
    venv = tmp_path / "venv"
    _check(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)]), "python -m venv")
    py = venv / "bin" / "python"
    wheel = native if role.native else pure
    install = _pip("--python", str(py), "install", "-q", "--no-index", "--find-links", str(house))
    _check(_run([*install, f"{wheel}[{role.extras}]"]), f"pip install [{role.extras}]")

    lists = [",".join(names) for names in (role.packages, role.present, role.absent, role.others)]
    probe = _run([str(py), "-c", PROBE, *lists], cwd=tmp_path)
    _check(probe, f"the {name} install's imports")
    for verb in role.verbs:
        _check(_run([str(venv / "bin" / "logpipe"), verb, "--help"], cwd=tmp_path), f"logpipe {verb} --help")
    access_log = tmp_path / "access.log"
    access_log.write_text("".join(
        f'{{"time":"2026-11-27T10:00:0{i}Z","status":{200 + 300 * (i % 2)},"path":"/api/pay","request_time":0.01}}\n'
        for i in range(5)
    ))
    for args in role.runs:
        cmd = [str(venv / "bin" / "logpipe"), *(a.format(access_log=access_log) for a in args)]
        proc = _run(cmd, cwd=ROOT)
        _check(proc, " ".join(cmd))
        if args[0] == "query":  # DuckDB answered, with the right counts
            assert sorted(proc.stdout.split()) == ['{"status":200,"count":3}', '{"status":500,"count":2}'], proc.stdout
    print(f"\n{name}: installed size {_site_size(venv) / 2**20:.0f} MiB (site-packages, .pyc excluded)")
