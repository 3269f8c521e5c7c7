"""Exact money: no float anywhere in the money path, reward lines that sum to the total, pool
splits that sum to the pool, and rounding that follows the declared mode on both sides of 0."""

from __future__ import annotations

import decimal
import math
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.compiler import ROUNDING
from engine.evaluate import EmployeeInput, decimal_context, evaluate_employee
from engine.expr import NUMBER, Scope, check_expression, compile_expression
from engine.facts import read_facts
from engine.population import split_pool
from engine.report import render_csv, render_json
from engine.run import RunInputs, load_policies, run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POLICIES = ROOT / "policies"


@contextmanager
def floats_trapped() -> Iterator[None]:
    """The thread's default decimal context traps FloatOperation: any float mixed into a
    Decimal (constructed from, compared with, or computed with) raises."""
    context = decimal.getcontext()
    before = context.traps[decimal.FloatOperation]
    context.traps[decimal.FloatOperation] = True
    try:
        yield
    finally:
        context.traps[decimal.FloatOperation] = before


def example_inputs() -> RunInputs:
    return RunInputs(facts=EXAMPLES / "facts.csv", ratings=EXAMPLES / "ratings.csv",
                     teams=EXAMPLES / "teams.csv", team_facts=EXAMPLES / "team_facts.csv",
                     company_facts=EXAMPLES / "company_facts.csv", lines=EXAMPLES / "lines.csv")


def test_the_trap_catches_a_float() -> None:
    """The harness itself: a float mixed into a Decimal raises under the trap."""
    with floats_trapped(), pytest.raises(decimal.FloatOperation):
        Decimal(0.1)  # noqa: RUF032  (the float is the point)
    with decimal.localcontext(decimal_context()), pytest.raises(decimal.FloatOperation):
        _ = Decimal(1) < 0.5  # the evaluator's own context traps it too


@pytest.mark.parametrize("folder", ["2025-Q3", "2025-Q4"])
def test_a_whole_run_of_the_shipped_policies_mixes_in_no_float(folder: str) -> None:
    """Reading every example file, evaluating, the population stage (caps, selections, team
    pools) and rendering, all with FloatOperation trapped outside the evaluator as well as in
    it."""
    with floats_trapped():
        policies = load_policies([POLICIES / folder])
        result = run(policies, example_inputs(), "2025-Q3", trace=True, ignore_effective=True)
        assert result.results and not result.errors
        render_json(result)
        render_csv(result)
        for employee in result.results:
            for line in employee.rewards:
                assert line.amount is None or type(line.amount) is Decimal
            assert type(employee.total_pay) is Decimal


def test_excel_numbers_are_read_with_no_float_mixed_in(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["employee", "period", "role", "revenue", "margin", "visits"])
    sheet.append(["E1", "2025-07", "rep", 1234.5, 0.15, 3.0])
    sheet.append(["E2", "2025-07", "rep", 0.1 + 0.2, 0.3, 4])
    path = tmp_path / "facts.xlsx"
    workbook.save(path)
    with floats_trapped():
        read = read_facts(path, {"revenue": "money", "margin": "ratio", "visits": "integer"})
    values = [row.values for row in read.rows]
    assert values[0] == {"revenue": Decimal("1234.50"), "margin": Decimal("0.15"),
                         "visits": Decimal(3)}
    assert values[1]["revenue"] == Decimal("0.30")  # 0.30000000000000004, as Excel shows it
    assert all(type(v) is Decimal for row in values for v in row.values())


# --- reward lines sum to the employee's total -----------------------------------------------

LINES = """meritpay: 1
policy: lines
version: "1"
effective: {from: 2025-01-01}
period: quarter
currency: CNY
rounding: {places: 2, mode: half_even}
facts:
  revenue: {type: money, label: Revenue}
  quota: {type: money, label: Quota}
  team_profit: {type: money, scope: team, label: Team profit}
indicators:
  attainment:
    kind: result
    label: Attainment
    value: safe_div(revenue, quota, 0)
    score: {curve: linear, zero_at: 0, full_at: 1, cap: 1.5}
gates:
  sold: {when: revenue > 0, why: Sold}
rewards:
  fixed: {kind: amount, label: Fixed, amount: "quota * 0.3333%"}
  capped:
    kind: amount
    label: Capped
    amount: revenue * 7.77% * score.attainment
    cap: "5000.005"
    floor: "-123.455"
  commission:
    kind: commission
    label: Commission
    base: revenue
    mode: graduated
    brackets: [{upto: 1000, rate: 1.5%}, {upto: 10000, rate: 2.25%}, {rate: 3.125%}]
    requires: {gate: sold, else: {rate: 0.5%}}
  pool: {kind: pool, label: Pool, among: team, split: shares, amount: team_profit * 1.1%}
roles:
  rep: {label: Rep, weights: {attainment: 100%}}
"""

money = st.decimals(min_value=-10**7, max_value=10**8, places=2, allow_nan=False,
                    allow_infinity=False)
shares = st.decimals(min_value=Decimal("0.001"), max_value=1000, places=3)


@pytest.fixture(scope="module")
def lines_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("money") / "lines.yaml"
    path.write_text(LINES, encoding="utf-8")
    return path


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(money, money, shares), min_size=1, max_size=6),
       money)
def test_reward_lines_sum_to_the_employees_total(
        lines_policy: Path, people: list[tuple[Decimal, Decimal, Decimal]],
        profit: Decimal) -> None:
    folder = lines_policy.parent / f"run{abs(hash((tuple(people), profit))) % 10**9}"
    folder.mkdir(exist_ok=True)
    facts = folder / "facts.csv"
    teams = folder / "teams.csv"
    team_facts = folder / "team_facts.csv"
    facts.write_text("employee,period,role,revenue,quota\n" + "".join(
        f"E{i},2025-07,rep,{r},{abs(q)}\n" for i, (r, q, _) in enumerate(people)),
        encoding="utf-8")
    teams.write_text("team,member,share\n" + "".join(
        f"T,E{i},{s}\n" for i, (_, _, s) in enumerate(people)), encoding="utf-8")
    team_facts.write_text(f"team,period,team_profit\nT,2025-07,{profit}\n", encoding="utf-8")
    with floats_trapped():
        result = run(load_policies([lines_policy]),
                     RunInputs(facts=facts, teams=teams, team_facts=team_facts), "2025-Q3")
    cent = Decimal("0.01")
    pool_parts = Decimal(0)
    for employee in result.results:
        amounts = [line.amount for line in employee.rewards if line.amount is not None]
        assert employee.total_pay == sum(amounts, Decimal(0))
        assert all(a == a.quantize(cent) for a in amounts)  # each line rounded once, to cents
        pool_parts += employee.reward("pool").amount  # type: ignore[union-attr,operator]
    pool = (profit * Decimal("0.011")).quantize(cent, rounding=decimal.ROUND_HALF_EVEN)
    assert pool_parts == pool


# --- pool splits sum to the pool ----------------------------------------------------------

@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.integers(min_value=0, max_value=6),
       st.integers(min_value=-10**15, max_value=10**15),
       st.lists(st.decimals(min_value=Decimal("1E-12"), max_value=Decimal(10**9),
                            allow_nan=False, allow_infinity=False), min_size=1, max_size=12))
def test_a_pool_split_sums_to_the_pool_for_any_shares(places: int, units: int,
                                                      weights: list[Decimal]) -> None:
    total = Decimal(units).scaleb(-places)
    members = [(f"M{i:02d}", w) for i, w in enumerate(weights)]
    with floats_trapped():
        parts = split_pool(total, members, places)
    unit = Decimal(1).scaleb(-places)
    assert sum(parts.values(), Decimal(0)) == total
    assert set(parts) == {m for m, _ in members}
    weight = sum((Fraction(w) for w in weights), Fraction(0))
    for member, share in members:
        exact = Fraction(total) * Fraction(share) / weight
        assert parts[member] % unit == 0  # whole units of the policy's places
        assert abs(Fraction(parts[member]) - exact) < Fraction(unit)  # within one unit


def test_a_pool_split_with_digits_beyond_the_precision_still_sums() -> None:
    """Shares whose exact parts have more than 28 digits: each part is computed exactly,
    so no rounding of an intermediate value can push the floors over the total."""
    shares = [("A", Decimal("0.999999999999999999999999999999")),
              ("B", Decimal("1.000000000000000000000000000001")),
              ("C", Decimal("3"))]
    parts = split_pool(Decimal("1000000000000.01"), shares, 2)
    assert sum(parts.values()) == Decimal("1000000000000.01")


# --- rounding follows the declared mode, both sides of zero ---------------------------------

TIES = {  # value: {mode: rounded to 2 places}
    "2.345": {"half_up": "2.35", "half_even": "2.34", "half_down": "2.34", "up": "2.35",
              "down": "2.34", "ceiling": "2.35", "floor": "2.34"},
    "-2.345": {"half_up": "-2.35", "half_even": "-2.34", "half_down": "-2.34", "up": "-2.35",
               "down": "-2.34", "ceiling": "-2.34", "floor": "-2.35"},
    "2.355": {"half_up": "2.36", "half_even": "2.36", "half_down": "2.35", "up": "2.36",
              "down": "2.35", "ceiling": "2.36", "floor": "2.35"},
    "-2.355": {"half_up": "-2.36", "half_even": "-2.36", "half_down": "-2.35", "up": "-2.36",
               "down": "-2.35", "ceiling": "-2.35", "floor": "-2.36"},
    "-0.005": {"half_up": "-0.01", "half_even": "0.00", "half_down": "0.00", "up": "-0.01",
               "down": "0.00", "ceiling": "0.00", "floor": "-0.01"},
    "2.341": {"half_up": "2.34", "half_even": "2.34", "half_down": "2.34", "up": "2.35",
              "down": "2.34", "ceiling": "2.35", "floor": "2.34"},
    "-2.341": {"half_up": "-2.34", "half_even": "-2.34", "half_down": "-2.34", "up": "-2.35",
               "down": "-2.34", "ceiling": "-2.34", "floor": "-2.35"},
}

ROUNDED = """meritpay: 1
policy: rounded
version: "1"
effective: {{from: 2025-01-01}}
period: quarter
currency: CNY
rounding: {{places: {places}, mode: {mode}}}
facts:
  revenue: {{type: money, label: Revenue}}
indicators:
  active:
    kind: process
    label: Active
    value: revenue
    score: {{curve: threshold, at: -1000000000}}
rewards:
  paid: {{kind: amount, label: Paid, amount: revenue}}
roles:
  rep: {{label: Rep, weights: {{active: 100%}}}}
"""


@pytest.fixture(scope="module")
def rounded(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Any]:
    folder = tmp_path_factory.mktemp("rounding")
    policies = {}
    for mode in ROUNDING:
        for places in (0, 2):
            path = folder / f"{mode}-{places}.yaml"
            path.write_text(ROUNDED.format(mode=mode, places=places), encoding="utf-8")
            policies[(mode, places)] = load_policies([path])[0]
    return policies


def paid(policy: Any, value: Decimal) -> Decimal:
    item = EmployeeInput("E1", "", "rep", "", ("2025-07",), {"revenue": value})
    amount = evaluate_employee(policy, item, trace=False).reward("paid").amount
    assert amount is not None
    return amount


def test_the_ties_table_names_every_mode() -> None:
    assert all(set(modes) == set(ROUNDING) for modes in TIES.values())


@pytest.mark.parametrize("mode", sorted(ROUNDING))
@pytest.mark.parametrize("value", sorted(TIES))
def test_rounding_follows_the_declared_mode_on_ties_of_either_sign(
        rounded: dict[tuple[str, int], Any], mode: str, value: str) -> None:
    assert str(paid(rounded[(mode, 2)], Decimal(value))) == TIES[value][mode]


def reference(value: Fraction, places: int, mode: str) -> Fraction:
    """Rounding by the definitions, in exact integer arithmetic (not decimal's)."""
    scaled = value * 10**places
    low = math.floor(scaled)
    rest = scaled - low
    positive = scaled > 0
    if rest == 0 or mode == "floor":
        chosen = low
    elif mode == "ceiling":
        chosen = low + 1
    elif mode == "down":  # toward zero
        chosen = low if positive else low + 1
    elif mode == "up":  # away from zero
        chosen = low + 1 if positive else low
    elif rest != Fraction(1, 2):
        chosen = low if rest < Fraction(1, 2) else low + 1
    elif mode == "half_up":  # a tie goes away from zero
        chosen = low + 1 if positive else low
    elif mode == "half_down":  # a tie goes toward zero
        chosen = low if positive else low + 1
    else:  # half_even
        chosen = low if low % 2 == 0 else low + 1
    return Fraction(chosen, 10**places)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(sorted(ROUNDING)), st.sampled_from([0, 2]),
       st.integers(min_value=-10**12, max_value=10**12), st.integers(min_value=0, max_value=4))
def test_rounding_agrees_with_the_definitions_for_any_amount(
        rounded: dict[tuple[str, int], Any], mode: str, places: int, units: int,
        extra: int) -> None:
    value = Decimal(units).scaleb(-(places + extra))  # some exact ties, some not
    assert Fraction(paid(rounded[(mode, places)], value)) == reference(Fraction(value),
                                                                        places, mode)


def test_literals_are_decimals_in_compiled_expressions() -> None:
    checked, _ = check_expression("revenue * 0.1 + 15%", Scope({"revenue": NUMBER}))
    assert checked is not None
    with decimal.localcontext(decimal_context()):
        value = compile_expression(checked)({"revenue": Decimal(10)})
    assert value == Decimal("1.15") and type(value) is Decimal
