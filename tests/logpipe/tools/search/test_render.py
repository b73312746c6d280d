"""Rendering hits (unit): text lines, colour per pod, JSON lines, grep -C marks."""

from __future__ import annotations

import io
from typing import Any

import orjson

from logpipe.tools.search.hits import LogDoc
from logpipe.tools.search.render import Renderer, format_duration_ns, pod_colour, summary


def doc(**source: Any) -> LogDoc:
    base: dict[str, Any] = {
        "@timestamp": "2026-11-27T09:40:01.123456789Z",
        "kubernetes": {"pod": {"name": "pay-7d9f-a"}},
        "log": {"level": "error"},
        "message": "card declined\n",
        "logpipe": {"type": "app"},
    }
    base.update(source)
    return LogDoc("id-1", "logpipe-app-2026.11.27", base)


def test_plain_text_line_has_time_pod_level_message() -> None:
    out = io.StringIO()
    Renderer(out, colour=False, as_json=False).write(doc())
    assert out.getvalue() == "2026-11-27T09:40:01.123Z pay-7d9f-a ERROR card declined\n"


def test_colour_is_per_pod_and_stable() -> None:
    out = io.StringIO()
    r = Renderer(out, colour=True, as_json=False)
    r.write(doc())
    code = pod_colour("pay-7d9f-a")
    assert f"\x1b[{code}mpay-7d9f-a\x1b[0m" in out.getvalue()
    assert "\x1b[31mERROR" in out.getvalue()
    assert pod_colour("pay-7d9f-a") == code
    assert len({pod_colour(f"pod-{i}") for i in range(50)}) > 6


def test_access_and_span_documents_summarise_themselves() -> None:
    access = doc(
        http={"request": {"method": "GET"}, "response": {"status_code": 502}},
        url={"path": "/api/pay"},
        event={"duration": 12_345_678},
        logpipe={"type": "access"},
    )
    assert summary(access) == "GET /api/pay 502 12.3ms"
    span = doc(
        span={"name": "charge"}, event={"duration": 1_500_000_000}, trace={"id": "t1"}, logpipe={"type": "trace"}
    )
    assert summary(span) == "charge 1.50s trace=t1"
    assert format_duration_ns(850_000) == "850µs"
    assert format_duration_ns(None) == ""


def test_json_lines_carry_id_index_source_and_context_marker() -> None:
    out = io.StringIO()
    r = Renderer(out, colour=True, as_json=True)
    r.write_all([doc(), doc().with_context("after")])
    first, second = (orjson.loads(x) for x in out.getvalue().splitlines())
    assert (first["_id"], first["_index"], first["kubernetes"]["pod"]["name"]) == (
        "id-1", "logpipe-app-2026.11.27", "pay-7d9f-a"
    )
    assert "_context" not in first and second["_context"] == "after"
    assert r.printed == 1  # context lines are not hits
    r.separator()
    assert out.getvalue().count("\n") == 2  # no separator in JSON


def test_context_marks_like_grep() -> None:
    out = io.StringIO()
    r = Renderer(out, colour=False, as_json=False, marks=True)
    r.write(doc().with_context("before"))
    r.write(doc())
    r.separator()
    assert out.getvalue().splitlines() == [
        "2026-11-27T09:40:01.123Z pay-7d9f-a- ERROR card declined",
        "2026-11-27T09:40:01.123Z pay-7d9f-a: ERROR card declined",
        "--",
    ]
