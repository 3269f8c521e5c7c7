"""Why not: which comparisons of a condition failed, and by how much.

explain gives this module the text of a condition (a gate's or an outcome's `when`) and the
values the trace recorded for it. The text is parsed again here (explain is not the
per-employee path) and each comparison's two sides are evaluated with the recorded values by
the code the evaluator runs (each side compiled from the same checked tree). Per comparison:
the two sides' text and value, the operator, whether it holds, and the gap: how much the
left side must change for it to hold, in the left side's own units.

- `a and b`: every failing part, each with its gap;
- `a or b`: the part needing the smallest change relative to its threshold;
- `consecutive_years(c, n)`, `every_month(c)`: each fiscal year or month where c fails or
  that has no data at all; `any_month(c)`: the month nearest to holding.

A comparison is written with its variable side on the left: `90% <= x` is read as `x >= 90%`.
"""

from __future__ import annotations

import ast
import decimal
import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from .evaluate import SeriesRead, decimal_context
from .expr import ANY, FUNCTIONS, MISSING, Scope, check_expression, compile_expression, names_in
from .expr import CheckedExpression as _Checked

_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.In: "in", ast.NotIn: "not in"}
_APPLY: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b}
MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
NEGATE = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!=", "!=": "==", "in": "not in",
          "not in": "in", "is": "is not"}
_OVER = {"@months": "month", "@periods": "period", "@years": "year"}


@dataclass(frozen=True)
class Check:
    """One comparison (or true/false test) of a condition, evaluated with recorded values."""

    left: str  # the text of the variable side
    left_value: Any  # MISSING when it could not be computed
    op: str  # >=, >, <=, <, ==, !=, in, not in; `is` for a true/false test
    right: str
    right_value: Any
    holds: bool | None  # None: a value is missing
    gap: Decimal | None = None  # left must change by this (+ up, - down) to hold
    percent: bool = False  # a ratio: show the sides and the gap as percentages
    over: str = ""  # month, period, year: the entry of a month- or year-wise function
    at: str = ""  # that entry's label: 2025-08, 2023
    no_data: bool = False  # the entry has no data at all
    run: int = 0  # consecutive_years: the length of the run

    @property
    def strict(self) -> bool:
        """The left must move beyond the gap, not just reach it (> and <)."""
        return self.op in (">", "<")


@dataclass(frozen=True)
class Analysis:
    text: str
    holds: bool | None
    missed: tuple[Check, ...]  # the nearest missed conditions; () when it holds
    checks: tuple[Check, ...]  # every comparison outside month- and year-wise functions


def analyse(text: str, values: Mapping[str, Any], series: Sequence[SeriesRead] = (), *,
            percent_names: Collection[str] = ()) -> Analysis:
    """Which comparisons of `text` hold with the recorded `values` (name -> value) and
    `series` (the months, periods and years that month- and year-wise functions walk)."""
    outer = set(values) | (names_in(text) - set(FUNCTIONS))
    inner = {n for s in series for n, _ in (s.reads or ())} | (names_in(text) - set(FUNCTIONS))
    scope = Scope({n: ANY for n in outer},
                  inner=Scope({n: ANY for n in inner}, is_inner=True, what="a month"))
    checked, problems = check_expression(text, scope)
    if checked is None or problems:
        return Analysis(text, None, (), ())
    env: dict[str, Any] = dict(values)
    labels: dict[str, list[str]] = {}
    for key, over in _OVER.items():
        entries = [s for s in series if s.over == over]
        env[key] = tuple(None if s.reads is None else dict(s.reads) for s in entries)
        labels[over] = [s.label for s in entries]
    analyser = _Analyser(checked, frozenset(percent_names), labels)
    with decimal.localcontext(decimal_context()):
        holds, missed, checks = analyser.visit(checked.tree.body, env)
    return Analysis(text, holds, tuple(missed), tuple(checks))


def distance(checks: Iterable[Check]) -> Decimal:
    """How far a set of missed checks is from holding: the sum of each gap relative to its
    threshold; a check with no numeric gap (or no data) counts as infinitely far."""
    total = Decimal(0)
    for check in checks:
        if check.gap is None or check.no_data:
            return Decimal("Infinity")
        right = check.right_value
        scale = abs(right) if isinstance(right, Decimal) and right != 0 else Decimal(1)
        total += abs(check.gap) / scale
    return total


_Result = tuple[bool | None, list[Check], list[Check]]


class _Analyser:
    def __init__(self, checked: _Checked, percent_names: frozenset[str],
                 labels: Mapping[str, list[str]]) -> None:
        self.checked = checked
        self.encoded = checked.text.replace("\r", " ").replace("\n", " ").replace(
            "\t", " ").encode("utf-8")
        self.percent_names = percent_names
        self.labels = labels

    # pieces --------------------------------------------------------------------------------
    def text_of(self, node: ast.AST) -> str:
        start, end = getattr(node, "col_offset", 0), getattr(node, "end_col_offset", 0) or 0
        return self.encoded[start:end].decode("utf-8", errors="replace").strip()

    def value(self, node: ast.AST, env: Mapping[str, Any]) -> Any:
        """The node's value with the recorded values; MISSING when it cannot be computed."""
        assert isinstance(node, ast.expr)
        function = compile_expression(replace(self.checked, tree=ast.Expression(body=node)))
        try:
            return function(env)
        except (TypeError, ArithmeticError, KeyError, ValueError):
            return MISSING

    def is_percent(self, node: ast.AST) -> bool:
        if isinstance(node, ast.UnaryOp):
            return self.is_percent(node.operand)
        if isinstance(node, ast.Constant):
            return self.text_of(node).endswith("%")
        name = _dotted(node)
        return name is not None and name in self.percent_names

    # the walk ------------------------------------------------------------------------------
    def visit(self, node: ast.AST, env: Mapping[str, Any]) -> _Result:
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node, env)
        if isinstance(node, ast.Compare):
            return self.compare(node, env)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            operand = node.operand
            if isinstance(operand, ast.Compare) and len(operand.ops) == 1:
                flipped = ast.Compare(left=operand.left, ops=[_invert(operand.ops[0])],
                                      comparators=operand.comparators)
                return self.compare(flipped, env)
            return self.test(operand, env, wanted=False)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name in ("consecutive_years", "every_month", "any_month"):
                return self.series(name, node, env)
        return self.test(node, env, wanted=True)

    def bool_op(self, node: ast.BoolOp, env: Mapping[str, Any]) -> _Result:
        parts = [self.visit(value, env) for value in node.values]
        checks = [c for _, _, cs in parts for c in cs]
        results = [holds for holds, _, _ in parts]
        if isinstance(node.op, ast.And):
            holds = False if False in results else (None if None in results else True)
            missed = [c for part_holds, part, _ in parts if part_holds is not True for c in part]
            return holds, ([] if holds else missed), checks
        if True in results:
            return True, [], checks
        failing = [part for _, part, _ in parts if part]
        nearest = min(failing, key=distance) if failing else []
        return (None if None in results else False), list(nearest), checks

    def compare(self, node: ast.Compare, env: Mapping[str, Any]) -> _Result:
        checks = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            checks.append(self.pair(left, _CMP[type(op)], right, env))
            left = right
        results = [c.holds for c in checks]
        holds = False if False in results else (None if None in results else True)
        return holds, [c for c in checks if c.holds is not True], checks

    def pair(self, left: ast.AST, op: str, right: ast.AST, env: Mapping[str, Any]) -> Check:
        if op in MIRROR and not _reads(left) and _reads(right):
            left, right, op = right, left, MIRROR[op]
        left_value, right_value = self.value(left, env), self.value(right, env)
        holds: bool | None = None
        gap = None
        if left_value is not MISSING and right_value is not MISSING:
            try:
                holds = bool(_APPLY[op](left_value, right_value))
            except TypeError:
                holds = None
        if holds is False and op in ("<", "<=", ">", ">=", "==") \
                and _number(left_value) and _number(right_value):
            gap = right_value - left_value
        return Check(self.text_of(left), left_value, op, self.text_of(right), right_value,
                     holds, gap, self.is_percent(left) or self.is_percent(right))

    def test(self, node: ast.AST, env: Mapping[str, Any], wanted: bool) -> _Result:
        value = self.value(node, env)
        holds = None if not isinstance(value, bool) else value is wanted
        check = Check(self.text_of(node), value, "is", "true" if wanted else "false", wanted,
                      holds)
        return holds, ([] if holds else [check]), [check]

    def series(self, name: str, node: ast.Call, env: Mapping[str, Any]) -> _Result:
        key = "@years" if name == "consecutive_years" else "@months"
        over = _OVER[key]
        entries: Sequence[Mapping[str, Any] | None] = env.get(key, ())
        labels = list(self.labels.get(over, []))
        inner = node.args[0]
        run = 0
        if name == "consecutive_years":
            run = _int(node.args[1])
            entries, labels = list(entries)[-run:], labels[-run:]
            short = run - len(entries)
            if short > 0:  # years before the first with any data
                earlier = [_year_before(labels[0] if labels else "", k)
                           for k in range(short, 0, -1)]
                entries, labels = [None] * short + list(entries), earlier + labels
        outcomes: list[tuple[bool | None, list[Check]]] = []
        for label, entry in zip(labels, entries, strict=True):
            if entry is None:
                gone = Check(self.text_of(inner), MISSING, "", "", None, False, over=over,
                             at=label, no_data=True, run=run)
                outcomes.append((False, [gone]))
                continue
            holds, missed, _ = self.visit(inner, entry)
            outcomes.append((holds, [replace(c, over=over, at=label, run=run) for c in missed]))
        results = [holds for holds, _ in outcomes]
        if name == "any_month":
            if True in results:
                return True, [], []
            failing = [missed for _, missed in outcomes if missed]
            return False, list(min(failing, key=distance)) if failing else [], []
        holds = bool(outcomes) and all(r is True for r in results)
        if not outcomes:  # no month at all (or no year recorded): the whole test fails
            value = self.value(node, env)
            check = Check(self.text_of(node), value, "is", "true", True, False, over=over,
                          no_data=True, run=run)
            return False, [check], []
        return holds, ([] if holds else [c for _, missed in outcomes for c in missed]), []


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _reads(node: ast.AST) -> bool:
    """Whether a side reads any name (a side without names is a threshold)."""
    functions = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    return any(isinstance(n, ast.Name) and id(n) not in functions for n in ast.walk(node))


def _number(value: Any) -> bool:
    return isinstance(value, Decimal) and not isinstance(value, bool) and value.is_finite()


def _int(node: ast.AST) -> int:
    return int(node.value) if isinstance(node, ast.Constant) and type(node.value) is int else 0


def _invert(op: ast.cmpop) -> ast.cmpop:
    inverse: dict[type[ast.cmpop], type[ast.cmpop]] = {
        ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Lt: ast.GtE, ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In}
    return inverse[type(op)]()


def _year_before(label: str, count: int) -> str:
    """The label `count` fiscal years before `label` (2023 or 2023/24)."""
    match = re.fullmatch(r"(\d{4})(/\d{2})?", label)
    if not match:
        return f"{count} year(s) earlier"
    year = int(match.group(1)) - count
    return str(year) if match.group(2) is None else f"{year}/{(year + 1) % 100:02d}"


_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?![\w.])(\s*\()?")
_QUOTED = re.compile(r"('[^']*'|\"[^\"]*\")")
_KEYWORDS = {"and", "or", "not", "if", "else", "in", "is", "True", "False"}


def substitute(text: str, show: Callable[[str], str | None]) -> str:
    """The expression with each name followed by its value (`show(name)`, None to leave the
    name alone) and `*` written as `x`: `target_cash 136,800.00 x 60%`."""

    def name(match: re.Match[str]) -> str:
        word = match.group(1)
        if match.group(2) or word in _KEYWORDS:
            return match.group(0)
        shown = show(word)
        return word if shown is None else shown

    pieces = _QUOTED.split(text)
    for index in range(0, len(pieces), 2):  # outside quotes
        piece = _IDENTIFIER.sub(name, pieces[index])
        pieces[index] = re.sub(r"(?<!\*)\*(?!\*)", "x", piece)
    return "".join(pieces)


__all__ = ["MIRROR", "NEGATE", "Analysis", "Check", "analyse", "distance", "substitute"]
