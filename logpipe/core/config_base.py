"""Typed YAML configuration: strict models and start-up errors that name the key and the fix.

Every configuration model in the project derives from :class:`StrictModel`, so an unknown or
misspelt key is an error rather than a silently ignored setting (Vector's ``deny_unknown_fields``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for config models: unknown keys are rejected, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(Exception):
    """An invalid configuration; ``errors`` holds one line per problem: ``key.path: what — fix``."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors))

    def render(self) -> str:
        lines = [f"invalid configuration in {self.source}:"]
        lines += [f"  - {e}" for e in self.errors]
        return "\n".join(lines)


_FIXES = {
    "extra_forbidden": "remove it, or check its spelling against docs/CONFIG.md",
    "missing": "add this key",
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "float_parsing": "use a number",
    "bool_parsing": "use true or false",
    "string_type": "use a string (quote it in YAML)",
    "list_type": "use a YAML list",
    "dict_type": "use a YAML mapping",
    "literal_error": "use one of the allowed values",
    "enum": "use one of the allowed values",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
}


def format_validation_error(exc: ValidationError) -> list[str]:
    """One readable line per pydantic error: the dotted key path, the problem and a fix."""
    out: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        fix = _FIXES.get(err["type"])
        out.append(f"{loc}: {msg}" + (f" — fix: {fix}" if fix and "fix:" not in msg else ""))
    return out


def validate_mapping(model: type[M], data: Any, source: str) -> M:
    """Validate already-parsed data into ``model`` or raise :class:`ConfigError`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["<root>: the file must hold a YAML mapping — fix: use `key: value` lines"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_validation_error(exc)) from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file, turning syntax errors into :class:`ConfigError` with the line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [f"<file>: cannot read it ({exc.strerror}) — fix: check the path"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        # problem/context, not str(exc): that repeats the position as `in "<unicode string>"` lines.
        what = " ".join(str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x)
        raise ConfigError(str(p), [f"<yaml>: syntax error at {where}: {what or exc}"]) from None


def load_model(model: type[M], path: str | Path | None) -> M:
    """Load ``path`` into ``model``; with no path the model's defaults apply (a local run needs none)."""
    if path is None:
        return model()
    return validate_mapping(model, read_yaml(path), str(path))
