"""Annotation templates: built-ins, document fields by short or ECS name, group labels, the search command."""

from __future__ import annotations

from consumer.alerts.evaluate import evaluate
from consumer.alerts.templates import format_duration, render, render_annotations
from tests.consumer.alerts.docs import compiled, ecs

T0 = 1_800_000_000.0


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.25, 1, 30, 90, 300, 3600, 86400 + 61)] == [
        "250ms", "1s", "30s", "1m30s", "5m", "1h", "1d1m1s",
    ]  # fmt: skip


def test_render_looks_up_builtins_then_doc_fields_then_group_labels() -> None:
    doc = ecs(path="/pay", status=502)
    values = {"count": "3"}
    out = render(
        "{{count}} on {{url.path}} ({{ path }}) status={{status}} {{service_name}} [{{nope}}]",
        values,
        doc,
        {"service_name": "pay-gw"},
    )
    assert out == "3 on /pay (/pay) status=502 pay-gw []"
    assert render("{{service.name}}", {}, None, {"service_name": "from-label"}) == "from-label"


def test_default_annotations_summary_samples_and_search() -> None:
    rule, st = compiled(
        {
            "name": "pay-5xx",
            "description": "payments failing",
            "match": {"components": ["pay-gw"], "keywords": ["connection refused"], "types": ["access"]},
            "condition": {"count": 2, "within": "30s"},
            "group_by": ["service.name", "url.path"],
            "annotations": {"summary": "{{count}} errors on {{url.path}} in {{service.name}}"},
        }
    )
    evaluate(rule, st, ecs("dial: connection refused", path="/pay", at=T0), T0)
    (m,) = evaluate(rule, st, ecs("dial: connection refused!", path="/pay", at=T0 + 1), T0 + 1)
    ann = render_annotations(rule.rule, m)
    assert ann["summary"] == "2 errors on /pay in pay-gw"
    assert ann["description"] == "payments failing"
    assert ann["samples"] == "dial: connection refused\ndial: connection refused!"
    assert ann["search"] == (
        "logpipe search 'connection refused' --component pay-gw --namespace prod --type access "
        "--from 2027-01-15T07:59:01.000Z --to 2027-01-15T08:01:01.000Z"
    )
