"""The alert rule file (``--rules FILE``): channels, rules and engine settings as frozen models.

The file's shape is a contract (see docs/ALERTS.md)::

    channels:
      alertmanager: {type: alertmanager, url: http://127.0.0.1:9093}
    rules:
      - name: pay-5xx
        match: {components: [pay-gw], keywords: [panic], where: 'status>=500'}
        condition: {count: 3, within: 30s}
        group_by: [service.name, url.path]

:func:`load_rule_file` validates it completely (models, then cross-checks: channel references,
``where`` expressions, regexes, field names) and raises :class:`ConfigError` whose lines name the
rule, the key and the fix, e.g. ``rule 'pay-5xx' (rules[0]) condition.within: ... — fix: ...``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from consumer.alerts.fieldpath import SHORT_NAMES, is_known
from logpipe.core.config_base import ConfigError, StrictModel, format_validation_error, read_yaml
from logpipe.core.durations import Duration
from logpipe.core.expr import ExprError, field_names, parse
from logpipe.core.http_auth import HttpClientAuth

_LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# ------------------------------------------------------------------------------------------ channels


class ChannelBase(StrictModel):
    """Delivery settings every channel has: retries with backoff, a rate limit, a bounded queue."""

    timeout: Duration = 5.0
    """Seconds one request may take."""
    retries: int = Field(default=3, ge=0, le=20)
    """Attempts after the first failure; then the notification is dropped and counted."""
    backoff: Duration = 0.5
    """Delay before the first retry; doubled after each failure, jittered, capped by ``max_backoff``."""
    max_backoff: Duration = 30.0
    """Longest wait between two attempts."""
    rate_limit: int = Field(default=30, ge=1)
    """At most this many notifications per ``rate_period``; more are dropped and counted."""
    rate_period: Duration = 60.0
    """The period of ``rate_limit``; a notification over the limit waits for its turn (not dropped)."""
    queue_size: int = Field(default=1000, ge=1)
    """Notifications waiting for this channel; when full, new ones are dropped and counted."""


class AlertmanagerChannel(ChannelBase, HttpClientAuth):
    """Alertmanager API v2: ``POST /api/v2/alerts``; firing alerts are re-asserted until resolved.

    Basic auth and TLS (``username``, ``password_file``, ``ca_file``) match Alertmanager's own
    ``--web.config.file``; the password may also come from ``LOGPIPE_ALERTMANAGER_PASSWORD``."""

    type: Literal["alertmanager"]
    url: str = "http://127.0.0.1:9093"
    """Base URL of Alertmanager (``https://`` for TLS); ``logpipe consume --alertmanager-url`` overrides it."""
    rate_limit: int = Field(default=600, ge=1)


class WeComChannel(ChannelBase):
    """WeCom (enterprise WeChat) group robot: a markdown message to the robot's webhook URL."""

    type: Literal["wecom"]
    webhook: str
    """The robot's webhook URL, ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``."""
    rate_limit: int = Field(default=20, ge=1)
    """The robot itself accepts 20 messages per minute."""
    mention: list[str] = Field(default_factory=list)
    """WeCom user ids appended as ``<@userid>`` mentions."""


class WebhookChannel(ChannelBase):
    """A generic JSON webhook: one POST per notification (see docs/ALERTS.md for the body)."""

    type: Literal["webhook"]
    url: str
    """Where the JSON body is POSTed."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra request headers, e.g. an ``Authorization`` token."""


class EmailChannel(ChannelBase):
    """SMTP: STARTTLS (default) or implicit TLS, optional AUTH; the password may come from the env."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["email"]
    host: str = "127.0.0.1"
    """SMTP server."""
    port: int = Field(default=587, ge=1, le=65535)
    """SMTP port: 587 for STARTTLS (submission), 465 with ``ssl``, 25 plain."""
    starttls: bool = True
    """Upgrade the connection with STARTTLS before AUTH and MAIL."""
    ssl: bool = False
    """Implicit TLS from the first byte (port 465); excludes ``starttls``."""
    verify_tls: bool = True
    """Verify the server's certificate and host name (turn off only for a lab server)."""
    ca_file: str | None = None
    """PEM bundle to verify the server with (a private CA); the system's by default."""
    username: str | None = None
    """AUTH user; no AUTH when unset."""
    password: str | None = None
    """AUTH password written in the file; prefer ``password_env``."""
    password_env: str | None = None
    """Name of the environment variable holding the password (a mounted Secret), read at send time."""
    sender: str = Field(default="logpipe@localhost", alias="from")
    """The ``From`` address (key ``from``)."""
    to: list[str] = Field(min_length=1)
    """Recipients."""
    rate_limit: int = Field(default=10, ge=1)


_CHANNEL_TYPES = ("alertmanager", "wecom", "webhook", "email")

ChannelConfig = Annotated[
    AlertmanagerChannel | WeComChannel | WebhookChannel | EmailChannel, Field(discriminator="type")
]

# ------------------------------------------------------------------------------------------ matching


class NotSpec(StrictModel):
    """Negation: a document matching any of these is excluded."""

    keywords: list[str] = Field(default_factory=list)
    """``message`` contains any of these."""
    regexes: list[str] = Field(default_factory=list)
    """``message`` matches any of these."""
    where: str | None = None
    """A ``--where`` expression."""


class MatchSpec(StrictModel):
    """Which documents a rule counts. Every listed part must hold (AND); empty parts hold."""

    components: list[str] = Field(default_factory=list)
    """``service.name`` is one of these."""
    namespaces: list[str] = Field(default_factory=list)
    """``kubernetes.namespace`` is one of these."""
    types: list[str] = Field(default_factory=list)
    """``logpipe.type`` is one of these: access, app, stdout, trace."""
    keywords: list[str] = Field(default_factory=list)
    """``message`` contains any of these (substring)."""
    keywords_all: list[str] = Field(default_factory=list)
    """``message`` contains all of these."""
    regexes: list[str] = Field(default_factory=list)
    """``message`` matches any of these (Python ``re.search``)."""
    ignore_case: bool = False
    """Keywords and regexes ignore case (they are case-sensitive by default, like grep)."""
    where: str | None = None
    """A ``logpipe query --where`` expression, e.g. ``status>=500 and path~"^/pay"``."""
    exclude_keywords: list[str] = Field(default_factory=list)
    """Shorthand for ``not: {keywords: [...]}``."""
    not_: NotSpec | None = Field(default=None, alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------------------------------- conditions


class AnyCondition(StrictModel):
    """Every matching document fires (subject to ``realert``)."""

    any: Literal[True] = True


class CountCondition(StrictModel):
    """At least ``count`` matching documents within the sliding window ``within``."""

    count: int = Field(ge=1)
    """Matching documents needed in the window."""
    within: Duration
    """The sliding window, e.g. ``30s``."""


class RatioCondition(StrictModel):
    """matches / documents-in-scope >= ``ratio`` within ``within``, once ``min_count`` documents were seen.

    The denominator is every document that passes ``components``/``namespaces``/``types`` and has
    the same ``group_by`` values; the numerator is those that also match the content conditions.
    """

    ratio: float = Field(gt=0, le=1)
    """Share of in-scope documents that must match, 0 < ratio <= 1 (0.05 is 5 %)."""
    within: Duration
    """The sliding window, e.g. ``1m``."""
    min_count: int = Field(default=20, ge=1)
    """In-scope documents needed in the window before the ratio counts."""


class AbsentCondition(StrictModel):
    """No matching document for ``absent`` (checked by the engine's periodic tick).

    A group must have been seen once since the engine started, or its Component be listed in
    ``match.components`` (then the clock starts when the engine starts).
    """

    absent: Duration
    """How long without a matching document, e.g. ``5m``."""


LATENCY_STATS: tuple[str, ...] = ("p50", "p90", "p95", "p99", "avg")
"""The statistics a latency condition may test; ``pNN`` is the NN-th percentile."""

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def _latency_threshold(value: Any) -> Any:
    # a bare number would be seconds like every Duration, and `p99: 800` meaning 800 s is a trap
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value!r} has no unit — fix: write it with one, e.g. 800ms or 1.5s")
    return value


LatencyThreshold = Annotated[Duration, BeforeValidator(_latency_threshold)]


class LatencyCondition(StrictModel):
    """A latency statistic of the matching documents (spans, access lines) within ``within``, e.g.
    ``{p99: 800ms, within: 5m, min_count: 50}``: fires when it is at or above the threshold.

    Exactly one of ``p50``, ``p90``, ``p95``, ``p99`` (from a DDSketch, relative error 1 %) or
    ``avg`` (exact) per rule. The durations are read from ``field`` (``event.duration``, in
    nanoseconds, for spans and access lines alike); documents without it are not counted.
    """

    p50: LatencyThreshold | None = None
    """Median duration threshold, e.g. ``300ms``."""
    p90: LatencyThreshold | None = None
    """90th percentile threshold."""
    p95: LatencyThreshold | None = None
    """95th percentile threshold."""
    p99: LatencyThreshold | None = None
    """99th percentile threshold, e.g. ``800ms``."""
    avg: LatencyThreshold | None = None
    """Mean duration threshold."""
    within: Duration
    """The sliding window, e.g. ``5m``."""
    min_count: int = Field(default=20, ge=1)
    """Documents with a duration needed in the window before the statistic counts."""
    field: str = "event.duration"
    """The field holding each document's duration."""
    unit: Literal["ns", "us", "ms", "s"] = "ns"
    """The unit of ``field``'s values (``event.duration`` is in nanoseconds, as ECS says)."""

    @model_validator(mode="after")
    def _one_statistic(self) -> LatencyCondition:
        given = [k for k in LATENCY_STATS if getattr(self, k) is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ValueError(
                f"a latency condition tests exactly one of {', '.join(LATENCY_STATS)}, got {what} "
                "— fix: e.g. {p99: 800ms, within: 5m, min_count: 50}; use one rule per statistic"
            )
        return self

    @property
    def statistic(self) -> str:
        """``p99``, ``avg``, ..."""
        return next(k for k in LATENCY_STATS if getattr(self, k) is not None)

    @property
    def threshold(self) -> float:
        """The threshold in seconds."""
        value = getattr(self, self.statistic)
        assert isinstance(value, float)
        return value

    @property
    def quantile(self) -> float | None:
        """0.99 for ``p99``; None for ``avg``."""
        stat = self.statistic
        return None if stat == "avg" else int(stat[1:]) / 100

    @property
    def seconds_per_unit(self) -> float:
        return _DURATION_UNITS[self.unit]


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, StrictModel):
        return {
            AnyCondition: "any",
            CountCondition: "count",
            RatioCondition: "ratio",
            AbsentCondition: "absent",
            LatencyCondition: "latency",
        }.get(type(value))
    if not isinstance(value, dict):
        return None
    for tag in ("ratio", "count", "absent", "any"):  # ratio first: {ratio, min_count} is not a count
        if tag in value:
            return tag
    if any(stat in value for stat in LATENCY_STATS):
        return "latency"
    return None


Condition = Annotated[
    Annotated[AnyCondition, Tag("any")]
    | Annotated[CountCondition, Tag("count")]
    | Annotated[RatioCondition, Tag("ratio")]
    | Annotated[AbsentCondition, Tag("absent")]
    | Annotated[LatencyCondition, Tag("latency")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition_kind",
        custom_error_message=(
            "unknown condition — fix: use one of {any: true} | {count: N, within: 30s} | "
            "{ratio: 0.05, within: 1m, min_count: 20} | {absent: 5m} | {p99: 800ms, within: 5m, min_count: 50}"
        ),
    ),
]

# ------------------------------------------------------------------------------------------- rules


class Rule(StrictModel):
    """One alert rule: what to match, when it fires, how alerts are grouped, where they go."""

    name: str = Field(min_length=1)
    """Becomes the ``alertname`` label; unique in the file."""
    description: str = ""
    """Shown as the ``description`` annotation."""
    severity: str = "warning"
    """The ``severity`` label, e.g. critical, warning, info."""
    enabled: bool = True
    """``false`` keeps the rule in the file without evaluating it."""
    match: MatchSpec = Field(default_factory=lambda: MatchSpec())
    """Which documents count: scope (components, namespaces, types) and content (keywords, where...)."""
    condition: Condition = Field(default_factory=lambda: AnyCondition())
    """When the rule fires: ``{any: true}`` | ``{count, within}`` | ``{ratio, within, min_count}`` | ``{absent}``
    | ``{p99 (p50, p90, p95, avg), within, min_count}``."""
    group_by: list[str] = Field(default_factory=list)
    """Fields whose values split the rule into one alert per group; each becomes a label."""
    realert: Duration = 300.0
    """Do not notify the same group again within this interval."""
    resolve: Duration | None = None
    """Send *resolved* once the condition has been clear this long. Default: the window for
    count/ratio, 5m for ``any``, 0 (at the next tick) for ``absent``."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra Alertmanager labels (names ``[A-Za-z_][A-Za-z0-9_]*``)."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotation templates, e.g. ``{summary: "{{count}} errors on {{url.path}}"}`` (docs/ALERTS.md)."""
    channels: list[str] = Field(default_factory=list)
    """Channel names; empty means every channel in the file."""

    @field_validator("labels")
    @classmethod
    def _label_names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not _LABEL_RE.match(k)]
        if bad:
            raise ValueError(f"label name(s) {bad} are not valid — fix: use letters, digits and _ only")
        return v

    def effective_resolve(self) -> float:
        """Seconds the condition must stay clear before a resolved notification."""
        if self.resolve is not None:
            return self.resolve
        c = self.condition
        if isinstance(c, CountCondition | RatioCondition | LatencyCondition):
            return c.within
        if isinstance(c, AbsentCondition):
            return 0.0
        return 300.0

    def effective_group_by(self) -> list[str]:
        """``group_by``, or ``[service.name]`` for absence (silence is per Component)."""
        if not self.group_by and isinstance(self.condition, AbsentCondition):
            return ["service.name"]
        return list(self.group_by)


class EngineSettings(StrictModel):
    """How the in-consumer engine runs; the defaults suit a local run."""

    tick_interval: Duration = 1.0
    """How often absence, resolve and re-assertion are checked."""
    max_groups: int = Field(default=10_000, ge=1)
    """Groups kept per rule; beyond it the least recently used non-firing group is evicted."""
    reassert: Duration = 60.0
    """Firing alerts are posted to Alertmanager again this often (it forgets them after ``alert_ttl``)."""
    alert_ttl: Duration = 300.0
    """``endsAt`` of a firing alert is now + this; must exceed ``reassert``."""
    max_event_age: Duration | None = 600.0
    """Documents whose ``@timestamp`` is older are indexed but not evaluated (a replayed backlog
    must not fire a storm of stale alerts); null evaluates everything."""
    dedupe_window: int = Field(default=100_000, ge=0)
    """Source identities (file, offset) remembered so a Kafka redelivery is not evaluated twice; 0: off."""
    restore_from_alertmanager: bool = True
    """On start, read active alerts back from Alertmanager and treat them as firing (no re-notify)."""
    generator_url: str = "http://logpipe.invalid/alerts/{rule}"
    """``generatorURL`` of each alert; ``{rule}`` is replaced by the rule name."""
    samples: int = Field(default=3, ge=0, le=20)
    """Sample lines kept per group for annotations."""
    sample_chars: int = Field(default=300, ge=20)
    """Each sample line is cut to this many characters."""


class RuleFile(StrictModel):
    """The whole rule file."""

    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    """Named channels; each has a ``type``: alertmanager, wecom, webhook or email."""
    rules: list[Rule] = Field(default_factory=list)
    """The rules, evaluated on every document."""
    engine: EngineSettings = Field(default_factory=lambda: EngineSettings())

    def with_alertmanager_url(self, url: str | None) -> RuleFile:
        """A copy whose ``alertmanager`` channel posts to ``url`` (added when the file has none)."""
        if not url:
            return self
        channels = dict(self.channels)
        current = channels.get("alertmanager")
        if isinstance(current, AlertmanagerChannel):
            channels["alertmanager"] = current.model_copy(update={"url": url})
        else:
            channels["alertmanager"] = AlertmanagerChannel(type="alertmanager", url=url)
        return self.model_copy(update={"channels": channels})


# ---------------------------------------------------------------------------------------- validation


def _rule_prefix(data: Any, loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """``rule 'name' (rules[i])`` for a location under ``rules``, plus the rest of the location."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        i = loc[1]
        name = None
        rules = data.get("rules") if isinstance(data, dict) else None
        if isinstance(rules, list) and i < len(rules) and isinstance(rules[i], dict):
            name = rules[i].get("name")
        who = f"rule {name!r} (rules[{i}])" if name else f"rules[{i}]"
        return who, loc[2:]
    return "", loc


def _format_errors(exc: ValidationError, data: Any) -> list[str]:
    lines = format_validation_error(exc)
    out: list[str] = []
    for err, line in zip(exc.errors(), lines, strict=True):
        loc = tuple(err["loc"])
        who, rest = _rule_prefix(data, loc)
        # drop the discriminator tag pydantic inserts ("condition.count.within" -> "condition.within")
        rest = tuple(p for i, p in enumerate(rest) if not (i == 1 and rest[0] == "condition"))
        if who:
            key = ".".join(str(p) for p in rest) or "<rule>"
            line = f"{who} {key}: " + line.split(": ", 1)[1]
        elif len(loc) >= 3 and loc[0] == "channels" and loc[2] in _CHANNEL_TYPES:
            key = ".".join(str(p) for p in (*loc[:2], *loc[3:]))  # drop the type tag pydantic inserts
            line = f"{key}: " + line.split(": ", 1)[1]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found") and loc[:1] == ("channels",):
            line += f" — fix: set type to one of {', '.join(_CHANNEL_TYPES)}"
        out.append(line.replace("docs/CONFIG.md", "docs/ALERTS.md"))
    return out


def _check_regex(who: str, key: str, pattern: str, errors: list[str]) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        errors.append(f"{who} {key}: invalid regex {pattern!r} ({exc}) — fix: escape special characters")


def _check_where(who: str, key: str, text: str, errors: list[str]) -> None:
    try:
        expr = parse(text)
    except ExprError as exc:
        errors.append(f"{who} {key}: {exc.problem} at column {exc.column} of {text!r} — fix: see docs/ALERTS.md")
        return
    for name in sorted(field_names(expr)):
        if not is_known(name):
            errors.append(
                f"{who} {key}: unknown field {name!r} — fix: use a short name ({', '.join(SHORT_NAMES)}) "
                "or an ECS dotted name such as http.response.status_code"
            )


def check_rule_file(rf: RuleFile) -> list[str]:
    """Cross-field problems the models cannot see, one line each naming rule, key and fix."""
    errors: list[str] = []
    seen: set[str] = set()
    if rf.engine.alert_ttl <= rf.engine.reassert:
        errors.append("engine.alert_ttl: must exceed engine.reassert — fix: e.g. alert_ttl: 5m, reassert: 1m")
    for i, rule in enumerate(rf.rules):
        who = f"rule {rule.name!r} (rules[{i}])"
        if rule.name in seen:
            errors.append(f"{who} name: duplicate rule name — fix: give each rule a unique name")
        seen.add(rule.name)
        for ch in rule.channels:
            if ch not in rf.channels:
                known = ", ".join(sorted(rf.channels)) or "none defined"
                errors.append(f"{who} channels: unknown channel {ch!r} — fix: define it under channels ({known})")
        if not rule.channels and not rf.channels:
            errors.append(
                f"{who} channels: no channel to notify — fix: define one under channels (or pass --alertmanager-url)"
            )
        m = rule.match
        for j, rx in enumerate(m.regexes):
            _check_regex(who, f"match.regexes[{j}]", rx, errors)
        if m.where is not None:
            _check_where(who, "match.where", m.where, errors)
        if m.not_ is not None:
            for j, rx in enumerate(m.not_.regexes):
                _check_regex(who, f"match.not.regexes[{j}]", rx, errors)
            if m.not_.where is not None:
                _check_where(who, "match.not.where", m.not_.where, errors)
        for j, name in enumerate(rule.group_by):
            if not is_known(name):
                errors.append(
                    f"{who} group_by[{j}]: unknown field {name!r} — fix: use a short name "
                    "(component, path, status, ...) or an ECS dotted name such as service.name"
                )
        if any(k in ("alertname", "severity") for k in rule.labels):
            errors.append(f"{who} labels: alertname and severity are set by the rule — fix: use name/severity")
        if isinstance(rule.condition, AbsentCondition) and rule.condition.absent <= 0:
            errors.append(f"{who} condition.absent: must be positive — fix: e.g. absent: 5m")
        if isinstance(rule.condition, LatencyCondition):
            c = rule.condition
            if c.threshold <= 0:
                errors.append(f"{who} condition.{c.statistic}: must be positive — fix: e.g. {c.statistic}: 800ms")
            if not is_known(c.field):
                errors.append(
                    f"{who} condition.field: unknown field {c.field!r} — fix: use an ECS dotted name such as "
                    "event.duration (nanoseconds)"
                )
        windowed = CountCondition | RatioCondition | LatencyCondition
        if isinstance(rule.condition, windowed) and rule.condition.within <= 0:
            errors.append(f"{who} condition.within: must be positive — fix: e.g. within: 30s")
    return errors


def validate_rule_file(data: Any, source: str, alertmanager_url: str | None = None) -> RuleFile:
    """Validate parsed YAML into a :class:`RuleFile` or raise :class:`ConfigError`.

    ``alertmanager_url`` (the ``--alertmanager-url`` flag) overrides or adds the ``alertmanager``
    channel before the cross-checks, so a file may rely on the flag for its only channel.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["<root>: the rule file must hold a mapping — fix: start with `rules:`"])
    try:
        rf = RuleFile.model_validate(data).with_alertmanager_url(alertmanager_url)
    except ValidationError as exc:
        raise ConfigError(source, _format_errors(exc, data)) from None
    errors = check_rule_file(rf)
    if errors:
        raise ConfigError(source, errors)
    return rf


def read_rule_yaml(path: str | Path) -> Any:
    """Parse the rule file: PyYAML like every config, YAML 1.2 (ruamel) when PyYAML rejects it.

    PyYAML (YAML 1.1) refuses a ``?`` inside a flow mapping's plain scalar, as in the documented
    ``{type: wecom, webhook: https://.../robot?key=...}``; YAML 1.2 allows it.
    """
    try:
        return read_yaml(path)
    except ConfigError as first:
        if not first.errors or not first.errors[0].startswith("<yaml>"):
            raise
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError

        try:
            return YAML(typ="safe", pure=True).load(Path(path).read_text(encoding="utf-8"))
        except YAMLError:
            raise first from None


def load_rule_file(path: str | Path, alertmanager_url: str | None = None) -> RuleFile:
    """Read, validate and cross-check a rule file; ``alertmanager_url`` overrides that channel's url."""
    return validate_rule_file(read_rule_yaml(path), str(path), alertmanager_url)
