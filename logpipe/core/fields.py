"""Field mapping of JSON access logs: one table shared by the consumer's parser and `logpipe query`.

A log line's keys differ between dialects (nginx ``log_format json`` writes ``request_uri`` and
``request_time`` in seconds; the in-house framework writes ``path`` and ``latency`` in ms). Each
canonical field has a short name (what users type: ``status``, ``path``), an Elastic Common
Schema name (what is indexed: ``http.response.status_code``), and the raw keys to look for in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import Field as PField

from logpipe.core.config_base import StrictModel

Kind = Literal["time", "keyword", "long", "ip", "duration", "text"]
Unit = Literal["s", "ms", "us", "ns"]
NS_PER_UNIT: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One canonical field: short name, ECS name, raw keys looked up in order, and its type."""

    name: str
    ecs: str
    keys: tuple[str, ...]
    kind: Kind


@dataclass(frozen=True)
class Dialect:
    """A named set of field specs plus the unit of each raw duration key."""

    name: str
    fields: tuple[FieldSpec, ...]
    duration_units: dict[str, Unit] = field(default_factory=dict)
    default_duration_unit: Unit = "s"

    def by_name(self, name: str) -> FieldSpec | None:
        """The spec for a short name, an ECS name, or one of its raw keys."""
        for f in self.fields:
            if name == f.name or name == f.ecs:
                return f
        for f in self.fields:
            if name in f.keys:
                return f
        return None

    def unit_of(self, key: str) -> Unit:
        return self.duration_units.get(key, self.default_duration_unit)

    def spec(self, name: str) -> FieldSpec:
        f = self.by_name(name)
        if f is None:
            raise KeyError(name)
        return f


# Keyword fields whose empty string means "no value" (an id, a level, the pod's own metadata).
_EMPTY_IS_ABSENT = frozenset({"trace_id", "level", "component", "namespace", "pod"})


def keeps_empty(spec: FieldSpec) -> bool:
    """Whether an empty string of this field is a value (``url.path`` ``""`` of a request nginx answered
    400 with an empty ``$uri``, an empty ``$args``) rather than absent, like ``null`` and ``"-"``.
    The consumer indexes such a value as ``""`` and ``logpipe query`` reads it as ``''``."""
    return spec.kind == "keyword" and spec.name not in _EMPTY_IS_ABSENT


_AUTO_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("time", "@timestamp", ("time", "@timestamp", "ts", "timestamp", "time_iso8601", "time_local", "msec"),
              "time"),
    FieldSpec("method", "http.request.method", ("method", "request_method", "http_method", "verb"), "keyword"),
    FieldSpec("path", "url.path", ("path", "uri", "url", "request_uri", "request_path"), "keyword"),
    FieldSpec("query", "url.query", ("query", "query_string", "args"), "keyword"),
    FieldSpec("status", "http.response.status_code", ("status", "status_code", "code", "http_status"), "long"),
    FieldSpec("bytes", "http.response.body.bytes", ("bytes", "body_bytes_sent", "bytes_sent", "size"), "long"),
    FieldSpec("request_time", "event.duration", ("request_time", "latency", "duration", "elapsed", "rt"), "duration"),
    FieldSpec("client_ip", "client.ip", ("client_ip", "remote_addr", "ip", "clientip", "client"), "ip"),
    FieldSpec("user_agent", "user_agent.original", ("user_agent", "http_user_agent", "ua", "agent"), "keyword"),
    FieldSpec("trace_id", "trace.id", ("trace_id", "traceId", "traceid", "trace"), "keyword"),
    FieldSpec("span_id", "span.id", ("span_id", "spanId", "spanid"), "keyword"),
    FieldSpec("level", "log.level", ("level", "severity", "lvl", "log_level"), "keyword"),
    FieldSpec("msg", "message", ("msg", "message"), "text"),
    FieldSpec("component", "service.name", ("service", "component", "app"), "keyword"),
    FieldSpec("namespace", "kubernetes.namespace", ("namespace",), "keyword"),
    FieldSpec("pod", "kubernetes.pod.name", ("pod",), "keyword"),
    FieldSpec("host", "url.domain", ("host", "http_host", "server_name"), "keyword"),
)

AUTO = Dialect(
    name="auto",
    fields=_AUTO_FIELDS,
    duration_units={"request_time": "s", "latency": "ms", "duration": "ms", "elapsed": "ms", "rt": "ms"},
)

NGINX = Dialect(
    name="nginx",
    fields=tuple(
        replace(f, keys=k)
        for f, k in zip(
            _AUTO_FIELDS,
            (
                ("time_iso8601", "time_local", "msec", "time", "@timestamp"),
                ("request_method", "method"),
                ("uri", "request_uri", "path"),
                ("args", "query_string"),
                ("status",),
                ("body_bytes_sent", "bytes_sent"),
                ("request_time", "upstream_response_time"),
                ("remote_addr", "http_x_forwarded_for"),
                ("http_user_agent",),
                ("trace_id", "http_traceparent"),
                ("span_id",),
                ("level",),
                ("msg", "message"),
                ("service",),
                ("namespace",),
                ("pod",),
                ("host", "server_name"),
            ),
            strict=True,
        )
    ),
    default_duration_unit="s",
)

# The in-house service framework: ts/path/status/latency (ms)/trace_id/span_id/level.
FRAMEWORK = Dialect(
    name="framework",
    fields=_AUTO_FIELDS,
    duration_units={"latency": "ms", "duration": "ms", "request_time": "s", "elapsed": "ms", "rt": "ms"},
    default_duration_unit="ms",
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (AUTO, NGINX, FRAMEWORK)}


class FieldMappingConfig(StrictModel):
    """Which dialect to read access logs with, and per-field overrides (shared by consumer and query)."""

    dialect: Literal["auto", "nginx", "framework"] = "auto"
    """Named set of raw keys per field."""
    keys: dict[str, list[str]] = PField(default_factory=dict)
    """Extra raw keys per short field name, looked up before the dialect's own, e.g. ``{path: [req_path]}``."""
    duration_unit: Unit | None = None
    """Unit of every raw duration key, overriding the dialect's per-key units."""

    def build(self) -> Dialect:
        base = DIALECTS[self.dialect]
        unknown = [k for k in self.keys if base.by_name(k) is None]
        if unknown:
            raise ValueError(
                f"unknown field(s) {unknown} in keys — fix: use one of {[f.name for f in base.fields]}"
            )
        fields = tuple(
            replace(f, keys=tuple(self.keys.get(f.name, [])) + f.keys) if f.name in self.keys else f
            for f in base.fields
        )
        if self.duration_unit is not None:
            return replace(base, fields=fields, duration_units={}, default_duration_unit=self.duration_unit)
        return replace(base, fields=fields)
