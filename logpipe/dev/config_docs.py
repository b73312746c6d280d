"""The configuration reference (docs/CONFIG.md), generated from the models so it cannot drift.

Every key of every configuration file is listed with its dotted path, a readable type, its default
in YAML form and the docstring written under the field in the model's source (read with ``ast``:
the attribute docstrings Python itself discards). Regenerate with::

    python -m logpipe.dev.config_docs > docs/CONFIG.md      # or: logpipe config docs -o docs/CONFIG.md

``tests/logpipe/dev/test_config_docs.py`` fails when the file differs from the output, or when a field
has no docstring (:func:`undocumented_fields`).
"""

from __future__ import annotations

import ast
import enum
import functools
import inspect
import itertools
import re
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
import yaml
from pydantic import BaseModel, Discriminator, SecretStr, Tag
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from logpipe.core.durations import Duration
from logpipe.tools.config_kinds import KINDS, ConfigKind

# The validator that makes a float a Duration; found in a field's metadata or a nested Annotated.
_DURATION_MARKS = tuple(get_args(Duration)[1:])
_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    SecretStr: "string (secret)",
    type(None): "null",
}

REGENERATE = "python -m logpipe.dev.config_docs > docs/CONFIG.md"

# ------------------------------------------------------------------------------------- docstrings


@functools.cache
def _own_attribute_docstrings(cls: type) -> dict[str, str]:
    """``{field: docstring}`` for the string literals right under annotated attributes in ``cls``'s body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.ClassDef):
        return {}
    docs: dict[str, str] = {}
    body = node.body
    for stmt, nxt in itertools.pairwise(body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def field_docstring(model: type[BaseModel], name: str) -> str | None:
    """The attribute docstring of field ``name``, from ``model`` or the nearest base that documents it.

    A subclass that only changes a default (``rate_limit: int = 600``) keeps its base's docstring.
    """
    for cls in model.__mro__:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        doc = _own_attribute_docstrings(cls).get(name)
        if doc:
            return doc
    return None


def class_docstring(cls: type) -> str:
    """The class's own docstring (not an inherited one), cleaned."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


# ------------------------------------------------------------------------------------------- types


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """``tp`` without ``Annotated``, and the metadata that was on it."""
    meta: list[Any] = []
    while get_origin(tp) is Annotated:
        args = get_args(tp)
        tp, meta = args[0], [*meta, *args[1:]]
    return tp, meta


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _is_duration(tp: Any, meta: list[Any]) -> bool:
    return tp is float and any(m in _DURATION_MARKS for m in meta)


def _holds_duration(tp: Any, meta: list[Any]) -> bool:
    """Whether a field's value is a duration (``Duration`` or ``Duration | None``)."""
    inner, more = _unwrap(tp)
    if _is_union(inner):
        return any(_holds_duration(a, []) for a in get_args(inner) if a is not type(None))
    return _is_duration(inner, [*meta, *more])


def _discriminator_key(meta: list[Any]) -> str | None:
    """The key a union is discriminated on (``type``), when it is a plain field name."""
    for m in meta:
        d = getattr(m, "discriminator", None)
        if isinstance(m, FieldInfo | Discriminator) and isinstance(d, str):  # a callable picks by shape
            return d
    return None


@dataclass(frozen=True)
class Variant:
    """One model of a union, and how a file selects it (``type: email``, or the ``count`` form)."""

    model: type[BaseModel]
    label: str


def _variants(tp: Any, meta: list[Any]) -> list[Variant] | None:
    """The models of a union of models (optionally with None), or None when ``tp`` is not one."""
    if not _is_union(tp):
        return None
    key = _discriminator_key(meta)
    out: list[Variant] = []
    for arg in get_args(tp):
        inner, inner_meta = _unwrap(arg)
        if inner is type(None):
            continue
        if not _is_model(inner):
            return None
        tag = next((m.tag for m in inner_meta if isinstance(m, Tag)), None)
        label = tag or inner.__name__
        if key is not None and key in inner.model_fields:
            choices = get_args(_unwrap(inner.model_fields[key].annotation)[0])
            if choices:
                label = f"{key}: {choices[0]}"
        out.append(Variant(inner, label))
    return out if len(out) > 1 else None  # one model (or Optional[Model]) is a plain section


def _constraints(tp: Any, meta: list[Any]) -> str:
    """``>= 1``, ``16 to 65536``, ``at least 1 item``, from annotated-types metadata."""
    bounds: dict[str, Any] = {}
    for m in meta:
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            v = getattr(m, attr, None)
            if v is not None and isinstance(m, at.BaseMetadata):
                bounds[attr] = v
    parts: list[str] = []
    if "ge" in bounds and "le" in bounds:
        parts.append(f"{bounds.pop('ge')} to {bounds.pop('le')}")
    for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if attr in bounds:
            parts.append(f"{sym} {bounds[attr]}")
    if "min_length" in bounds:
        n = bounds["min_length"]
        unit = "character" if _unwrap(tp)[0] is str else "item"
        parts.append(f"at least {n} {unit}{'s' if n != 1 else ''}")
    if "max_length" in bounds:
        parts.append(f"at most {bounds['max_length']}")
    return ", ".join(parts)


def type_text(tp: Any, meta: list[Any] | None = None, link: str = "") -> str:
    """A reader's name for a type: ``duration (e.g. 30s)``, ``list of string``, ``one of `a`, `b```.

    ``link`` (Markdown) is appended where the type is, or holds, a configuration section.
    """
    inner, more = _unwrap(tp)
    meta = [*(meta or []), *more]
    if _is_duration(inner, meta):
        return "duration (e.g. 30s)"
    variants = _variants(inner, meta)
    if variants is not None:
        key = _discriminator_key(meta)
        how = f"`{key}` selects" if key else "written as"
        null = " or null" if type(None) in get_args(inner) else ""
        return f"section; {how} one of: {', '.join(v.label.split(': ')[-1] for v in variants)}{link}{null}"
    if _is_union(inner):
        args = get_args(inner)
        rest = [type_text(a, link=link) for a in args if a is not type(None)]
        text = " or ".join(rest)
        return f"{text} or null" if type(None) in args else text
    origin = get_origin(inner)
    if origin is Literal:
        choices = [f"`{_yaml(v)}`" for v in get_args(inner)]
        return choices[0] if len(choices) == 1 else "one of " + ", ".join(choices)
    if origin in (list, tuple, set, frozenset):
        args = get_args(inner)
        return f"list of {_plural(type_text(args[0], link=link)) if args else 'any'}"
    if origin is dict:
        args = get_args(inner)
        if len(args) != 2:
            return "mapping"
        if nested_models(args[1]):
            return f"mapping of names to {_plural(type_text(args[1], link=link))}"
        return f"mapping of {type_text(args[0])} to {type_text(args[1], link=link)}"
    if _is_model(inner):
        return f"section{link}"
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return "one of " + ", ".join(f"`{e.value}`" for e in inner)
    if inner in _SCALARS:
        return _SCALARS[inner]
    return getattr(inner, "__name__", str(inner))


def _plural(text: str) -> str:
    """``section ...`` -> ``sections ...`` (a list or mapping holds several)."""
    return "sections" + text[len("section") :] if text.startswith("section") else text


def field_meta(info: FieldInfo) -> list[Any]:
    """A field's metadata, with its discriminator (``Field(discriminator="type")`` is kept on the field)."""
    meta = list(info.metadata)
    if isinstance(info.discriminator, Discriminator):
        meta.append(info.discriminator)
    elif isinstance(info.discriminator, str):
        meta.append(Discriminator(info.discriminator))
    return meta


def nested_models(tp: Any, meta: list[Any] | None = None) -> list[tuple[str, Variant]]:
    """The models inside a type, each with the key-path suffix that reaches it (``[]``, ``.<name>``)."""
    inner, more = _unwrap(tp)
    meta = [*(meta or []), *more]
    if _is_model(inner):
        return [("", Variant(inner, ""))]
    variants = _variants(inner, meta)
    if variants is not None:
        return [("", v) for v in variants]
    if _is_union(inner):
        return [x for a in get_args(inner) for x in nested_models(a)]
    origin = get_origin(inner)
    args = get_args(inner)
    if origin in (list, tuple, set, frozenset) and args:
        return [("[]" + s, v) for s, v in nested_models(args[0])]
    if origin is dict and len(args) == 2:
        return [(".<name>" + s, v) for s, v in nested_models(args[1])]
    return []


# ---------------------------------------------------------------------------------------- defaults


def format_duration(seconds: float) -> str:
    """``0.25`` -> ``250ms``, ``300`` -> ``5m``: the largest unit that states it exactly."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n = seconds / size
        if seconds >= size and abs(n - round(n)) < 1e-9:
            return f"{round(n)}{unit}"
    if seconds == 0:
        return "0s"
    ms = seconds * 1000
    return f"{round(ms)}ms" if abs(ms - round(ms)) < 1e-6 else f"{seconds}s"


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, Path):
        return str(value)
    return value


def _yaml(value: Any) -> str:
    """``value`` as one line of flow-style YAML (its ``str`` when YAML cannot represent it)."""
    try:
        text = yaml.safe_dump(_plain(value), default_flow_style=True, width=1_000_000, sort_keys=False)
    except yaml.YAMLError:
        return str(value)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def default_text(info: FieldInfo, is_duration: bool) -> str:
    """The default as a reader writes it; ``required`` when there is none.

    A factory is called when it builds a container (a list, a mapping, a section): those are static.
    A factory returning a scalar computes it at start (``node_name`` is the host name), so it is not
    printed: the docs must not depend on the machine that generated them.
    """
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        if getattr(info, "default_factory_takes_data", False):
            return "computed from the other keys"
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return ""
        if not isinstance(value, list | tuple | dict | set):
            return "computed at start"
    else:
        value = info.default
        if value is PydanticUndefined:
            return ""
    if is_duration and isinstance(value, int | float) and not isinstance(value, bool):
        return f"`{format_duration(float(value))}`"
    return f"`{_yaml(value)}`"


# ------------------------------------------------------------------------------------------ walking


@dataclass
class Row:
    """One key of a section."""

    key: str
    type: str
    default: str
    doc: str


@dataclass
class Section:
    """One model at one key path: its rows, then the sections nested in it."""

    kind: str
    path: str
    model: type[BaseModel]
    label: str = ""
    rows: list[Row] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        raw = f"{self.kind}-{self.path or 'root'}" + (f"-{self.label}" if self.label else "")
        return re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")


def yaml_key(name: str, info: FieldInfo) -> str:
    """The key written in YAML: the alias when there is one (``not``, ``from``)."""
    return info.alias or name


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _anchor_of(kind: str, path: str, label: str = "") -> str:
    return Section(kind, path, BaseModel, label).anchor


def walk(kind: str, model: type[BaseModel], path: str = "", label: str = "") -> Iterator[Section]:
    """``model``'s section at ``path``, then every section nested in it, depth first."""
    section = Section(kind, path, model, label)
    nested: list[Section] = []
    children: list[Iterator[Section]] = []
    for name, info in model.model_fields.items():
        key = _join(path, yaml_key(name, info))
        inner = nested_models(info.annotation, field_meta(info))
        link = ""
        if inner:
            suffix = inner[0][0]
            target = _anchor_of(kind, key + suffix, inner[0][1].label if len(inner) > 1 else "")
            link = f" ([below](#{target}))"
            for s, variant in inner:
                children.append(walk(kind, variant.model, key + s, variant.label if len(inner) > 1 else ""))
        meta = field_meta(info)
        tp_text = type_text(info.annotation, meta, link)
        limits = _constraints(info.annotation, meta)
        if limits:
            tp_text = f"{tp_text}, {limits}"
        is_duration = _holds_duration(info.annotation, meta)
        doc = field_docstring(model, name) or _fallback_doc(model, name, info) or ""
        section.rows.append(Row(yaml_key(name, info), tp_text, default_text(info, is_duration), doc))
    yield section
    for child in children:
        nested.extend(child)
    yield from nested


def _fallback_doc(model: type[BaseModel], name: str, info: FieldInfo) -> str | None:
    """What stands in for a missing attribute docstring: a section's class docstring, or "selects" text."""
    inner = nested_models(info.annotation, field_meta(info))
    if len(inner) == 1 and inner[0][0] == "" and class_docstring(inner[0][1].model):
        return _first_paragraph(class_docstring(inner[0][1].model))
    if get_origin(_unwrap(info.annotation)[0]) is Literal and len(get_args(_unwrap(info.annotation)[0])) == 1:
        doc = class_docstring(model)
        return "Selects this variant (see above)." if doc else None
    return None


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n")[0].split())


def undocumented_fields() -> list[str]:
    """``kind: key.path (Model.field)`` for every field that has no docstring (nor a section's)."""
    out: list[str] = []
    for kind in KINDS.values():
        for section in walk(kind.name, kind.model()):
            for name, info in section.model.model_fields.items():
                if field_docstring(section.model, name) or _fallback_doc(section.model, name, info):
                    continue
                key = _join(section.path, yaml_key(name, info))
                where = f"{section.model.__module__}.{section.model.__qualname__}.{name}"
                out.append(f"{kind.name}: {key} ({where})")
    return sorted(set(out))


# ----------------------------------------------------------------------------------------- markdown

INTRO = """\
# Configuration reference

logpipe reads three kinds of YAML file. Each is optional, and each is validated into a model in the
code; the tables below are generated from those models and the docstrings under their fields
(`{regenerate}`), so edit the models, not this file.

| File | Read by | Model | Example |
|---|---|---|---|
{files}

- **Defaults make a local run work with no file at all**: `logpipe ship` tails the kubelet's
  directories and ships to Kafka on `127.0.0.1:9092`; `logpipe consume` reads the default topics there
  and indexes into Elasticsearch on `http://127.0.0.1:9200`. A file only needs the keys that differ.
- **Command-line flags override the file** (e.g. `logpipe ship --kafka-bootstrap`, `--registry`,
  `--http-port`; `logpipe consume --es-url`, `--topics`, `--index-prefix`, `--rules`,
  `--alertmanager-url`); `logpipe ship --help` and `logpipe consume --help` list them.
- **Unknown keys are errors**, not silently ignored settings. Errors name the dotted key path and the
  fix, e.g. `kafka.lingr: Extra inputs are not permitted — fix: remove it, or check its spelling ...`.
- **Check a file before a deploy does**: `logpipe config check FILE...` validates each file against
  its model (the kind is guessed from the keys, or given with `--kind shipper|consumer|rules`) and
  exits 1 when one is invalid. Alert rule files get the same checks as `logpipe alerts validate`
  (`where` expressions, regexes, channel references).
- **Durations** are written `500ms`, `30s`, `5m`, `1h`, `7d` or `1w` (a bare number means seconds).
- **Environment variables** are not expanded in the files (`${VAR}` is taken literally). These are
  read: `NODE_NAME` (the shipper's `node_name`), `LOGPIPE_KAFKA_SASL_PASSWORD` (the Kafka SASL
  password when neither `kafka.sasl_password_file` nor `kafka.sasl_password` is set; docs/SECURITY.md),
  `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and `ALIBABA_CLOUD_SECURITY_TOKEN` (SLS
  credentials when no `*_file` or inline key is set; renamed with the `*_env` keys), `password_env` of
  an email channel (a variable you name); `LOGPIPE_ES_PASSWORD`, `LOGPIPE_ES_API_KEY` and the
  `LOGPIPE_ES_*`/`LOGPIPE_ALERTMANAGER_*` variables of docs/SECURITY.md;
  `LOGPIPE_ES_URL` and `LOGPIPE_INDEX_PREFIX` (`logpipe search` and `logpipe trace`),
  `LOGPIPE_ALERTMANAGER_URL` (`logpipe alerts list`); `LOGPIPE_SERVICES`, `LOGPIPE_KAFKA_BOOTSTRAP`,
  `LOGPIPE_ES_URL`, `LOGPIPE_ALERTMANAGER_URL`, `LOGPIPE_CACHE_DIR`, `LOGPIPE_STATE_DIR` and
  `LOGPIPE_DEV_PORT_OFFSET` (`logpipe dev` and the tests, see README.md).

In the tables, `a.b` is key `b` inside section `a`, `a[]` an item of list `a`, and `a.<name>` an entry
of mapping `a` under a name you choose.
"""


def _cell(text: str) -> str:
    """Markdown table cell: RST ``code`` to Markdown, one line, pipes escaped."""
    one = " ".join(text.replace("``", "`").split())
    return one.replace("|", "\\|")


def _examples(kind: ConfigKind) -> str:
    """Links to the kind's example files: its main one and its variants (``shipper-sls.yaml``)."""
    root = Path(__file__).resolve().parents[2]
    variants = sorted(str(p.relative_to(root)) for p in root.glob(f"examples/{kind.name}-*.yaml"))
    names = [kind.example, *variants]
    return ", ".join(f"[{n}](../{n})" for n in names)


def _intro() -> str:
    rows = []
    for kind in KINDS.values():
        model = kind.model()
        anchor = _anchor_of(kind.name, "")
        rows.append(
            f"| [{kind.title}](#{anchor}) | {', '.join(f'`{u}`' for u in kind.used_by)} | "
            f"`{model.__module__}.{model.__qualname__}` | {_examples(kind)} |"
        )
    return INTRO.replace("{regenerate}", REGENERATE).replace("{files}", "\n".join(rows))


def _render_section(kind: ConfigKind, section: Section) -> list[str]:
    out = [f'<a id="{section.anchor}"></a>', ""]
    if not section.path:
        used = ", ".join(f"`{u}`" for u in kind.used_by)
        out += [f"## {kind.title}", "", f"Read by {used}. Examples: {_examples(kind)}."]
    else:
        variant = f" — `{section.label}`" if section.label else ""
        out += [f"### `{section.path}`{variant}"]
    doc = class_docstring(section.model)
    if doc:
        for paragraph in doc.replace("``", "`").split("\n\n"):
            out += ["", " ".join(paragraph.split())]
    out += ["", "| Key | Type | Default | Description |", "|---|---|---|---|"]
    for row in section.rows:
        key = _join(section.path, row.key)
        out.append(f"| `{key}` | {_cell(row.type)} | {_cell(row.default)} | {_cell(row.doc)} |")
    out.append("")
    return out


def render() -> str:
    """The whole of docs/CONFIG.md."""
    lines = [_intro()]
    for kind in KINDS.values():
        for section in walk(kind.name, kind.model()):
            lines += _render_section(kind, section)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    """``python -m logpipe.dev.config_docs``: print docs/CONFIG.md."""
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
