"""The ``--where`` expression language shared by ``logpipe query`` and the alert rules.

Grammar (lowest precedence first)::

    expr       := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison
    comparison := FIELD OP VALUE | VALUE OP FIELD        OP: = == != > >= < <=
                | FIELD ("~" | "!~") STRING              regex, search semantics
    FIELD      := [A-Za-z_@][A-Za-z0-9_.@-]*             e.g. status, url.path, @timestamp
    VALUE      := NUMBER | STRING                        "double quoted", backslash escapes

Keywords are case-insensitive. In strings ``\\"``, ``\\\\``, ``\\n``, ``\\t`` and ``\\r`` are escapes;
any other backslash is kept as written, so a regex reads naturally: ``path~"^/api/v\\d+/"``.

Semantics, identical in :func:`compile_predicate` (Python) and :func:`to_sql` (DuckDB):

* A **missing** field (absent or JSON null) makes every comparison false, including ``!=`` and
  ``!~``: ``status!=200`` means "has a status and it is not 200". ``not status=200`` is the way to
  also keep lines without a status.
* A **number** literal compares numerically; the field's value is converted like DuckDB's
  ``TRY_CAST(x AS DOUBLE)`` (``"500"`` is 500). A value that is not a number is unequal to it
  (``!=`` true) and neither smaller nor larger. NaN orders above every number, as in DuckDB.
* A **string** literal compares the value's text (numbers as written in JSON, booleans as
  ``true``/``false``); ``<``/``>`` order by code point.
* ``~`` is Python ``re.search`` here and RE2 ``regexp_matches`` in DuckDB: keep to the common
  syntax (no look-around or back-references). Each regex is compiled once.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

CompareOp = str
"""One of ``= != > >= < <= ~ !~``."""
_CMP_OPS = ("=", "!=", ">", ">=", "<", "<=")
_FLIP = {"=": "=", "!=": "!=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}


class ExprError(ValueError):
    """A bad expression; ``column`` is 1-based and the message shows the text with a caret under it."""

    def __init__(self, text: str, column: int, problem: str) -> None:
        self.text = text
        self.column = column
        self.problem = problem
        caret = " " * (column - 1) + "^"
        super().__init__(f"invalid expression at column {column}: {problem}\n  {text}\n  {caret}")

    def __reduce__(self) -> tuple[type[ExprError], tuple[str, int, str]]:
        return (ExprError, (self.text, self.column, self.problem))


@dataclass(frozen=True, slots=True)
class Compare:
    """``field op value``; for ``~``/``!~`` the value is the regex source."""

    field: str
    op: CompareOp
    value: str | int | float


@dataclass(frozen=True, slots=True)
class And:
    """Both sides hold."""

    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Or:
    """Either side holds."""

    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Not:
    """The operand does not hold."""

    operand: Expr


Expr = Compare | And | Or | Not

# ---------------------------------------------------------------------------------------------- lexer

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_.@]))
  | (?P<ident>[A-Za-z_@][A-Za-z0-9_.@-]*)
  | (?P<string>")
  | (?P<op>==|!=|>=|<=|!~|=|>|<|~)
  | (?P<lparen>\()
  | (?P<rparen>\))
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not"}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # number ident string op lparen rparen and or not eof
    value: Any
    pos: int  # 0-based offset
    text: str


def _read_string(text: str, start: int) -> tuple[str, int]:
    """The string starting at the quote at ``start`` and the offset after its closing quote."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    raise ExprError(text, start + 1, 'unterminated string: add the closing "')


def _tokens(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            problem = f"unexpected character {text[pos]!r}: expected a field, a value, an operator or ("
            raise ExprError(text, pos + 1, problem)
        kind = m.lastgroup or ""
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "string":
            value, end = _read_string(text, pos)
            toks.append(_Tok("string", value, pos, text[pos:end]))
            pos = end
            continue
        raw = m.group()
        if kind == "number":
            toks.append(_Tok("number", _number(raw), pos, raw))
        elif kind == "ident" and raw.lower() in _KEYWORDS:
            toks.append(_Tok(raw.lower(), raw, pos, raw))
        else:
            toks.append(_Tok(kind, "=" if raw == "==" else raw, pos, raw))
        pos = m.end()
    toks.append(_Tok("eof", None, len(text), ""))
    return toks


def _number(raw: str) -> int | float:
    try:
        n = int(raw)
    except ValueError:
        return float(raw)
    # Beyond 2**63 a value only compares as a double anyway (and float() of it must not overflow).
    return n if abs(n) < 2**63 else float(raw)


# --------------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: _Tok, expected: str) -> ExprError:
        found = "the end of the expression" if tok.kind == "eof" else repr(tok.text)
        return ExprError(self.text, tok.pos + 1, f"expected {expected}, found {found}")

    def parse(self) -> Expr:
        if self.peek().kind == "eof":
            raise self.fail(self.peek(), 'a condition such as status>=500 or path~"^/api"')
        expr = self.or_()
        tok = self.peek()
        if tok.kind != "eof":
            if tok.kind == "rparen":
                raise ExprError(self.text, tok.pos + 1, "unmatched ')': remove it or add a '(' before")
            raise self.fail(tok, "'and', 'or' or the end of the expression")
        return expr

    def or_(self) -> Expr:
        left = self.and_()
        while self.peek().kind == "or":
            self.take()
            left = Or(left, self.and_())
        return left

    def and_(self) -> Expr:
        left = self.unary()
        while self.peek().kind == "and":
            self.take()
            left = And(left, self.unary())
        return left

    def unary(self) -> Expr:
        tok = self.peek()
        if tok.kind == "not":
            self.take()
            return Not(self.unary())
        if tok.kind == "lparen":
            self.take()
            inner = self.or_()
            close = self.peek()
            if close.kind != "rparen":
                raise self.fail(close, "')' to close the '(' at column " + str(tok.pos + 1))
            self.take()
            return inner
        return self.comparison()

    def comparison(self) -> Expr:
        first = self.take()
        if first.kind not in ("ident", "number", "string"):
            raise self.fail(first, "a field name, 'not' or '('")
        op_tok = self.take()
        if op_tok.kind != "op":
            raise self.fail(op_tok, "an operator (= != > >= < <= ~ !~) after " + repr(first.text))
        op = str(op_tok.value)
        second = self.take()
        if first.kind == "ident":
            if op in ("~", "!~"):
                if second.kind != "string":
                    raise self.fail(second, 'a regex in double quotes, e.g. "^/api/"')
                self._check_regex(second)
                return Compare(first.value, op, second.value)
            if second.kind not in ("number", "string"):
                hint = " (quote text values)" if second.kind == "ident" else ""
                raise self.fail(second, 'a number or a "string"' + hint)
            return Compare(first.value, op, second.value)
        # A value on the left: `500 <= status` is `status >= 500`.
        if op in ("~", "!~"):
            problem = 'a regex match needs the field on the left: field~"re"'
            raise ExprError(self.text, first.pos + 1, problem)
        if second.kind != "ident":
            raise self.fail(second, "a field name (one side of a comparison must be a field)")
        return Compare(second.value, _FLIP[op], first.value)

    def _check_regex(self, tok: _Tok) -> None:
        try:
            re.compile(tok.value)
        except re.error as exc:
            raise ExprError(self.text, tok.pos + 1, f"invalid regex {tok.value!r}: {exc}") from None


def parse(text: str) -> Expr:
    """Parse ``text`` into an AST of frozen dataclasses; raises :class:`ExprError` pointing at the column."""
    return _Parser(text).parse()


def field_names(expr: Expr) -> set[str]:
    """Every field name the expression mentions, as written."""
    if isinstance(expr, Compare):
        return {expr.field}
    if isinstance(expr, Not):
        return field_names(expr.operand)
    return field_names(expr.left) | field_names(expr.right)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unparse(expr: Expr) -> str:
    """Text that parses back to ``expr`` (fully parenthesised where precedence needs it)."""
    if isinstance(expr, Compare):
        v = expr.value
        if isinstance(v, str):
            value = _quote(v)
        elif isinstance(v, float) and math.isinf(v):
            value = "1e999" if v > 0 else "-1e999"
        else:
            value = repr(v)
        return f"{expr.field}{expr.op}{value}"
    if isinstance(expr, Not):
        return f"not ({unparse(expr.operand)})"
    word = "and" if isinstance(expr, And) else "or"
    return f"({unparse(expr.left)}) {word} ({unparse(expr.right)})"


# ------------------------------------------------------------------------------------ Python evaluator

Accessor = Callable[[Mapping[str, Any]], Any]
Predicate = Callable[[Mapping[str, Any]], bool]


def as_number(value: Any) -> float | None:
    """The value as DuckDB's ``TRY_CAST(text AS DOUBLE)`` would read it, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.isascii():
        try:
            return float(value)
        except ValueError:
            return None
    return None


def as_text(value: Any) -> str:
    """The value's text as DuckDB's ``CAST(x AS VARCHAR)`` renders it (JSON spelling for the rest)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _numeric(op: str, lit: float, get: Accessor) -> Predicate:
    compare = _COMPARE[op]

    def check(row: Mapping[str, Any]) -> bool:
        raw = get(row)
        if raw is None:
            return False
        v = as_number(raw)
        if v is None:
            return op == "!="
        if math.isnan(v):  # DuckDB orders NaN above every number
            return op in ("!=", ">", ">=")
        return compare(v, lit)

    return check


def _textual(op: str, lit: str, get: Accessor) -> Predicate:
    compare = _COMPARE[op]

    def check(row: Mapping[str, Any]) -> bool:
        raw = get(row)
        if raw is None:
            return False
        return compare(as_text(raw), lit)

    return check


def _regex(negate: bool, pattern: str, get: Accessor) -> Predicate:
    search = re.compile(pattern).search

    def check(row: Mapping[str, Any]) -> bool:
        raw = get(row)
        if raw is None:
            return False
        return (search(as_text(raw)) is None) if negate else (search(as_text(raw)) is not None)

    return check


def compile_predicate(expr: Expr, get: Callable[[str], Accessor]) -> Predicate:
    """A function ``row -> bool``; ``get(name)`` returns the accessor for a field (None when missing)."""
    if isinstance(expr, Compare):
        acc = get(expr.field)
        if expr.op in ("~", "!~"):
            return _regex(expr.op == "!~", str(expr.value), acc)
        if isinstance(expr.value, str):
            return _textual(expr.op, expr.value, acc)
        return _numeric(expr.op, float(expr.value), acc)
    if isinstance(expr, Not):
        inner = compile_predicate(expr.operand, get)
        return lambda row: not inner(row)
    left = compile_predicate(expr.left, get)
    right = compile_predicate(expr.right, get)
    if isinstance(expr, And):
        return lambda row: left(row) and right(row)
    return lambda row: left(row) or right(row)


# ------------------------------------------------------------------------------------------ SQL output


def sql_string(s: str) -> str:
    """A DuckDB string literal (standard SQL: quotes doubled, backslashes literal)."""
    return "'" + s.replace("'", "''") + "'"


def to_sql(expr: Expr, column: Callable[[str], str]) -> str:
    """A DuckDB boolean expression (never NULL) with the same meaning as :func:`compile_predicate`."""
    if isinstance(expr, Compare):
        col = column(expr.field)
        sql_op = "<>" if expr.op == "!=" else expr.op
        if expr.op in ("~", "!~"):
            match = f"regexp_matches(CAST({col} AS VARCHAR), {sql_string(str(expr.value))})"
            return f"COALESCE({'NOT ' if expr.op == '!~' else ''}{match}, false)"
        if isinstance(expr.value, str):
            return f"COALESCE(CAST({col} AS VARCHAR) {sql_op} {sql_string(expr.value)}, false)"
        lit = f"CAST('{float(expr.value)!r}' AS DOUBLE)"
        num = f"TRY_CAST({col} AS DOUBLE)"
        if expr.op == "!=":
            return f"COALESCE({num} <> {lit}, ({col}) IS NOT NULL)"
        return f"COALESCE({num} {sql_op} {lit}, false)"
    if isinstance(expr, Not):
        return f"(NOT {to_sql(expr.operand, column)})"
    word = "AND" if isinstance(expr, And) else "OR"
    return f"({to_sql(expr.left, column)} {word} {to_sql(expr.right, column)})"
