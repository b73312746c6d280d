"""The packages form layers and import only downward (docs/ARCHITECTURE.md, "Layers").

core <- parsers <- shipper | consumer <- tools <- dev <- cli. The two agents are peers: neither
imports the other, so each installs and runs without the other's dependencies. An import inside a
function counts too: a lazy import is still a dependency of the module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS: list[tuple[str, ...]] = [
    ("logpipe.core",),
    ("parsers",),
    ("shipper", "consumer"),
    ("logpipe.tools",),
    ("logpipe.dev",),
    ("logpipe.cli",),
]


def _layer(module: str) -> tuple[int, str] | None:
    for rank, names in enumerate(LAYERS):
        for name in names:
            if module == name or module.startswith(name + "."):
                return rank, name
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from logpipe import tools`` names a package through its parent
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def _violations() -> list[str]:
    bad: list[str] = []
    for top in ("logpipe", "parsers", "shipper", "consumer"):
        for path in sorted((ROOT / top).rglob("*.py")):
            mine = _layer(_module_name(path))
            if mine is None:
                if _module_name(path) not in ("logpipe",):
                    bad.append(f"{path.relative_to(ROOT)}: in no layer (put it under logpipe/core, tools, dev or cli)")
                continue
            for lineno, target in _imports(path):
                theirs = _layer(target)
                if theirs is None:
                    continue
                if theirs[0] > mine[0] or (theirs[0] == mine[0] and theirs[1] != mine[1]):
                    bad.append(f"{path.relative_to(ROOT)}:{lineno} ({mine[1]}) imports {target} ({theirs[1]})")
    return bad


def test_every_import_points_down_a_layer() -> None:
    assert _violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a core module importing the CLI is reported."""
    src = "from logpipe.cli.main import app\n"
    probe = tmp_path / "probe.py"
    probe.write_text(src)
    targets = [target for _lineno, target in _imports(probe)]
    assert "logpipe.cli.main" in targets
    assert _layer("logpipe.cli.main") == (5, "logpipe.cli")
    assert _layer("logpipe.core.envelope") == (0, "logpipe.core")
    assert _layer("consumer.app") == (2, "consumer")
    assert _layer("shipper.agent") == (2, "shipper")
