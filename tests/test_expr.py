"""The expression language: what it accepts, what it refuses (with the column), and that the
compiled form computes exactly what the text says."""

from __future__ import annotations

from decimal import Decimal

import pytest
import simpleeval
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.expr import (
    BOOLEAN,
    MISSING,
    NUMBER,
    CheckedExpression,
    Scope,
    check_expression,
    compile_expression,
)

FACTS = {"revenue": NUMBER, "quota": NUMBER, "gross_margin": NUMBER, "remote": BOOLEAN,
         "demos": NUMBER, "retention_rate": NUMBER, "score.revenue_attainment": NUMBER}
SCOPE = Scope(FACTS, inner=Scope({k: v for k, v in FACTS.items() if "." not in k},
                                 is_inner=True))


def checked(text: str) -> CheckedExpression:
    result, problems = check_expression(text, SCOPE)
    assert problems == [], problems
    assert result is not None
    return result


def problem(text: str) -> tuple[str, int]:
    result, problems = check_expression(text, SCOPE)
    assert result is None
    return problems[0].code, problems[0].offset


def run(text: str, **env: object) -> object:
    return compile_expression(checked(text))(env)


def test_percent_literal_is_an_exact_hundredth() -> None:
    # 15% = 15 / 100 = 0.15 exactly; 0.1499 < 0.15 <= 0.15
    assert run("gross_margin >= 15%", gross_margin=Decimal("0.15")) is True
    assert run("gross_margin >= 15%", gross_margin=Decimal("0.1499")) is False
    # 12.5% of 1000 = 125.0
    assert run("revenue * 12.5%", revenue=Decimal(1000)) == Decimal("125.000")


def test_literals_are_decimals_not_floats() -> None:
    # 0.1 + 0.2 is exactly 0.3 in decimal (a float would give 0.30000000000000004)
    value = run("0.1 + 0.2")
    assert isinstance(value, Decimal)
    assert value == Decimal("0.3")


def test_division_and_precedence() -> None:
    # 1,500,000 / 1,200,000 = 1.25; then * 2 = 2.5
    assert run("revenue / quota * 2", revenue=Decimal(1500000), quota=Decimal(1200000)) == \
        Decimal("2.5")


def test_conditional_and_functions() -> None:
    # remote: min(30, 24) / 24 = 1; clamp(1.3, 0, 1.2) = 1.2
    assert run("min(demos, 24) / 24 if remote else 0", demos=Decimal(30), remote=True) == 1
    assert run("clamp(demos / 25, 0, 1.2)", demos=Decimal("32.5")) == Decimal("1.2")
    # safe_div(5, 0, 1) falls back to 1
    assert run("safe_div(revenue, quota, 1)", revenue=Decimal(5), quota=Decimal(0)) == 1
    # round(2.345, 2) half-up = 2.35
    assert run("round(revenue, 2)", revenue=Decimal("2.345")) == Decimal("2.35")


def test_qualified_names_are_resolved_statically() -> None:
    assert checked("score.revenue_attainment * 2").reads == {"score.revenue_attainment"}
    code, _ = problem("score.revenue_atainment")
    assert code == "E_EXPR_UNKNOWN_NAME"


def test_unknown_name_suggests_the_closest_declared_one() -> None:
    result, problems = check_expression("revnue / quota", SCOPE)
    assert result is None
    assert problems[0].code == "E_EXPR_UNKNOWN_NAME"
    assert "did you mean 'revenue'" in problems[0].message
    assert problems[0].offset == 0


def test_every_month_reads_facts_month_by_month() -> None:
    # demos per month 3, 4, 3: every month >= 3 holds; 3, 2, 5 does not
    months_ok = [{"demos": Decimal(n)} for n in (3, 4, 3)]
    months_bad = [{"demos": Decimal(n)} for n in (3, 2, 5)]
    assert run("every_month(demos >= 3)", **{"@months": months_ok}) is True
    assert run("every_month(demos >= 3)", **{"@months": months_bad}) is False
    assert checked("every_month(demos >= 3)").reads == frozenset()
    assert checked("every_month(demos >= 3)").inner_reads == {"demos"}


def test_consecutive_years_needs_every_year_present() -> None:
    good = {"retention_rate": Decimal("0.92")}
    low = {"retention_rate": Decimal("0.89")}
    text = "consecutive_years(retention_rate >= 90%, 3)"
    assert run(text, **{"@years": [good, good, good]}) is True
    assert run(text, **{"@years": [good, low, good]}) is False  # 89% < 90% breaks the run
    assert run(text, **{"@years": [good, None, good]}) is False  # a missing year breaks it
    assert run(text, **{"@years": [good, good]}) is False  # only two years of history


def test_is_missing_reads_presence_only() -> None:
    result = checked("0 if is_missing(revenue) else revenue")
    assert result.presence_reads == {"revenue"}
    assert run("is_missing(revenue)", revenue=MISSING) is True


@pytest.mark.parametrize(
    ("text", "code", "offset"),
    [
        ("__import__('os')", "E_EXPR_FORBIDDEN", 0),
        ("().__class__", "E_EXPR_FORBIDDEN", 0),
        ("revenue.__class__", "E_EXPR_FORBIDDEN", 0),
        ("9**9**9", "E_EXPR_TOO_COMPLEX", 3),
        ("4000000**4000000", "E_EXPR_TOO_COMPLEX", 9),
        ("revenue ** quota", "E_EXPR_TOO_COMPLEX", 11),
        ("lambda: 1", "E_EXPR_FORBIDDEN", 0),
        ("[x for x in (1, 2)]", "E_EXPR_FORBIDDEN", 0),
        ("revenue[0]", "E_EXPR_FORBIDDEN", 0),
        ("f'{revenue}'", "E_EXPR_FORBIDDEN", 0),
        ("(x := 1)", "E_EXPR_FORBIDDEN", 1),
        ("'%.999999999f' % 1.0", "E_EXPR_FORBIDDEN", 15),
        ("'a' * 10", "E_EXPR_TYPE", 0),
        ("'" + "x" * 300 + "'", "E_EXPR_TOO_COMPLEX", 0),
        ("revenue; quota", "E_EXPR_SYNTAX", 7),
        ("'unterminated", "E_EXPR_SYNTAX", 0),
        ("(revenue + 1", "E_EXPR_SYNTAX", 0),
        ("revenue % 2", "E_EXPR_FORBIDDEN", 8),
        ("1_000 + revenue", "E_EXPR_FORBIDDEN", 0),
        ("0x10", "E_EXPR_FORBIDDEN", 0),
        ("1j", "E_EXPR_FORBIDDEN", 0),
        ("rand()", "E_EXPR_UNKNOWN_FUNCTION", 0),
        ("revenue.update(sales=10)", "E_EXPR_FORBIDDEN", 0),
        ("max(revenue, key=1)", "E_EXPR_ARGUMENTS", 0),
        ("revenue + remote", "E_EXPR_TYPE", 10),
        ("revenue > 'x'", "E_EXPR_TYPE", 10),
        ("not revenue", "E_EXPR_TYPE", 0),
        ("revenue and remote", "E_EXPR_TYPE", 0),
        ("clamp(revenue, 1)", "E_EXPR_ARGUMENTS", 0),
        ("consecutive_years(remote, 99)", "E_EXPR_ARGUMENTS", 26),
        ("every_month(score.revenue_attainment > 1)", "E_EXPR_UNKNOWN_NAME", 12),
        ("", "E_EXPR_SYNTAX", 0),
        ("-" * 100 + "1", "E_EXPR_TOO_COMPLEX", 41),  # the 41st nested minus
        ("(" * 300 + "1" + ")" * 300, "E_EXPR_TOO_COMPLEX", 0),
        ("x" * 2001, "E_EXPR_TOO_COMPLEX", 0),
        ("销售额 > 1", "E_EXPR_UNKNOWN_NAME", 0),
        ("revenue > 1 and 销售额", "E_EXPR_UNKNOWN_NAME", 16),
    ],
)
def test_refusals_carry_code_and_column(text: str, code: str, offset: int) -> None:
    assert problem(text) == (code, offset)


def test_all_problems_are_reported_not_just_the_first() -> None:
    _, problems = check_expression("revnue + quot", SCOPE)
    assert [(p.code, p.offset) for p in problems] == [
        ("E_EXPR_UNKNOWN_NAME", 0), ("E_EXPR_UNKNOWN_NAME", 9)]


def test_broken_names_are_read_silently() -> None:
    scope = Scope(FACTS, broken=frozenset({"bad_indicator"}))
    result, problems = check_expression("bad_indicator * 2", scope)
    assert problems == []
    assert result is not None and result.uses_broken


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.text(max_size=60))
def test_any_text_gives_diagnostics_or_a_compiled_expression(text: str) -> None:
    result, problems = check_expression(text, SCOPE)
    assert (result is None) == bool(problems)
    for item in problems:
        assert item.code.startswith("E_EXPR_")
        assert 0 <= item.offset <= len(text)
    if result is not None:
        compile_expression(result)


_ATOMS = st.sampled_from(["revenue", "quota", "demos", "1", "2.5", "15%", "0.1", "3"])


@st.composite
def arithmetic(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(_ATOMS)
    op = draw(st.sampled_from(["+", "-", "*", "/"]))
    return f"({draw(arithmetic(depth + 1))} {op} {draw(arithmetic(depth + 1))})"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(arithmetic(), st.decimals(min_value=1, max_value=10**7, places=2),
       st.decimals(min_value=1, max_value=10**7, places=2),
       st.decimals(min_value=1, max_value=100, places=0))
def test_compiled_arithmetic_agrees_with_simpleeval(text: str, revenue: Decimal, quota: Decimal,
                                                    demos: Decimal) -> None:
    """simpleeval defines the language; the compiled form must compute the same value."""
    result = checked(text)
    names = {"revenue": revenue, "quota": quota, "demos": demos}
    ours = compile_expression(result)(names)
    # simpleeval reads literals as floats; give it the same exact decimals as names instead
    literal_text = text.replace("15%", "pct15")
    for literal in ("2.5", "0.1", "1", "3"):
        literal_text = literal_text.replace(f" {literal})", f" lit_{literal.replace('.', '_')})")
        literal_text = literal_text.replace(f"({literal} ", f"(lit_{literal.replace('.', '_')} ")
        if literal_text == literal:
            literal_text = f"lit_{literal.replace('.', '_')}"
    names.update({"pct15": Decimal("0.15"), "lit_2_5": Decimal("2.5"), "lit_0_1": Decimal("0.1"),
                  "lit_1": Decimal(1), "lit_3": Decimal(3)})
    try:
        theirs = simpleeval.simple_eval(literal_text, names=names)
    except ZeroDivisionError:
        return
    except ArithmeticError:
        return
    assert ours == theirs
