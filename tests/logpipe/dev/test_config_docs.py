"""docs/CONFIG.md is the generator's output, every field is documented, and the generator reads models right."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field

from logpipe.core.config_base import StrictModel
from logpipe.core.durations import Duration
from logpipe.dev.config_docs import (
    REGENERATE,
    field_docstring,
    format_duration,
    render,
    undocumented_fields,
    walk,
)
from logpipe.tools.config_kinds import KINDS

ROOT = Path(__file__).resolve().parents[3]


def test_config_md_is_the_generators_output() -> None:
    current = (ROOT / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    expected = render()
    if current != expected:
        diff = "".join(
            list(difflib.unified_diff(current.splitlines(True), expected.splitlines(True), "docs/CONFIG.md", "models"))[
                :40
            ]
        )
        pytest.fail(f"docs/CONFIG.md is out of date with the models — fix: run `{REGENERATE}`\n{diff}")


def test_the_module_entry_point_prints_the_reference() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "logpipe.dev.config_docs"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    )
    assert out.stdout == render()


def test_every_field_of_every_model_has_a_docstring() -> None:
    missing = undocumented_fields()
    if missing:
        pytest.fail(
            f"{len(missing)} config field(s) have no docstring — fix: write a string literal under each field:\n  "
            + "\n  ".join(missing)
        )


def test_every_kind_has_a_section_and_an_example_in_the_docs() -> None:
    text = render()
    for kind in KINDS.values():
        assert f"## {kind.title}\n" in text
        assert f"]({'../' + kind.example})" in text
        assert (ROOT / kind.example).is_file(), f"{kind.example} is linked from the docs but missing"


# ------------------------------------------------------------------------------- a model of our own


class _Base(StrictModel):
    """Shared knobs."""

    rate: int = Field(default=30, ge=1)
    """Notifications per minute."""


class _Hook(_Base):
    """A webhook."""

    type: Literal["hook"]
    url: str
    """Where to post."""
    rate: int = Field(default=600, ge=1)


class _Mail(_Base):
    """An email."""

    type: Literal["mail"]
    to: list[str] = Field(min_length=1)
    """Recipients."""


class _Inner(StrictModel):
    """The inner section."""

    wait: Duration = 0.25
    """How long to wait."""
    grace: Duration | None = 600.0
    """Grace, or null."""


class _Story(StrictModel):
    """A file of our own."""

    level: Literal["low", "high"] = "low"
    """How loud."""
    tags: list[str] = Field(default_factory=lambda: ["a", "b"])
    """Some tags."""
    host: str = Field(default_factory=lambda: "computed-per-machine")
    """The host (computed)."""
    inner: _Inner = Field(default_factory=_Inner)
    outs: dict[str, Annotated[_Hook | _Mail, Field(discriminator="type")]] = Field(default_factory=dict)
    """Named outputs."""
    primary: _Hook | _Mail | None = Field(default=None, discriminator="type")
    """The main output."""
    items: list[_Inner] = Field(default_factory=list)
    """Inner items."""
    sender: str = Field(default="me", alias="from")
    """Sender address."""


def _rows() -> dict[str, tuple[str, str, str]]:
    return {
        (f"{s.path}.{r.key}" if s.path else r.key) + (f" [{s.label}]" if s.label else ""): (r.type, r.default, r.doc)
        for s in walk("story", _Story)
        for r in s.rows
    }


def test_rows_carry_dotted_paths_readable_types_yaml_defaults_and_docstrings() -> None:
    rows = _rows()
    assert rows["level"] == ("one of `low`, `high`", "`low`", "How loud.")
    assert rows["tags"] == ("list of string", "`[a, b]`", "Some tags.")
    assert rows["inner.wait"] == ("duration (e.g. 30s)", "`250ms`", "How long to wait.")
    assert rows["inner.grace"] == ("duration (e.g. 30s) or null", "`10m`", "Grace, or null.")
    assert rows["items[].wait"][0] == "duration (e.g. 30s)"
    assert rows["from"] == ("string", "`me`", "Sender address.")  # the alias is what YAML holds


def test_a_section_without_a_docstring_is_described_by_its_class() -> None:
    rows = _rows()
    assert rows["inner"][2] == "The inner section."
    assert rows["inner"][0].startswith("section ([below](#story-inner))")


def test_a_discriminated_union_is_one_section_per_variant_with_inherited_docstrings() -> None:
    rows = _rows()
    assert rows["outs"][0].startswith("mapping of names to sections; `type` selects one of: hook, mail")
    assert rows["outs.<name>.url [type: hook]"] == ("string", "**required**", "Where to post.")
    # a subclass that only changes a default keeps its base's docstring
    assert rows["outs.<name>.rate [type: hook]"] == ("integer, >= 1", "`600`", "Notifications per minute.")
    assert rows["outs.<name>.rate [type: mail]"][1] == "`30`"
    assert rows["outs.<name>.to [type: mail]"][0] == "list of string, at least 1 item"
    assert field_docstring(_Hook, "rate") == "Notifications per minute."
    # a union field discriminated with Field(discriminator=...) on the field itself
    assert rows["primary"][0].startswith("section; `type` selects one of: hook, mail")
    assert rows["primary"][0].endswith(" or null")
    assert rows["primary.url [type: hook]"][2] == "Where to post."


def test_a_scalar_computed_by_a_factory_is_not_printed() -> None:
    # the docs must not depend on the machine that generated them (node_name is the host name)
    assert _rows()["host"][1] == "computed at start"


def test_the_shipper_node_name_default_is_not_this_machines_host_name() -> None:
    assert "| `node_name` | string | computed at start |" in render()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.005, "5ms"), (0.25, "250ms"), (1.0, "1s"), (90.0, "90s"), (300.0, "5m"), (86400.0, "1d"), (0.0, "0s")],
)
def test_durations_are_written_as_a_reader_would(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
