"""Which files are shipped, as what log type, to which topic: rules as frozen config, evaluation pure.

A rule is a set of globs on the *file name* plus a log type and a topic. Rules are tried in order
and the first match wins; a file no rule matches is not shipped. Two lists, one per layout:

- ``emptydir``: files anywhere below ``<pods_root>/<uid>/volumes/kubernetes.io~empty-dir/<volume>/``;
  a rule may narrow the volume name with ``volume``.
- ``cri``: container stdout files ``<logs_root>/<ns>_<pod>_<uid>/<container>/<n>.log``; a rule may
  narrow the container name with ``container``.

Defaults (the command-line contract of the shipper issue)::

    emptydir:
      - {match: ["*trace*.log", "*trace*.log.[0-9]*"], type: trace}     # topic logpipe-trace
      - {match: ["*access*.log", "*access*.log.[0-9]*"], type: access}  # topic logpipe-access
      - {match: ["*.log", "*.log.[0-9]*"], type: app}                   # topic logpipe-app
    cri:
      - {match: ["*.log", "*.log.[0-9]*"], type: stdout}                # topic logpipe-stdout

``*.log.[0-9]*`` is a rotated form (``access.log.1``, ``access.log.2025-11-27``,
``0.log.20251127-101010``); compressed and temporary rotations (``.gz``, ``.tmp`` ...) are excluded
by every rule's default ``exclude``: the shipper reads a rotated file only to finish its stream.
Name matching ignores case unless ``ignore_case: false``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from logpipe.core.config_base import StrictModel
from shipper.multiline import MultilineConfig, MultilineSpec

LogType = Literal["access", "app", "stdout", "trace"]
AccessFormat = Literal["auto", "json", "combined", "upstreaminfo"]  # logpipe.core.envelope.ACCESS_FORMATS

ROTATED = ("*.log", "*.log.[0-9]*")
SKIPPED_SUFFIXES = ["*.gz", "*.zip", "*.bz2", "*.xz", "*.zst", "*.lz4", "*.tmp", "*.swp"]
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class RuleConfig(StrictModel):
    """One rule: a file whose name matches a ``match`` glob and no ``exclude`` glob is shipped."""

    match: list[str]
    """Globs on the file name (``*``, ``?``, ``[0-9]``), e.g. ``["*access*.log", "*access*.log.[0-9]*"]``."""
    exclude: list[str] = Field(default_factory=lambda: list(SKIPPED_SUFFIXES))
    """Globs on the file name that are never shipped, even if ``match`` matches."""
    type: LogType
    """Log type of every line of the file: access | app | stdout | trace."""
    topic: str | None = None
    """Kafka topic (or SLS logstore); default ``<topic_prefix><type>``, e.g. ``logpipe-access``."""
    volume: str = "*"
    """emptydir rules only: glob on the EmptyDir volume name, e.g. ``logs*``."""
    container: str = "*"
    """cri rules only: glob on the container name, e.g. ``istio-proxy``."""
    format: AccessFormat = "auto"
    """access rules only: the lines' format — ``auto`` (a JSON object, else nginx ``combined`` or
    ingress-nginx ``upstreaminfo`` detected per line), ``json``, ``combined`` or ``upstreaminfo``
    (every line read as that format; a line that does not match keeps its text in ``message``,
    flagged ``unknown_format``). Sent to the consumer in the ``lp.format`` header."""
    multiline: MultilineConfig | None = None
    """How lines join into one event (stack traces), see ``shipper/multiline.py``; default ``{mode: auto}``
    for types app and stdout, ``{mode: off}`` for access and trace."""

    @field_validator("match")
    @classmethod
    def _match_ok(cls, v: list[str]) -> list[str]:
        if not v or not all(v):
            raise ValueError("no glob to match — fix: give at least one non-empty glob, e.g. [\"*.log\"]")
        return v

    @model_validator(mode="after")
    def _format_ok(self) -> RuleConfig:
        if self.format != "auto" and self.type != "access":
            raise ValueError(f"format: {self.format!r} is a format of access lines, this rule ships type "
                             f"{self.type!r} — fix: remove `format` or set `type: access`")
        return self

    @field_validator("topic")
    @classmethod
    def _topic_ok(cls, v: str | None) -> str | None:
        if v is not None and not _TOPIC.match(v):
            raise ValueError(f"invalid topic {v!r} — fix: use 1-249 characters of [A-Za-z0-9._-]")
        return v


def _default_emptydir() -> list[RuleConfig]:
    return [
        RuleConfig(match=["*trace*.log", "*trace*.log.[0-9]*"], type="trace"),
        RuleConfig(match=["*access*.log", "*access*.log.[0-9]*"], type="access"),
        RuleConfig(match=list(ROTATED), type="app"),
    ]


def _default_cri() -> list[RuleConfig]:
    return [RuleConfig(match=list(ROTATED), type="stdout")]


class RulesConfig(StrictModel):
    """What discovery ships (the ``rules:`` section of the shipper config)."""

    topic_prefix: str = "logpipe-"
    """Prefix of the default topic of each type: ``<topic_prefix><type>``."""
    ignore_case: bool = True
    """Match file, volume and container names case-insensitively."""
    emptydir: list[RuleConfig] = Field(default_factory=_default_emptydir)
    """Rules for files in EmptyDir volumes, first match wins; ``[]`` ships no EmptyDir file."""
    cri: list[RuleConfig] = Field(default_factory=_default_cri)
    """Rules for container stdout (CRI) files, first match wins; ``[]`` ships no stdout."""
    multiline_components: dict[str, MultilineConfig] = Field(default_factory=dict)
    """Per Component, how its app and stdout lines join into events, over the rule's ``multiline``,
    e.g. ``{pay-gw: {mode: custom, start: '^\\d{4}-\\d\\d-\\d\\d '}}``."""

    @model_validator(mode="after")
    def _check(self) -> RulesConfig:
        for i, r in enumerate(self.emptydir):
            if r.container != "*":
                raise ValueError(f"emptydir.{i}.container: the container of an EmptyDir file is not known "
                                 "— fix: remove it (use `volume` to narrow an emptydir rule)")
        for i, r in enumerate(self.cri):
            if r.volume != "*":
                raise ValueError(f"cri.{i}.volume: stdout files are not in volumes "
                                 "— fix: remove it (use `container` to narrow a cri rule)")
        for t in ("access", "app", "stdout", "trace"):
            if not _TOPIC.match(f"{self.topic_prefix}{t}"):
                raise ValueError(f"topic_prefix: {self.topic_prefix!r} makes an invalid topic name "
                                 "— fix: use characters of [A-Za-z0-9._-]")
        return self


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule; :meth:`matches` is pure."""

    log_type: str
    topic: str
    _match: re.Pattern[str]
    _exclude: re.Pattern[str] | None
    _scope: re.Pattern[str]  # volume (emptydir) or container (cri) name
    multiline: MultilineSpec | None = None
    multiline_components: tuple[tuple[str, MultilineSpec | None], ...] = ()
    access_format: str = ""  # the rule's chosen access format; "": detected per line (auto)

    def multiline_for(self, component: str) -> MultilineSpec | None:
        """How lines of a file of ``component`` join into events (None: one line, one event)."""
        if self.log_type in ("app", "stdout"):
            for name, spec in self.multiline_components:
                if name == component:
                    return spec
        return self.multiline

    def matches(self, name: str, scope: str) -> bool:
        """Whether file ``name`` in volume/container ``scope`` is shipped by this rule."""
        return (self._match.match(name) is not None
                and (self._exclude is None or self._exclude.match(name) is None)
                and self._scope.match(scope) is not None)

    def wants_scope(self, scope: str) -> bool:
        return self._scope.match(scope) is not None


def _globs(patterns: list[str], ignore_case: bool) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns), re.I if ignore_case else 0)


def _compile(cfg: RuleConfig, scope: str, prefix: str, ignore_case: bool,
             components: tuple[tuple[str, MultilineSpec | None], ...] = ()) -> Rule:
    multiline = cfg.multiline or (MultilineConfig() if cfg.type in ("app", "stdout") else MultilineConfig(mode="off"))
    return Rule(
        log_type=cfg.type,
        topic=cfg.topic or f"{prefix}{cfg.type}",
        _match=_globs(cfg.match, ignore_case),
        _exclude=_globs(cfg.exclude, ignore_case) if cfg.exclude else None,
        _scope=_globs([scope], ignore_case),
        multiline=multiline.build(),
        multiline_components=components,
        access_format="" if cfg.format == "auto" else cfg.format,
    )


@dataclass(frozen=True, slots=True)
class Rules:
    """The compiled rule lists; first match wins."""

    emptydir: tuple[Rule, ...]
    cri: tuple[Rule, ...]

    @classmethod
    def from_config(cls, cfg: RulesConfig | None = None) -> Rules:
        cfg = cfg or RulesConfig()
        p, ic = cfg.topic_prefix, cfg.ignore_case
        comps = tuple((name, m.build()) for name, m in cfg.multiline_components.items())
        return cls(
            emptydir=tuple(_compile(r, r.volume, p, ic, comps) for r in cfg.emptydir),
            cri=tuple(_compile(r, r.container, p, ic, comps) for r in cfg.cri),
        )

    def for_emptydir(self, volume: str, name: str) -> Rule | None:
        """The rule shipping file ``name`` found in EmptyDir volume ``volume``, or None."""
        return next((r for r in self.emptydir if r.matches(name, volume)), None)

    def for_cri(self, container: str, name: str) -> Rule | None:
        """The rule shipping stdout file ``name`` of container ``container``, or None."""
        return next((r for r in self.cri if r.matches(name, container)), None)

    def wants_volume(self, volume: str) -> bool:
        """Whether any rule could ship a file of this volume (others are neither walked nor watched)."""
        return any(r.wants_scope(volume) for r in self.emptydir)

    def wants_container(self, container: str) -> bool:
        return any(r.wants_scope(container) for r in self.cri)
