"""The --where language: parsing, errors that point at the column, and Python == DuckDB semantics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe.core.expr import (
    And,
    Compare,
    Expr,
    ExprError,
    Not,
    Or,
    as_text,
    compile_predicate,
    field_names,
    parse,
    to_sql,
    unparse,
)


def key(name: str) -> Any:
    return lambda row: row.get(name)


def matches(text: str, row: Mapping[str, Any]) -> bool:
    return compile_predicate(parse(text), key)(row)


# ------------------------------------------------------------------------------------------- parsing


def test_the_issue_example_parses_into_an_and_of_two_comparisons() -> None:
    assert parse('status>=500 and path~"^/api/pay"') == And(
        Compare("status", ">=", 500), Compare("path", "~", "^/api/pay")
    )


def test_or_binds_looser_than_and_and_not_binds_tightest() -> None:
    assert parse("a=1 or b=2 and not c=3") == Or(
        Compare("a", "=", 1), And(Compare("b", "=", 2), Not(Compare("c", "=", 3)))
    )
    assert parse("(a=1 or b=2) and c=3") == And(Or(Compare("a", "=", 1), Compare("b", "=", 2)), Compare("c", "=", 3))


def test_dotted_ecs_names_and_at_timestamp_are_identifiers() -> None:
    expr = parse('http.response.status_code >= 500 and url.path != "/x" and @timestamp > "2026-11-27"')
    assert field_names(expr) == {"http.response.status_code", "url.path", "@timestamp"}


def test_keywords_are_case_insensitive_and_double_equals_is_equals() -> None:
    assert parse("a==1 AND NOT b=2") == And(Compare("a", "=", 1), Not(Compare("b", "=", 2)))


def test_a_value_on_the_left_flips_the_operator() -> None:
    assert parse("500 <= status") == Compare("status", ">=", 500)
    assert parse('"a" < path') == Compare("path", ">", "a")


def test_numbers_int_float_negative_and_exponent() -> None:
    assert parse("a=-3").value == -3  # type: ignore[union-attr]
    assert parse("a>0.25").value == 0.25  # type: ignore[union-attr]
    assert parse("a<1.5e3").value == 1500.0  # type: ignore[union-attr]


def test_string_escapes_and_unknown_backslashes_kept_for_regexes() -> None:
    assert parse(r'a="say \"hi\"\\n"').value == 'say "hi"\\n'  # type: ignore[union-attr]
    assert parse(r'a="tab\there"').value == "tab\there"  # type: ignore[union-attr]
    assert parse(r'path~"^/v\d+/"').value == r"^/v\d+/"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("status>=", 9, 'a number or a "string"'),
        ("status >= 500 and", 18, "a field name"),
        ("(a=1", 5, "')' to close"),
        ("a=1)", 4, "unmatched ')'"),
        ("a = b", 5, "quote text values"),
        ('path~"("', 6, "invalid regex"),
        ("a ~ 5", 5, "a regex in double quotes"),
        ("a=1 b=2", 5, "'and', 'or'"),
        ("a $ 3", 3, "unexpected character '$'"),
        ('a="open', 3, "unterminated string"),
        ("", 1, "a condition"),
        ("status 500", 8, "an operator"),
    ],
)
def test_a_bad_expression_points_at_the_column(text: str, column: int, expected: str) -> None:
    with pytest.raises(ExprError) as info:
        parse(text)
    assert info.value.column == column
    message = str(info.value)
    assert expected in message
    shown, caret = message.splitlines()[1:3]
    assert shown == "  " + text
    assert caret == "  " + " " * (column - 1) + "^"


def test_expr_error_is_a_value_error() -> None:
    assert issubclass(ExprError, ValueError)


# ----------------------------------------------------------------------------------------- semantics


def test_missing_fields_make_every_comparison_false_even_not_equal() -> None:
    for text in ("status=500", "status!=500", 'status!="x"', 'status~"5"', 'status!~"5"', "status<1"):
        assert matches(text, {}) is False
        assert matches(text, {"status": None}) is False
    assert matches("not status=200", {}) is True


def test_numeric_strings_compare_as_numbers() -> None:
    assert matches("status>=500", {"status": "503"})
    assert not matches("status>=500", {"status": "404"})
    assert matches("status=500", {"status": "500.0"})
    assert matches("request_time>0.5", {"request_time": 0.75})


def test_non_numeric_values_are_unequal_to_numbers_but_not_ordered() -> None:
    row = {"status": "oops"}
    assert matches("status!=500", row)
    assert not matches("status=500", row)
    assert not matches("status>0", row)
    assert not matches("status<0", row)


def test_string_literals_compare_text_numbers_as_written_and_booleans_lowercase() -> None:
    assert matches('status="500"', {"status": 500})
    assert matches('ok="true"', {"ok": True})
    assert matches('time>="2026-11-27T10"', {"time": "2026-11-27T10:00:00Z"})


def test_regex_is_search_not_full_match_and_negation_needs_the_field() -> None:
    assert matches('path~"api"', {"path": "/v1/api/pay"})
    assert not matches('path~"^api"', {"path": "/v1/api/pay"})
    assert matches('path!~"^/health"', {"path": "/pay"})
    assert matches('status~"^5"', {"status": 503})


def test_each_regex_is_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import logpipe.core.expr as expr_module

    calls: list[str] = []
    real = expr_module.re.compile

    def counting(pattern: Any, flags: int = 0) -> Any:
        calls.append(pattern)
        return real(pattern, flags)

    pred_expr = parse('path~"^/a"')
    monkeypatch.setattr(expr_module.re, "compile", counting)
    pred = compile_predicate(pred_expr, key)
    for path in ("/a", "/b", "/a/c"):
        pred({"path": path})
    assert calls == ["^/a"]


def test_the_accessor_decides_how_names_map_to_keys() -> None:
    aliases = {"status": ("status", "code"), "http.response.status_code": ("status", "code")}

    def get(name: str) -> Any:
        keys = aliases[name]
        return lambda row: next((row[k] for k in keys if row.get(k) is not None), None)

    pred = compile_predicate(parse("http.response.status_code>=500"), get)
    assert [pred(r) for r in ({"code": 502}, {"status": 200}, {})] == [True, False, False]


def test_to_sql_is_never_null_so_not_keeps_missing_rows() -> None:
    con = duckdb.connect()
    sql = to_sql(parse("not status=200"), lambda n: f'"{n}"')
    rows = con.execute(f"SELECT count(*) FROM (VALUES (NULL::VARCHAR), ('200'), ('500')) t(status) WHERE {sql}")
    assert rows.fetchone() == (2,)


# ------------------------------------------------------------------ property: Python agrees with DuckDB

FIELDS = ("a", "b", "url.path", "@timestamp")
TEXTS = ("", "500", " 42 ", "1e3", "-0.5", "abc", "ABC", "x\"y'z", "/api/pay", "nan", "inf", "é", "1_000")
REGEXES = ("^a", "c$", "[0-9]+", "a|b", "^$", r"\d", "(?i)abc", ".", "^/api/", "'")

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from(TEXTS),
    st.text(alphabet="ab5./-' ", max_size=4),
)
rows = st.lists(st.fixed_dictionaries({f: values for f in FIELDS}), min_size=1, max_size=12)
literals = st.one_of(
    st.integers(min_value=-1000, max_value=1000),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.sampled_from(TEXTS),
)
comparisons = st.one_of(
    st.builds(Compare, st.sampled_from(FIELDS), st.sampled_from(["=", "!=", ">", ">=", "<", "<="]), literals),
    st.builds(Compare, st.sampled_from(FIELDS), st.sampled_from(["~", "!~"]), st.sampled_from(REGEXES)),
)
exprs: st.SearchStrategy[Expr] = st.recursive(
    comparisons,
    lambda inner: st.one_of(st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)),
    max_leaves=6,
)

_con = duckdb.connect()


def _duckdb_matches(expr: Expr, data: list[dict[str, Any]]) -> list[int]:
    cols = {f: f"c{i}" for i, f in enumerate(FIELDS)}
    _con.execute("CREATE OR REPLACE TEMP TABLE t (i INTEGER, " + ", ".join(f"{c} VARCHAR" for c in cols.values()) + ")")
    _con.executemany(
        f"INSERT INTO t VALUES (?{', ?' * len(FIELDS)})",
        [[i] + [None if r[f] is None else as_text(r[f]) for f in FIELDS] for i, r in enumerate(data)],
    )
    where = to_sql(expr, lambda name: cols[name])
    return [r[0] for r in _con.execute(f"SELECT i FROM t WHERE {where} ORDER BY i").fetchall()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=exprs, data=rows)
def test_python_and_duckdb_select_the_same_rows(expr: Expr, data: list[dict[str, Any]]) -> None:
    pred = compile_predicate(expr, key)
    assert [i for i, r in enumerate(data) if pred(r)] == _duckdb_matches(expr, data), to_sql(expr, str)


@settings(max_examples=200, deadline=None)
@given(expr=exprs)
def test_unparse_parses_back_to_the_same_tree(expr: Expr) -> None:
    assert parse(unparse(expr)) == expr
