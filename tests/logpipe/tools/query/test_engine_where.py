"""The engine's --where on real JSON lines (typed columns, mixed keys) agrees with a Python evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe.core.expr import And, Compare, Expr, Not, Or, compile_predicate
from logpipe.core.fields import AUTO
from logpipe.tools.query.engine import Engine, QuerySpec
from logpipe.tools.query.inputs import resolve

# status is numeric (read as DOUBLE; text that is not a number reads as missing), path and level are text.
FIELDS = ("status", "http.response.status_code", "path", "level")
STATUS_VALUES = st.one_of(
    st.none(),
    st.sampled_from([200, 404, 500, 503, 0, -1, 2.5, "500", " 42 ", "1e3", "oops", "", "-"]),
    st.integers(min_value=-5, max_value=600),
)
TEXT_VALUES = st.one_of(st.none(), st.sampled_from(["", "-", "/api/pay", "/a?x=1", "ERROR", "info", "5", "é"]))
docs = st.lists(
    st.fixed_dictionaries(
        {},
        optional={"status": STATUS_VALUES, "code": STATUS_VALUES, "path": TEXT_VALUES, "level": TEXT_VALUES},
    ),
    min_size=1,
    max_size=15,
)
literals = st.one_of(st.integers(-10, 600), st.sampled_from([500, 2.5, "500", "5", "/api/pay", "", "info", "-"]))
regexes = st.sampled_from(["^5", "0$", "^/api", "pay", "^$", "(?i)error", r"\d"])
leaves = st.one_of(
    st.builds(Compare, st.sampled_from(FIELDS), st.sampled_from(["=", "!=", ">", ">=", "<", "<="]), literals),
    st.builds(Compare, st.sampled_from(FIELDS), st.sampled_from(["~", "!~"]), regexes),
)
exprs: st.SearchStrategy[Expr] = st.recursive(
    leaves, lambda e: st.one_of(st.builds(And, e, e), st.builds(Or, e, e), st.builds(Not, e)), max_leaves=4
)


def _status(doc: dict[str, Any]) -> Any:
    """The engine's reading of a numeric field: the first raw key holding a number (JSON or text)."""
    for key in ("status", "code"):
        v = doc.get(key)
        if isinstance(v, bool) or v is None:
            continue
        try:
            f = float(v)
        except ValueError:
            continue
        return int(f) if f.is_integer() else f
    return None


def _text(key: str) -> Any:
    def get(doc: dict[str, Any]) -> Any:
        v = doc.get(key)
        if v in ((None, "-") if key == "path" else (None, "", "-")):  # "" is a path (fields.keeps_empty)
            return None
        return v.split("?", 1)[0] if key == "path" else v

    return get


def accessor(name: str) -> Any:
    return _status if name in ("status", "http.response.status_code") else _text(name)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("where")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(expr=exprs, rows=docs)
def test_engine_where_matches_the_python_evaluation(workdir: Path, expr: Expr, rows: list[dict[str, Any]]) -> None:
    log = workdir / "w.log"
    log.write_bytes(b"".join(orjson.dumps({"time": "2026-11-27T10:00:00Z", **r}) + b"\n" for r in rows))
    table, bad = Engine(resolve([str(log)]), AUTO).query(QuerySpec(where=expr))
    pred = compile_predicate(expr, accessor)
    assert bad.count == 0
    assert table.rows == [(sum(1 for r in rows if pred(r)),)]
