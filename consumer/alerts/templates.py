"""Annotation templates: ``{{count}} errors on {{url.path}} in {{service.name}}``.

A ``{{name}}`` is replaced by, in order: a built-in value (below), a field of the last matching
document (short name such as ``path`` or ECS name such as ``url.path``), or the group label of
that field; otherwise by ``""``. Built-ins:

``rule`` ``alertname`` ``severity`` ``description`` ``status`` (firing/resolved) ``reason``
(new/realert/reassert/resolved) ``why`` ``count`` ``total`` ``ratio`` ``started_at`` ``at``
``component`` ``samples`` (the last matching lines, truncated, one per line) ``sample`` (the last
one), ``search`` (the ``logpipe search`` command that shows the context), ``trace_id`` (the last
matching document's ``trace.id``: a span's, or an access line's that carries one) and ``trace`` (the
``logpipe trace ID`` command that shows that trace's waterfall), and for a latency condition
``value`` (the measured p99/avg..., e.g. ``1.2s``).

When the last matching document carries a trace id, the default annotations add ``trace_id`` and
``trace``, so every channel's message names the trace to open.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from consumer.alerts.fieldpath import accessor, label_name, text_of

if TYPE_CHECKING:
    from consumer.alerts.evaluate import Match
    from consumer.alerts.rules import Rule

_VAR = re.compile(r"\{\{\s*([A-Za-z_@][A-Za-z0-9_.@-]*)\s*\}\}")

DEFAULT_ANNOTATIONS: dict[str, str] = {
    "summary": "{{rule}} on {{component}}: {{why}}",
    "samples": "{{samples}}",
    "search": "{{search}}",
}


def format_duration(seconds: float) -> str:
    """``0.5`` → ``500ms``, ``90`` → ``1m30s``, ``3600`` → ``1h``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    total = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts) or "0s"


def format_latency(seconds: float) -> str:
    """A latency with 3 significant digits: ``0.8123`` → ``812ms``, ``0.0125`` → ``12.5ms``, ``1.234`` → ``1.23s``."""
    if seconds >= 60:
        return format_duration(seconds)
    if seconds >= 1:
        return f"{seconds:.3g}s"
    ms = seconds * 1000
    if ms >= 1 or ms == 0:
        return f"{ms:.3g}ms"
    return f"{ms * 1000:.3g}µs"


def iso(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds (Alertmanager's and Elasticsearch's format)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render(template: str, values: Mapping[str, str], doc: Mapping[str, Any] | None, labels: Mapping[str, str]) -> str:
    """Replace each ``{{name}}`` in ``template`` (see the module docstring for the lookup order)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in values:
            return values[name]
        if doc is not None:
            v = accessor(name)(doc)
            if v is not None:
                return text_of(v)
        return labels.get(label_name(name), labels.get(name, ""))

    return _VAR.sub(sub, template)


def search_command(rule: Rule, match: Match) -> str:
    """The ``logpipe search`` command showing the lines around the alert."""
    labels = match.labels
    doc = match.doc or {}
    component = text_of(accessor("service.name")(doc)) or labels.get("service_name") or labels.get("component", "")
    if not component and len(rule.match.components) == 1:
        component = rule.match.components[0]
    args = ["logpipe", "search"]
    words = rule.match.keywords or rule.match.keywords_all
    if words:
        args.append(words[0])
    if component:
        args += ["--component", component]
    namespace = text_of(accessor("kubernetes.namespace")(doc)) or labels.get("kubernetes_namespace", "")
    if namespace:
        args += ["--namespace", namespace]
    if len(rule.match.types) == 1:
        args += ["--type", rule.match.types[0]]
    args += ["--from", iso(match.started_at - 60), "--to", iso(match.at + 60)]
    return " ".join(shlex.quote(a) for a in args)


_TRACE_ID = accessor("trace.id")


def trace_id_of(doc: Mapping[str, Any]) -> str:
    """The document's ``trace.id`` (a span's, or a log line's that carries one), or ``""``."""
    return text_of(_TRACE_ID(doc))


def trace_command(trace_id: str) -> str:
    """The ``logpipe trace ID`` command that shows the trace's waterfall."""
    return f"logpipe trace {shlex.quote(trace_id)}" if trace_id else ""


def builtins(rule: Rule, match: Match) -> dict[str, str]:
    """The built-in template values for ``match``."""
    doc = match.doc or {}
    labels = match.labels
    component = text_of(accessor("service.name")(doc)) or labels.get("service_name") or labels.get("component", "")
    ratio = f"{match.count / match.total:.1%}" if match.total else ""
    trace_id = trace_id_of(doc)
    return {
        "rule": rule.name,
        "alertname": rule.name,
        "severity": rule.severity,
        "description": rule.description,
        "status": match.status,
        "reason": match.reason,
        "why": match.why,
        "count": str(match.count),
        "total": str(match.total),
        "ratio": ratio,
        "started_at": iso(match.started_at),
        "at": iso(match.at),
        "component": component,
        "samples": "\n".join(match.samples),
        "sample": match.samples[-1] if match.samples else "",
        "search": search_command(rule, match),
        "trace_id": trace_id,
        "trace": trace_command(trace_id),
        "value": format_latency(match.value) if match.value is not None else "",
    }


def render_annotations(rule: Rule, match: Match) -> dict[str, str]:
    """The rule's annotations rendered for ``match`` (defaults for summary, samples and search).

    A group restored from Alertmanager after a restart has no document: its stored annotations
    are kept rather than rendered empty.
    """
    if match.doc is None and match.restored_annotations:
        return dict(match.restored_annotations)
    values = builtins(rule, match)
    templates = dict(DEFAULT_ANNOTATIONS)
    if rule.description:
        templates["description"] = "{{description}}"
    if values["trace_id"]:
        templates["trace_id"] = "{{trace_id}}"
        templates["trace"] = "{{trace}}"
    templates.update(rule.annotations)
    return {k: render(t, values, match.doc, match.labels) for k, t in templates.items()}
