"""The docs say what the code does: the defaults they name, the files they point at, the layers and extras.

A default is written in the docs as `` `key: value` in shipper.yaml `` (or consumer.yaml); every such
claim in the checked docs is compared with the default of the config model. Defaults that are not
config keys are listed in ``OTHER_CLAIMS`` with the code they come from.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from consumer.config import ConsumerConfig
from logpipe.core.durations import parse_duration
from logpipe.tools.search.search_command import DEFAULT_SINCE, SearchOptions
from shipper.config import ShipperConfig
from tests.logpipe.test_layers import LAYERS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("docs/ARCHITECTURE.md", "README.md", "deploy/README.md")
MODELS: dict[str, type[BaseModel]] = {"shipper.yaml": ShipperConfig, "consumer.yaml": ConsumerConfig}
CLAIM = re.compile(r"`([a-z_][\w.]*): ([^`]+)` in (shipper\.yaml|consumer\.yaml)")

# (doc, the phrase as the doc has it, the phrase built from the code's value)
OTHER_CLAIMS: list[tuple[str, str, str]] = [
    ("README.md", "search` looks at the last 15 minutes",
     f"search` looks at the last {parse_duration(DEFAULT_SINCE) / 60:g} minutes"),
    ("README.md", "newest 100 matches of the last 15 min",
     f"newest {SearchOptions().limit} matches of the last {parse_duration(DEFAULT_SINCE) / 60:g} min"),
]


def text(doc: str) -> str:
    # Claims may wrap across lines; join them the way a reader does.
    return re.sub(r"\s*\n\s*", " ", (ROOT / doc).read_text())


def default_of(model: type[BaseModel], key: str) -> Any:
    value: Any = model()
    for part in key.split("."):
        if not hasattr(value, part):
            raise AssertionError(f"{model.__name__} has no key {key!r}")
        value = getattr(value, part)
    return value


def same(value: Any, written: str) -> bool:
    if isinstance(value, bool):
        return written.lower() == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(written) == float(value)
        except ValueError:
            return parse_duration(written) == float(value)  # a Duration field: "10s" is 10.0
    return str(value) == written


def claims() -> list[tuple[str, str, str, str]]:
    return [(doc, *m.groups()) for doc in DOCS for m in CLAIM.finditer(text(doc))]


def test_every_default_the_docs_name_is_the_models_default() -> None:
    found = claims()
    wrong = [
        f"{doc}: `{key}: {written}` in {cfg}, but the default is {default_of(MODELS[cfg], key)!r}"
        for doc, key, written, cfg in found
        if not same(default_of(MODELS[cfg], key), written)
    ]
    assert wrong == []
    # The claims this check exists for are still written that way (deleting them would pass silently).
    keys = {(cfg, key) for _doc, key, _w, cfg in found}
    assert {("shipper.yaml", "kafka.compression"), ("shipper.yaml", "http.port"),
            ("consumer.yaml", "kafka.dead_letter_topic"), ("consumer.yaml", "http.port")} <= keys


@pytest.mark.parametrize(("doc", "phrase", "from_code"), OTHER_CLAIMS)
def test_other_defaults_the_docs_name(doc: str, phrase: str, from_code: str) -> None:
    assert phrase in text(doc), f"{doc} no longer says {phrase!r}: update OTHER_CLAIMS"
    assert phrase == from_code


def test_the_check_sees_a_wrong_default() -> None:
    (m,) = CLAIM.finditer("the sink compresses with lz4 (`kafka.compression: lz4` in shipper.yaml)")
    key, written, cfg = m.groups()
    assert not same(default_of(MODELS[cfg], key), written)
    assert same(default_of(ShipperConfig, "shutdown_grace"), "10s") == (ShipperConfig().shutdown_grace == 10.0)


def test_files_the_docs_point_at_exist() -> None:
    missing = []
    for doc in DOCS:
        bases = [ROOT, ROOT / "deploy", ROOT / "deploy/k8s"] if doc.startswith("deploy/") else [ROOT]
        for path in sorted(set(re.findall(r"`((?:[\w.-]+/)+[\w.-]*)`", (ROOT / doc).read_text()))):
            if path.startswith((".", "/")) or not re.search(r"\.(py|c|md|yaml|toml|sh)$|/$", path):
                continue
            if not any((base / path).exists() for base in bases):
                missing.append(f"{doc}: {path}")
    assert missing == []


def test_the_layers_section_names_the_layers_in_the_checkers_order() -> None:
    arch = (ROOT / "docs/ARCHITECTURE.md").read_text()
    section = arch[arch.index("## Layers"):arch.index("## 1.")]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| layer")]
    packages = [re.findall(r"`([\w/]+)/`", re.split(r"(?<!\\)\|", row)[2]) for row in rows]
    expected = [[name.replace(".", "/") for name in layer] for layer in LAYERS]
    assert packages == expected
    assert "core <- parsers <- shipper | consumer <- tools <- dev <- cli" in text("docs/ARCHITECTURE.md")


def test_the_install_section_lists_every_extra() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        extras = set(tomllib.load(f)["project"]["optional-dependencies"])
    arch = (ROOT / "docs/ARCHITECTURE.md").read_text()
    section = arch[arch.index("## 6. One install per role"):]
    named = set(re.findall(r"'\.\[([\w,]+)\]'", section))
    assert {e for group in named for e in group.split(",")} == extras
