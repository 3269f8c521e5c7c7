"""`meritpay run` end to end: inputs, exact results, determinism, and every bad input."""

from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from engine import InputError
from engine.evaluate import EvaluationError
from engine.population import split_pool, top_count
from engine.report import render_csv, render_json
from engine.run import RunInputs, load_policies, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
POLICIES = ROOT / "policies"

HEAD = """meritpay: 1
policy: p
version: "1"
effective: {from: 2025-01-01}
period: quarter
currency: CNY
"""


def policy(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def csv_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


SIMPLE = """facts:
  revenue: {type: money, label: Revenue}
  quota: {type: money, label: Quota}
indicators:
  attainment:
    kind: result
    label: Attainment
    value: revenue / quota
    score: {curve: linear, zero_at: 0, full_at: 1}
roles:
  rep: {label: Rep, weights: {attainment: 100%}}
"""


def run_simple(tmp_path: Path, facts: str, **extra: Path) -> object:
    policies = load_policies([policy(tmp_path, SIMPLE)])
    return run(policies, RunInputs(facts=csv_file(tmp_path, "facts.csv", facts), **extra),
               "2025-Q3")


def codes(error: pytest.ExceptionInfo[InputError] | pytest.ExceptionInfo[EvaluationError]
          ) -> list[tuple[str, int, int]]:
    return [(d.code, d.location.line, d.location.column) for d in error.value.diagnostics]


# --- bad input: each names its place ----------------------------------------------------------

def test_quota_zero_is_an_error_naming_the_indicator(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError) as caught:
        run_simple(tmp_path, "employee,role,period,revenue,quota\nE1,rep,2025-07,10,0\n")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "E_EVAL_DIVIDE_BY_ZERO"
    assert "employee E1" in diagnostic.message and "'attainment'" in diagnostic.message
    # the indicator's value expression: line 14, column 12 of the policy
    assert (diagnostic.location.line, diagnostic.location.column) == (14, 12)


def test_missing_fact_without_fallback_names_employee(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError) as caught:
        run_simple(tmp_path, "employee,role,period,revenue,quota\nE1,rep,2025-07,10,\n")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "E_EVAL_MISSING_FACT"
    assert "employee E1" in diagnostic.message and "quota is missing" in diagnostic.message


def test_role_no_policy_covers(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError) as caught:
        run_simple(tmp_path, "employee,role,period,revenue,quota\nE1,rep,2025-07,1,1\n"
                   "E2,pilot,2025-07,1,1\n")
    assert codes(caught) == [("E_EVAL_NO_POLICY", 3, 0)]  # row 3 of the facts file


def test_period_no_policy_covers(tmp_path: Path) -> None:
    body = SIMPLE
    path = policy(tmp_path, body.replace("", ""))
    text = path.read_text(encoding="utf-8").replace("{from: 2025-01-01}",
                                                     "{from: 2025-01-01, until: 2025-06-30}")
    path.write_text(text, encoding="utf-8")
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue,quota\nE1,rep,2025-07,1,1\n")
    with pytest.raises(EvaluationError) as caught:
        run(load_policies([path]), RunInputs(facts=facts), "2025-Q3")
    assert caught.value.diagnostics[0].code == "E_EVAL_NO_POLICY"


def test_no_applicable_indicator(tmp_path: Path) -> None:
    body = SIMPLE.replace("    value: revenue / quota\n",
                          "    value: revenue / quota\n    applies_when: quota > 100\n")
    policies = load_policies([policy(tmp_path, body)])
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue,quota\nE1,rep,2025-07,1,1\n")
    with pytest.raises(EvaluationError) as caught:
        run(policies, RunInputs(facts=facts), "2025-Q3")
    assert caught.value.diagnostics[0].code == "E_EVAL_NO_INDICATORS"


def test_unknown_columns_warned_once(tmp_path: Path) -> None:
    result = run_simple(tmp_path, "employee,role,period,revenue,quota,zeta,alpha\n"
                        "E1,rep,2025-07,1,1,x,y\nE2,rep,2025-07,1,1,x,y\n")
    warnings = [(w.code, w.message) for w in result.warnings]  # type: ignore[attr-defined]
    assert warnings == [("W_FACTS_UNKNOWN_COLUMNS",
                         "columns no policy declares were ignored: alpha, zeta")]


def test_text_in_a_money_column_names_row_and_column(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_simple(tmp_path, "employee,role,period,revenue,quota\nE1,rep,2025-07,1,1\n"
                   "E2,rep,2025-07,lots,1\n")
    assert codes(caught) == [("E_FACTS", 3, 4)]


def test_two_rows_for_one_employee_and_month(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_simple(tmp_path, "employee,role,period,revenue,quota\nE1,rep,2025-07,1,1\n"
                   "E1,rep,2025-07,2,1\n")
    assert codes(caught)[0][:2] == ("E_FACTS", 3)


@pytest.mark.parametrize("value", ["NaN", "inf", "Infinity", "1e3", "1_000", "１２"])
def test_non_numbers_are_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(InputError) as caught:
        run_simple(tmp_path, f"employee,role,period,revenue,quota\nE1,rep,2025-07,{value},1\n")
    assert codes(caught) == [("E_FACTS", 2, 4)]


def test_empty_facts_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_simple(tmp_path, "")
    assert caught.value.diagnostics[0].code == "E_FACTS"


def test_no_record_in_the_period(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_simple(tmp_path, "employee,role,period,revenue,quota\nE1,rep,2024-07,1,1\n")
    assert "no records fall in period 2025-Q3" in caught.value.diagnostics[0].message


RATED = """facts:
  revenue: {type: money, label: Revenue}
indicators:
  review:
    kind: composite
    label: Review
    raters:
      scale: {min: 1, max: 5}
      missing_group: MISSING
      groups:
        superior: {weight: 40%, label: Superior}
        peer: {weight: 30%, label: Peers}
        customer: {weight: 20%, min_raters: 2, label: Customers}
        subordinate: {weight: 10%, label: Subordinates}
roles:
  rep: {label: Rep, weights: {review: 100%}}
guardrails:
  - check: raters.review.customer >= 20%
    why: The customer's voice carries at least 20%
"""
RATINGS = """employee,period,group,rater,score
E1,2025-Q3,superior,M,4
E1,2025-Q3,peer,P1,3
E1,2025-Q3,peer,P2,4
E1,2025-Q3,customer,C1,5
E1,2025-Q3,customer,C2,4
"""


def run_rated(tmp_path: Path, missing_group: str, ratings: str) -> object:
    policies = load_policies([policy(tmp_path, RATED.replace("MISSING", missing_group))])
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue\nE1,rep,2025-07,1\n")
    return run(policies, RunInputs(facts=facts, ratings=csv_file(tmp_path, "r.csv", ratings)),
               "2025-Q3")


def test_360_with_missing_subordinates_renormalises_40_30_20(tmp_path: Path) -> None:
    # superior 4, peers (3 + 4) / 2 = 3.5, customers (5 + 4) / 2 = 4.5, no subordinates:
    # (0.4 x 4 + 0.3 x 3.5 + 0.2 x 4.5) / (0.4 + 0.3 + 0.2) = (1.6 + 1.05 + 0.9) / 0.9
    # = 3.55 / 0.9 = 3.9444...
    result = run_rated(tmp_path, "renormalize", RATINGS)
    review = result.results[0].indicators[0]  # type: ignore[attr-defined]
    assert review.value.quantize(Decimal("0.0001")) == Decimal("3.9444")


def test_360_missing_group_takes_the_declared_default(tmp_path: Path) -> None:
    # subordinates default to 3: 1.6 + 1.05 + 0.9 + 0.1 x 3 = 3.85 over weight 1.0
    result = run_rated(tmp_path, "{default: 3}", RATINGS)
    assert result.results[0].indicators[0].value == Decimal("3.85")  # type: ignore[attr-defined]


def test_missing_rater_group_fails_when_declared(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError) as caught:
        run_rated(tmp_path, "fail", RATINGS)
    assert caught.value.diagnostics[0].code == "E_EVAL_RATINGS"
    assert "'subordinate'" in caught.value.diagnostics[0].message


def test_too_few_raters_count_as_a_missing_group(tmp_path: Path) -> None:
    # one customer rating where 2 are needed: customers drop out too
    # (1.6 + 1.05) / 0.7 = 3.7857...
    ratings = RATINGS.replace("E1,2025-Q3,customer,C2,4\n", "")
    result = run_rated(tmp_path, "renormalize", ratings)
    value = result.results[0].indicators[0].value  # type: ignore[attr-defined]
    assert value.quantize(Decimal("0.0001")) == Decimal("3.7857")


def test_rating_off_the_scale_names_file_row_and_column(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_rated(tmp_path, "renormalize", RATINGS + "E1,2025-Q3,peer,P3,6\n")
    assert codes(caught) == [("E_RATINGS", 7, 5)]


@pytest.mark.parametrize("collide", [False, True])
def test_a_rater_rating_twice_in_a_group_is_refused_naming_both_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collide: bool) -> None:
    """Ratings are told apart by a hash of their keys; with every hash the same, only a
    rating given twice is still refused (the file is read again to tell)."""
    import engine.ratings

    if collide:
        monkeypatch.setattr(engine.ratings, "hash", lambda key: 0, raising=False)
    assert run_rated(tmp_path, "renormalize", RATINGS + "E1,2025-Q4,peer,P1,3\n").results
    with pytest.raises(InputError) as caught:
        run_rated(tmp_path, "renormalize", RATINGS + " E1 ,2025-Q3,peer, P1,3\n")
    assert codes(caught) == [("E_RATINGS", 7, 4)]
    assert "rater 'P1' rated E1 twice in group 'peer' (first on row 3)" in \
        caught.value.diagnostics[0].message


def test_rating_of_an_unknown_group(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_rated(tmp_path, "renormalize", RATINGS + "E1,2025-Q3,peers,P3,3\n")
    assert codes(caught) == [("E_RATINGS", 7, 3)]
    assert "did you mean 'peer'" in caught.value.diagnostics[0].message


TEAM_POOL = SIMPLE.replace(
    "  quota: {type: money, label: Quota}\n",
    "  quota: {type: money, label: Quota}\n"
    "  team_profit: {type: money, scope: team, label: Team profit}\n") + """rewards:
  pool:
    kind: pool
    label: Team pool
    amount: team_profit * 10%
    split: shares
"""
FACTS_3 = "employee,role,period,revenue,quota\nA,rep,2025-07,1,1\nB,rep,2025-07,1,1\n" \
          "C,rep,2025-07,1,1\n"


def run_pool(tmp_path: Path, teams: str) -> object:
    policies = load_policies([policy(tmp_path, TEAM_POOL)])
    inputs = RunInputs(facts=csv_file(tmp_path, "f.csv", FACTS_3),
                       teams=csv_file(tmp_path, "t.csv", teams),
                       team_facts=csv_file(tmp_path, "tf.csv", "team,period,team_profit\n"
                                           "T1,2025-07,1000000.00\n"))
    return run(policies, inputs, "2025-Q3")


def test_team_facts_of_months_a_run_does_not_read_are_not_checked(tmp_path: Path) -> None:
    policies = load_policies([policy(tmp_path, TEAM_POOL)])
    team_facts = csv_file(tmp_path, "tf.csv", "team,period,team_profit\nT1,2025-07,1000000.00\n"
                          "T1,2024-07,lots\nT1,2024-07,5\n")
    inputs = RunInputs(facts=csv_file(tmp_path, "f.csv", FACTS_3),
                       teams=csv_file(tmp_path, "t.csv", "team,member,share\nT1,A,1\n"),
                       team_facts=team_facts)
    assert run(policies, inputs, "2025-Q3").results
    # their team and period are
    team_facts.write_text(team_facts.read_text(encoding="utf-8") + "T1,2024-13,5\n",
                          encoding="utf-8")
    with pytest.raises(InputError) as caught:
        run(policies, inputs, "2025-Q3")
    assert codes(caught) == [("E_FACTS", 5, 2)]


def test_team_pool_of_100000_is_split_by_shares_to_the_cent(tmp_path: Path) -> None:
    # 1,000,000 x 10% = 100,000.00 split 1:1:1 -> 33,333.34 (A, smallest id), 33,333.33 x 2
    result = run_pool(tmp_path, "team,member,share\nT1,A,1\nT1,B,1\nT1,C,1\n")
    paid = {r.employee: r.reward("pool").amount for r in result.results}  # type: ignore[attr-defined]
    assert paid == {"A": Decimal("33333.34"), "B": Decimal("33333.33"),
                    "C": Decimal("33333.33")}
    assert sum(paid.values()) == Decimal("100000.00")


def test_team_share_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_pool(tmp_path, "team,member,share\nT1,A,1\nT1,B,0\n")
    assert codes(caught) == [("E_TEAMS", 3, 3)]


def test_a_member_in_two_teams_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_pool(tmp_path, "team,member,share\nT1,A,1\nT2,A,1\n")
    assert codes(caught) == [("E_TEAMS", 3, 2)]


def test_a_team_member_with_no_facts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_pool(tmp_path, "team,member,share\nT1,A,1\nT1,Z,1\n")
    assert codes(caught) == [("E_TEAMS", 3, 0)]


def test_a_duplicate_line_id_is_refused(tmp_path: Path) -> None:
    body = SIMPLE.replace("revenue: {type: money, label: Revenue}",
                          "revenue: {type: money, source: lines, label: Revenue}")
    policies = load_policies([policy(tmp_path, body)])
    lines = csv_file(tmp_path, "l.csv", "employee,period,fact,line_id,amount\n"
                     "E1,2025-07,revenue,L1,5\nE1,2025-07,revenue,L1,5\n")
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,quota\nE1,rep,2025-07,10\n")
    with pytest.raises(InputError) as caught:
        run(policies, RunInputs(facts=facts, lines=lines), "2025-Q3")
    assert codes(caught) == [("E_LINES", 3, 4)]


@pytest.mark.parametrize("collide", [False, True])
def test_a_line_id_used_twice_is_found_by_its_hash_and_told_by_reading_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collide: bool) -> None:
    import engine.tables

    if collide:
        monkeypatch.setattr(engine.tables, "hash", lambda key: 0, raising=False)
    body = SIMPLE.replace("revenue: {type: money, label: Revenue}",
                          "revenue: {type: money, source: lines, label: Revenue}")
    policies = load_policies([policy(tmp_path, body)])
    text = ("employee,period,fact,line_id,amount\nE1,2025-07,revenue,L1,5\n"
            "E1,2025-08,revenue,L2,1\nE1,2025-09,revenue,L3,2\n")
    lines = csv_file(tmp_path, "l.csv", text)
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,quota\nE1,rep,2025-07,10\n")
    assert run(policies, RunInputs(facts=facts, lines=lines), "2025-Q3").results
    lines.write_text(text + "E2,2025-09,revenue,L2,5\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        run(policies, RunInputs(facts=facts, lines=lines), "2025-Q3")
    assert codes(caught) == [("E_LINES", 5, 4)]
    assert "line L2 appears twice (first on row 3)" in caught.value.diagnostics[0].message


def test_lines_of_months_a_run_does_not_read_are_not_checked(tmp_path: Path) -> None:
    body = SIMPLE.replace("revenue: {type: money, label: Revenue}",
                          "revenue: {type: money, source: lines, label: Revenue}")
    policies = load_policies([policy(tmp_path, body)])
    lines = csv_file(tmp_path, "l.csv", "employee,period,fact,line_id,amount\n"
                     "E1,2025-07,revenue,L1,4\nE1,2025-06,revenue,L1,1e3\n"
                     "E1,2025-10,profit,,\nE1,2025-08,revenue,L2,-1\n")
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,quota\nE1,rep,2025-07,10\n")
    result = run(policies, RunInputs(facts=facts, lines=lines), "2025-Q3")
    assert result.results[0].total_score == Decimal("0.4")  # July's 4 of 10
    # but the period of every line is checked
    lines.write_text(lines.read_text(encoding="utf-8") + "E1,2025-13,revenue,L3,1\n",
                     encoding="utf-8")
    with pytest.raises(InputError) as caught:
        run(policies, RunInputs(facts=facts, lines=lines), "2025-Q3")
    assert codes(caught) == [("E_LINES", 6, 2)]


# --- population ------------------------------------------------------------------------------

def test_pool_of_100000_split_three_ways_sums_to_the_cent() -> None:
    # shares 1:1:1: 33,333.333... each; floors 33,333.33 x 3 = 99,999.99; the one cent left
    # goes to the largest remainder (all equal), then the larger share (equal), then the
    # smallest member id: A.
    parts = split_pool(Decimal("100000.00"), [("C", Decimal(1)), ("A", Decimal(1)),
                                               ("B", Decimal(1))], 2)
    assert parts == {"A": Decimal("33333.34"), "B": Decimal("33333.33"),
                     "C": Decimal("33333.33")}


def test_pool_split_by_shares_gives_leftover_cents_to_largest_fractions() -> None:
    # 100.00 by 0.40 / 0.35 / 0.25 of total weight 1.00 = 40, 35, 25: exact, nothing left;
    # 100.01: 40.004, 35.0035, 25.0025 -> floors 40.00, 35.00, 25.00 = 100.00; 1 cent left to
    # the largest fraction: 0.004 (X)
    shares = [("X", Decimal("0.40")), ("Y", Decimal("0.35")), ("Z", Decimal("0.25"))]
    assert split_pool(Decimal("100.00"), shares, 2) == {
        "X": Decimal("40.00"), "Y": Decimal("35.00"), "Z": Decimal("25.00")}
    assert split_pool(Decimal("100.01"), shares, 2) == {
        "X": Decimal("40.01"), "Y": Decimal("35.00"), "Z": Decimal("25.00")}


def test_top_five_percent_is_ceil_of_005_n() -> None:
    # 0.05 x 20 = 1; 0.05 x 21 = 1.05 -> 2; 0.05 x 200 = 10
    assert [top_count(n, None, Decimal("0.05")) for n in (20, 21, 200)] == [1, 2, 10]
    assert top_count(3, 5, None) == 3


HONOUR = SIMPLE + """rewards:
  star:
    kind: honour
    label: Star
    select: {by: total_score, top: 10%, within: role}
"""


def test_top_ten_percent_honour_includes_everyone_tied_at_the_cut(tmp_path: Path) -> None:
    # 10 reps: ceil(10% x 10) = 1 place, but E1 and E2 tie at the top score 1.0: both qualify
    rows = ["employee,role,period,revenue,quota"]
    rows += ["E1,rep,2025-07,10,10", "E2,rep,2025-07,10,10"]
    rows += [f"E{i},rep,2025-07,{i - 1},10" for i in range(3, 11)]  # scores 0.2 .. 0.9
    policies = load_policies([policy(tmp_path, HONOUR)])
    result = run(policies, RunInputs(facts=csv_file(tmp_path, "f.csv", "\n".join(rows) + "\n")),
                 "2025-Q3")
    stars = sorted(r.employee for r in result.results if r.reward("star").granted)
    assert stars == ["E1", "E2"]


CAPPED = SIMPLE + """tiers:
  bands:
    - {name: low, from: 0, to: 0.5, multiplier: 0, label: Low}
    - {name: high, from: 0.5, multiplier: 1, label: High}
  distribution: {max_share: {high: 20%}, within: role, mode: MODE}
"""


@pytest.mark.parametrize(("mode", "high"), [("enforce", ["E10", "E9"]),
                                            ("advisory", ["E10", "E5", "E6", "E7", "E8", "E9"])])
def test_distribution_cap_demotes_the_lowest_of_the_top_band(tmp_path: Path, mode: str,
                                                            high: list[str]) -> None:
    # 10 reps scoring 0.1 .. 1.0; 6 reach 'high' (0.5 and above); the cap is 20% of 10 = 2:
    # enforce keeps the best two (E10 1.0, E9 0.9) and moves E5..E8 down; advisory only notes
    rows = ["employee,role,period,revenue,quota"] + [f"E{i},rep,2025-07,{i},10"
                                                     for i in range(1, 11)]
    policies = load_policies([policy(tmp_path, CAPPED.replace("MODE", mode))])
    result = run(policies, RunInputs(facts=csv_file(tmp_path, "f.csv", "\n".join(rows) + "\n")),
                 "2025-Q3")
    assert sorted(r.employee for r in result.results if r.tier == "high") == sorted(high)
    assert len(result.notes) == 1


# --- the shipped example -------------------------------------------------------------------------

def example_inputs(facts: Path | None = None) -> RunInputs:
    return RunInputs(facts=facts or EXAMPLES / "facts.csv", ratings=EXAMPLES / "ratings.csv",
                     teams=EXAMPLES / "teams.csv", team_facts=EXAMPLES / "team_facts.csv",
                     company_facts=EXAMPLES / "company_facts.csv", lines=EXAMPLES / "lines.csv")


@pytest.fixture(scope="module")
def shipped() -> list[object]:
    return load_policies([POLICIES])


@pytest.mark.parametrize("period", ["2025-Q3", "2025-Q4"])
def test_tracing_does_not_change_any_result(shipped: list[object], period: str) -> None:
    traced = run(shipped, example_inputs(), period, trace=True)  # type: ignore[arg-type]
    fast = run(shipped, example_inputs(), period, trace=False)  # type: ignore[arg-type]
    assert traced.results == fast.results  # traces are not compared, everything else is
    assert render_json(traced) == render_json(fast)
    assert all(r.trace for r in traced.results) and not any(r.trace for r in fast.results)


def test_shuffled_rows_give_byte_identical_output(shipped: list[object], tmp_path: Path) -> None:
    lines = (EXAMPLES / "facts.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    body = lines[1:]
    random.Random(7).shuffle(body)
    shuffled = tmp_path / "facts.csv"
    shuffled.write_text(lines[0] + "".join(body), encoding="utf-8")
    first = run(shipped, example_inputs(), "2025-Q3")  # type: ignore[arg-type]
    second = run(shipped, example_inputs(shuffled), "2025-Q3")  # type: ignore[arg-type]
    assert render_csv(first) == render_csv(second)
    assert render_json(first) == render_json(second)


def test_rows_grouped_by_employee_in_any_order_give_byte_identical_output(
        shipped: list[object], tmp_path: Path) -> None:
    """Grouped by employee, each employee is evaluated as soon as their rows are read, in the
    file's order: the output is still in employee order, byte for byte."""
    lines = (EXAMPLES / "facts.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    rows: dict[str, list[str]] = {}
    for line in lines[1:]:
        rows.setdefault(line.split(",", 1)[0], []).append(line)
    regrouped = tmp_path / "facts.csv"
    regrouped.write_text(lines[0] + "".join(
        "".join(reversed(rows[e])) for e in reversed(list(rows))), encoding="utf-8")
    first = run(shipped, example_inputs(), "2025-Q3")  # type: ignore[arg-type]
    second = run(shipped, example_inputs(regrouped), "2025-Q3")  # type: ignore[arg-type]
    assert render_csv(first) == render_csv(second)
    assert render_json(first) == render_json(second)


def test_a_problem_further_down_the_facts_is_reported_before_an_employee_read_earlier(
        tmp_path: Path) -> None:
    """E1 is evaluated (and fails: quota 0) while the rest is read; the bad cell of row 4 is
    still the error, as when every row is read before anyone is evaluated."""
    facts = "employee,role,period,revenue,quota\nE1,rep,2025-07,10,0\nE2,rep,2025-07,1,1\n" \
            "E3,rep,2025-07,lots,1\n"
    with pytest.raises(InputError) as caught:
        run_simple(tmp_path, facts)
    assert codes(caught) == [("E_FACTS", 4, 4)]


def test_the_first_employee_by_id_who_cannot_be_evaluated_is_the_error(tmp_path: Path) -> None:
    # rows grouped by employee, E2 first: both fail (quota 0), E1's is the error raised
    facts = "employee,role,period,revenue,quota\nE2,rep,2025-07,10,0\nE1,rep,2025-07,5,0\n"
    with pytest.raises(EvaluationError) as caught:
        run_simple(tmp_path, facts)
    assert "employee E1" in caught.value.diagnostics[0].message
    # with --keep-going, both in employee order
    policies = load_policies([policy(tmp_path, SIMPLE)])
    result = run(policies, RunInputs(facts=tmp_path / "facts.csv"), "2025-Q3", keep_going=True)
    assert [d.message.split(" ")[1] for d in result.errors] == ["E1", "E2"]


def test_a_team_member_whose_rows_were_read_earlier_counts_as_having_facts(
        tmp_path: Path) -> None:
    """Members' rows are dropped once evaluated: membership is checked against who was read.
    Pool 1,000,000 x 10% = 100,000.00 split 1:1 between A and C, 50,000.00 each."""
    result = run_pool(tmp_path, "team,member,share\nT1,A,1\nT1,C,1\n")
    paid = {r.employee: r.reward("pool").amount for r in result.results}  # type: ignore[attr-defined]
    assert paid == {"A": Decimal("50000.00"), "B": Decimal("0"), "C": Decimal("50000.00")}


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_json_and_csv_rendered_in_pieces_are_the_text_of_the_whole(
        shipped: list[object], batch: int) -> None:
    """A run's JSON is written (and recorded in the ledger) a batch of employees at a time:
    the pieces join to exactly what json.dumps gives of the whole object, indented by 2."""
    from engine.report import csv_chunks, employee_json, render_chunks, render_json_chunks

    result = run(shipped, example_inputs(), "2025-Q3", keep_going=True)  # type: ignore[arg-type]
    whole = json.dumps({
        "period": result.period.label, "months": list(result.period.months),
        "months_in_period": len(result.period.all_months),
        "employees": [employee_json(r) for r in result.results],
        "errors": [d.to_json() for d in result.errors],
        "notes": [{"rule": n.rule, "group": n.group, "message": n.message}
                  for n in result.notes]}, ensure_ascii=False, indent=2) + "\n"
    pieces = list(render_json_chunks(result, batch))
    assert "".join(pieces) == whole and render_json(result) == whole
    assert len(pieces) == 3 + 2 * -(-len(result.results) // batch)  # ceil(n / batch) batches
    assert result.notes and len(result.results) > 7
    rows = list(csv_chunks(result, batch))
    # the header and a row per result, `batch` rows a piece, then what is left (maybe none)
    assert "".join(rows) == render_csv(result) and not result.errors
    assert len(rows) == (1 + len(result.results)) // batch + 1
    lines = list(render_chunks(result, "jsonl"))  # a line a piece
    assert len(lines) == len(result.results) and all(line.count("\n") == 1 for line in lines)
    assert [json.loads(line)["employee"] for line in lines] == \
        [r.employee for r in result.results]
    # no one evaluated: "employees": [] as json.dumps writes it
    empty = dataclasses.replace(result, results=())
    assert "".join(render_json_chunks(empty)) == json.dumps({
        "period": result.period.label, "months": list(result.period.months),
        "months_in_period": len(result.period.all_months), "employees": [],
        "errors": [d.to_json() for d in result.errors],
        "notes": [{"rule": n.rule, "group": n.group, "message": n.message}
                  for n in result.notes]}, ensure_ascii=False, indent=2) + "\n"


def test_every_role_of_the_shipped_policies_is_evaluated(shipped: list[object]) -> None:
    result = run(shipped, example_inputs(), "2025-Q3")  # type: ignore[arg-type]
    roles = {r.role for r in result.results}
    assert roles == {role for p in shipped for role in p.roles}  # type: ignore[attr-defined]
    # the role change of E0016 in 2025-08 makes two segments
    assert [r.role for r in result.results if r.employee == "E0016"] == [
        "junior_sales_rep", "account_manager"]


# --- the command -----------------------------------------------------------------------------

def cli(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def example_args(*extra: object) -> list[object]:
    return [POLICIES, "--facts", EXAMPLES / "facts.csv", "--period", "2025-Q3",
            "--ratings", EXAMPLES / "ratings.csv", "--teams", EXAMPLES / "teams.csv",
            "--team-facts", EXAMPLES / "team_facts.csv", "--company-facts",
            EXAMPLES / "company_facts.csv", "--lines", EXAMPLES / "lines.csv", *extra]


def test_run_writes_json_csv_and_jsonl(tmp_path: Path) -> None:
    for fmt in ("json", "csv", "jsonl", "text"):
        out = tmp_path / f"out.{fmt}"
        result = cli("run", *example_args("--format", fmt, "-o", out))
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        assert out.read_text(encoding="utf-8")
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert data["period"] == "2025-Q3" and len(data["employees"]) == 201
    assert list(tmp_path.glob(".*tmp")) == []


def test_failed_run_leaves_no_output_file(tmp_path: Path) -> None:
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue\nE1,pilot,2025-07,1\n")
    out = tmp_path / "out.csv"
    result = cli("run", POLICIES, "--facts", facts, "--period", "2025-Q3", "-o", out)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "E_EVAL_NO_POLICY" in result.output  # type: ignore[attr-defined]
    assert not out.exists() and list(tmp_path.glob(".*tmp")) == []


def test_keep_going_lists_the_employees_it_could_not_evaluate(tmp_path: Path) -> None:
    path = policy(tmp_path, SIMPLE)
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue,quota\n"
                     "E1,rep,2025-07,5,10\nE2,rep,2025-07,5,0\n")
    result = cli("run", path, "--facts", facts, "--period", "2025-Q3", "--format", "csv",
                 "--keep-going")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    rows = result.stdout.splitlines()  # type: ignore[attr-defined]
    assert rows[1].startswith("E1,")
    assert "E_EVAL_DIVIDE_BY_ZERO" in rows[2] and "employee E2" in rows[2]


@pytest.mark.parametrize(("encoding", "flag"), [("utf-8-sig", []), ("gb18030",
                                                                    ["--encoding", "gb18030"])])
def test_chinese_excel_csv_is_read(tmp_path: Path, encoding: str, flag: list[str]) -> None:
    path = policy(tmp_path, SIMPLE)
    facts = tmp_path / "f.csv"
    facts.write_bytes("employee,name,role,period,revenue,quota\nE1,李伟,rep,2025-07,5,10\n"
                      .encode(encoding))
    result = cli("run", path, "--facts", facts, "--period", "2025-Q3", "--format", "csv", *flag)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert ",李伟,rep," in result.output  # type: ignore[attr-defined]


@pytest.mark.parametrize("period", ["2025-Q5", "last quarter", "2025-13"])
def test_bad_period_is_usage_error(tmp_path: Path, period: str) -> None:
    path = policy(tmp_path, SIMPLE)
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue,quota\nE1,rep,2025-07,1,1\n")
    result = cli("run", path, "--facts", facts, "--period", period)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "is not a period" in result.output  # type: ignore[attr-defined]


def test_invalid_policy_is_a_finding(tmp_path: Path) -> None:
    path = policy(tmp_path, SIMPLE.replace("100%", "90%"))
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue,quota\nE1,rep,2025-07,1,1\n")
    result = cli("run", path, "--facts", facts, "--period", "2025-Q3")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "E_WEIGHTS_SUM" in result.output  # type: ignore[attr-defined]


def test_rank_and_percentile_within_role(tmp_path: Path) -> None:
    # scores 0.5, 0.8, 0.8, 1.0: ranks 4, 2, 2, 1; share strictly below: 0/4, 1/4, 1/4, 3/4
    rows = ["employee,role,period,revenue,quota", "A,rep,2025-07,5,10", "B,rep,2025-07,8,10",
            "C,rep,2025-07,8,10", "D,rep,2025-07,10,10"]
    result = run(load_policies([policy(tmp_path, SIMPLE)]),
                 RunInputs(facts=csv_file(tmp_path, "f.csv", "\n".join(rows) + "\n")), "2025-Q3")
    assert [(r.employee, r.rank, r.percentile) for r in result.results] == [
        ("A", 4, Decimal(0)), ("B", 2, Decimal("0.25")), ("C", 2, Decimal("0.25")),
        ("D", 1, Decimal("0.75"))]


def test_top_five_percent_with_a_tie_at_the_cut(tmp_path: Path) -> None:
    # 20 reps: ceil(5% x 20) = 1 place; E01 and E02 tie at 1.0 and both qualify. With a
    # tie-break on revenue (E02 sold more), only E02 does.
    rows = ["employee,role,period,revenue,quota", "E01,rep,2025-07,10,10", "E02,rep,2025-07,20,20"]
    rows += [f"E{i:02d},rep,2025-07,{i - 2},20" for i in range(3, 21)]
    facts = csv_file(tmp_path, "f.csv", "\n".join(rows) + "\n")
    honour = HONOUR.replace("top: 10%", "top: 5%")
    result = run(load_policies([policy(tmp_path, honour)]), RunInputs(facts=facts), "2025-Q3")
    assert sorted(r.employee for r in result.results if r.reward("star").granted) == [
        "E01", "E02"]
    broken = honour.replace("within: role}", "within: role, tie_break: revenue}")
    result = run(load_policies([policy(tmp_path, broken, "q.yaml")]), RunInputs(facts=facts),
                 "2025-Q3")
    assert [r.employee for r in result.results if r.reward("star").granted] == ["E02"]


DOWNTURN = """facts:
  revenue: {type: money, label: Revenue}
  quota: {type: money, label: Quota}
  collection_days: {type: number, rollup: mean, label: Days to collect}
  market_downturn: {type: boolean, scope: company, default: false, label: Downturn}
indicators:
  attainment:
    kind: result
    label: Attainment
    value: revenue / quota
    score: {curve: linear, zero_at: 0, full_at: 1}
  collection:
    kind: result
    label: Collection
    value: collection_days
    score: {curve: linear, zero_at: 90, full_at: 45}
roles:
  rep:
    label: Rep
    weights: {attainment: 70%, collection: 30%}
    adjustments:
      - when: market_downturn
        why: A downturn shifts 10 points to cash collection
        shift: {from: attainment, to: collection, points: 10%}
"""


@pytest.mark.parametrize(("downturn", "total", "weights"), [
    ("false", "0.71", ("0.7", "0.3")),
    ("true", "0.68", ("0.6", "0.4")),
])
def test_a_downturn_shifts_ten_points_of_weight_to_cash_collection(
        tmp_path: Path, downturn: str, total: str, weights: tuple[str, str]) -> None:
    # attainment 8 / 10 = 0.8 -> score 0.8; collection 67.5 days -> (67.5 - 90) / (45 - 90)
    # = 0.5. Normal: 0.70 x 0.8 + 0.30 x 0.5 = 0.56 + 0.15 = 0.71.
    # Downturn (10 points from attainment to collection): 0.60 x 0.8 + 0.40 x 0.5 = 0.68.
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue,quota,collection_days\n"
                     "E1,rep,2025-07,8,10,67.5\n")
    company = csv_file(tmp_path, "c.csv", f"period,market_downturn\n2025-07,{downturn}\n")
    result = run(load_policies([policy(tmp_path, DOWNTURN)]),
                 RunInputs(facts=facts, company_facts=company), "2025-Q3")
    assert result.results[0].total_score == Decimal(total)
    assert [i.weight for i in result.results[0].indicators] == [Decimal(w) for w in weights]


EQUITY = """facts:
  customers_start: {type: integer, rollup: first, label: Customers at start}
  customers_retained: {type: integer, rollup: last, label: Customers retained}
  retention_rate: {type: ratio, rollup: customers_retained / customers_start, label: Retention}
  successors_trained: {type: integer, rollup: last, default: 0, label: Successors trained}
indicators:
  retention:
    kind: result
    label: Retention
    value: retention_rate
    score: {curve: threshold, at: 90%}
roles:
  rep: {label: Rep, weights: {retention: 100%}}
rewards:
  equity:
    kind: eligibility
    label: Equity incentive
    when: consecutive_years(retention_rate >= 90%, 3) and successors_trained >= 2
"""


def history(employee: str, years: dict[int, int], successors: int) -> list[str]:
    """A January and a December row per past year (100 customers at the start, `retained`
    at the end), then July 2025."""
    rows = []
    for year, retained in years.items():
        rows.append(f"{employee},rep,{year}-01,100,,{successors}")
        rows.append(f"{employee},rep,{year}-12,,{retained},{successors}")
    rows.append(f"{employee},rep,2025-07,100,95,{successors}")
    return rows


def test_equity_needs_three_consecutive_years_at_90_percent_and_two_successors(
        tmp_path: Path) -> None:
    rows = ["employee,role,period,customers_start,customers_retained,successors_trained"]
    rows += history("A", {2022: 95, 2023: 92, 2024: 90}, 2)  # 95%, 92%, exactly 90%: yes
    rows += history("B", {2022: 95, 2023: 89, 2024: 95}, 2)  # 89% in 2023 breaks the run
    rows += history("C", {2022: 95, 2024: 95}, 2)  # no 2023 at all: a missing year breaks it
    rows += history("D", {2022: 95, 2023: 95, 2024: 95}, 1)  # one successor, two needed
    rows += history("E", {2023: 95, 2024: 95}, 2)  # only two years of history
    facts = csv_file(tmp_path, "f.csv", "\n".join(rows) + "\n")
    result = run(load_policies([policy(tmp_path, EQUITY)]), RunInputs(facts=facts), "2025-Q3")
    granted = {r.employee: r.reward("equity").granted for r in result.results}
    assert granted == {"A": True, "B": False, "C": False, "D": False, "E": False}


def test_the_incomplete_current_year_neither_counts_nor_breaks_the_run(tmp_path: Path) -> None:
    # 2025 so far has 50% retention in July; the run still looks at 2022..2024 only
    rows = ["employee,role,period,customers_start,customers_retained,successors_trained"]
    rows += history("A", {2022: 95, 2023: 92, 2024: 91}, 2)
    rows[-1] = "A,rep,2025-07,100,50,2"
    facts = csv_file(tmp_path, "f.csv", "\n".join(rows) + "\n")
    result = run(load_policies([policy(tmp_path, EQUITY)]), RunInputs(facts=facts), "2025-Q3")
    assert result.results[0].reward("equity").granted is True


def test_period_to_date_evaluates_the_months_so_far(tmp_path: Path) -> None:
    # July 4 / 10 and August 6 / 10 so far: (4 + 6) / (10 + 10) = 0.5; September is not read
    rows = ["employee,role,period,revenue,quota", "E1,rep,2025-07,4,10", "E1,rep,2025-08,6,10",
            "E1,rep,2025-09,10,10"]
    facts = csv_file(tmp_path, "f.csv", "\n".join(rows) + "\n")
    result = run(load_policies([policy(tmp_path, SIMPLE)]), RunInputs(facts=facts), "",
                 to_date="2025-08")
    assert result.results[0].total_score == Decimal("0.5")
    assert result.period.title == "2025-Q3 to date (2025-08, 2 of 3 months)"
    data = json.loads(render_json(result))
    assert (data["months"], data["months_in_period"]) == (["2025-07", "2025-08"], 3)


def test_period_and_to_date_are_exclusive(tmp_path: Path) -> None:
    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue,quota\nE1,rep,2025-07,1,1\n")
    path = policy(tmp_path, SIMPLE)
    both = cli("run", path, "--facts", facts, "--period", "2025-Q3", "--to-date", "2025-08")
    neither = cli("run", path, "--facts", facts)
    assert both.exit_code == neither.exit_code == 2  # type: ignore[attr-defined]


def test_workers_give_byte_identical_output(shipped: list[object],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.run

    one = run(shipped, example_inputs(), "2025-Q3")  # type: ignore[arg-type]
    # split the 201 employees into chunks of 50 across two processes
    monkeypatch.setattr(engine.run, "_PARALLEL_FROM", 0)
    monkeypatch.setattr(engine.run, "_CHUNK", 50)
    two = run(shipped, example_inputs(), "2025-Q3", workers=2)  # type: ignore[arg-type]
    assert render_json(two) == render_json(one)
    assert render_csv(two) == render_csv(one)


# --- the inputs a run builds are those of reading every row of every month ------------------

LOOKBACK = """fiscal_year: {starts: 4}
facts:
  revenue: {type: money, source: lines, label: Revenue}
  quota: {type: money, label: Quota}
  visits: {type: integer, rollup: mean, label: Visits}
  peak: {type: number, rollup: max, label: Peak}
  low: {type: number, rollup: min, default: 0, label: Low}
  customers_start: {type: integer, rollup: first, label: Customers at start}
  customers_retained: {type: integer, rollup: last, label: Customers retained}
  retention_rate: {type: ratio, rollup: customers_retained / customers_start, label: Retention}
  team_score: {type: number, scope: team, rollup: mean, label: Team score}
  downturn: {type: boolean, scope: company, rollup: last, default: false, label: Downturn}
indicators:
  attainment:
    kind: result
    label: Attainment
    value: safe_div(revenue, quota, 0)
    score: {curve: linear, zero_at: 0, full_at: 1}
  growth:
    kind: result
    label: Growth
    value: "safe_div(quota, max(last_periods(quota, 3)), 1) + count(last_periods(low, 5))"
    missing: exclude
    score: {curve: linear, zero_at: 0, full_at: 2}
  team:
    kind: process
    label: Team
    value: "team_score + max(last_periods(team_score, 2))"
    missing: zero
    score: {curve: linear, zero_at: 0, full_at: 10}
  steady:
    kind: process
    label: Steady
    value: min(months(visits))
    missing: zero
    score: {curve: linear, zero_at: 0, full_at: 10}
  spread:
    kind: process
    label: Spread
    value: peak - low
    missing: zero
    score: {curve: linear, zero_at: 0, full_at: 10}
roles:
  rep: {label: Rep, weights: {attainment: 40%, growth: 20%, team: 20%, steady: 10%, spread: 10%}}
  lead: {label: Lead, weights: {attainment: 50%, growth: 50%}}
rewards:
  equity:
    kind: eligibility
    label: Equity
    when: consecutive_years(retention_rate >= 90%, 2) and not downturn
"""


def lookback_files(folder: Path, seed: int, shuffled: bool) -> RunInputs:
    """Seeded facts of 40 employees over 2021-12..2025-12 with gaps, role and team changes,
    numbers written with different exponents (min and max keep the first of equal values),
    team, company and line facts, and a teams table for some."""
    rng = random.Random(seed)
    months = [f"{y}-{m:02d}" for y in range(2021, 2026) for m in range(1, 13)][11:]
    rows, lines, members = [], [], []
    for number in range(40):
        employee = f"E{number:02d}"
        role = rng.choice(["rep", "rep", "lead"])
        team = rng.choice(["T1", "T2", ""])
        hired = rng.choice(["", "2023-05-17", "2025-08-02"])
        for month in months:
            if rng.random() < 0.25:
                continue
            if rng.random() < 0.05:
                role = "lead" if role == "rep" else "rep"
            if rng.random() < 0.05:
                team = rng.choice(["T1", "T2", ""])

            def cell(text: str) -> str:
                return "" if rng.random() < 0.15 else text
            rows.append(",".join([
                employee, month, role, team, hired,
                cell(f"{rng.randint(0, 900)}.{rng.randint(0, 99):02d}"),
                cell(str(rng.randint(0, 30))),
                cell(rng.choice(["5", "5.0", "5.00", "7.5", "-0.0", "0"])),
                cell(rng.choice(["1", "1.0", "1.00", "0.5", "-0"])),
                cell(str(rng.randint(50, 100))), cell(str(rng.randint(40, 100)))]))
            for line in range(rng.randint(0, 2)):
                lines.append(f"{employee},{month},revenue,L{employee}{month}{line},"
                             f"{rng.randint(-50, 500)}.{rng.randint(0, 99):02d}")
        if number % 7 == 0 and any(r.startswith(f"{employee},2025-0") for r in rows):
            members.append(f"T{number % 2 + 1},{employee},1,2025-Q3")
    if shuffled:
        rng.shuffle(rows)
    header = "employee,period,role,team,hired,quota,visits,peak,low,customers_start," \
             "customers_retained"
    (folder / "facts.csv").write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (folder / "lines.csv").write_text("employee,period,fact,line_id,amount\n" +
                                      "\n".join(lines) + "\n", encoding="utf-8")
    (folder / "team_facts.csv").write_text("team,period,team_score\n" + "".join(
        f"{team},{month},{rng.choice(['', '3', '3.5', '4.25'])}\n"
        for team in ("T1", "T2") for month in months), encoding="utf-8")
    (folder / "company_facts.csv").write_text("period,downturn\n" + "".join(
        f"{month},{rng.choice(['', 'false', 'true'])}\n" for month in months), encoding="utf-8")
    (folder / "teams.csv").write_text("team,member,share,period\n" + "\n".join(members) + "\n",
                                      encoding="utf-8")
    return RunInputs(facts=folder / "facts.csv", lines=folder / "lines.csv",
                     team_facts=folder / "team_facts.csv",
                     company_facts=folder / "company_facts.csv",
                     teams=folder / "teams.csv" if members else None)


def reference_inputs(policies: list[Any], inputs: RunInputs, period_text: str,
                     to_date: str | None = None) -> list[Any]:
    """Each segment's input as run() built it when it kept every row of every month as a
    FactRow and each month as a dict (the implementation the compact one replaced): the
    definition the compact reading must match exactly."""
    from collections import defaultdict

    from engine import run as engine_run
    from engine.evaluate import EmployeeInput
    from engine.facts import read_facts
    from engine.tables import read_keyed_facts, read_lines, read_teams

    kinds = {p.period for p in policies}
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    period = engine_run.to_date_period(to_date, kind) if to_date else \
        engine_run.parse_period(period_text, kind)
    places = max(p.places for p in policies)
    rows = read_facts(inputs.facts, engine_run.fact_types(policies), places=places).rows
    labels = {period.label, *period.months}
    teams = read_teams(inputs.teams, labels) if inputs.teams else None
    team_facts = read_keyed_facts(inputs.team_facts, "team", {
        f.name: f.type for p in policies for f in p.facts if f.scope == "team"})[0] \
        if inputs.team_facts else {}
    company = read_keyed_facts(inputs.company_facts, None, {
        f.name: f.type for p in policies for f in p.facts if f.scope == "company"})[0] \
        if inputs.company_facts else {}
    line_facts = {f.name for p in policies for f in p.facts if f.source == "lines"}
    lines = read_lines(inputs.lines, line_facts, set(period.months)) \
        if inputs.lines and line_facts else None

    def team_of(row: Any) -> str:
        if teams is not None and row.employee in teams.team_of:
            return teams.team_of[row.employee]
        return row.team or ""

    def record(row: Any, team: str) -> dict[str, Any]:
        values = dict(row.values)
        values.update(team_facts.get((team, row.month), {}))
        values.update(company.get(("", row.month), {}))
        if lines is not None:
            for fact in line_facts:
                values[fact] = lines.get((row.employee, row.month, fact), Decimal(0))
        return values

    def index(month: str) -> int:
        year, number = map(int, month.split("-"))
        return year * 12 + number - 1

    def earlier_periods(policy: Any, past: list[Any]) -> tuple[Any, ...]:
        length, start = len(period.months), index(period.months[0])
        buckets: dict[int, list[Any]] = defaultdict(list)
        for month, values in past:
            if index(month) < start:
                buckets[(start - index(month) - 1) // length].append(values)
        return tuple(engine_run.rollup(policy, buckets[k], policy.history_facts)
                     for k in sorted(buckets, reverse=True))

    def fiscal_years(policy: Any, past: list[Any]) -> tuple[Any, ...]:
        def year_of(month: str) -> int:
            year, number = map(int, month.split("-"))
            return year if number >= policy.fiscal_start else year - 1
        current = year_of(period.months[0])
        buckets: dict[int, list[Any]] = defaultdict(list)
        for month, values in past:
            if year_of(month) < current:
                buckets[year_of(month)].append(values)
        if not buckets:
            return ()
        return tuple(engine_run.rollup(policy, buckets[y], policy.history_facts)
                     if buckets.get(y) else None for y in range(min(buckets), current))

    by_employee: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_employee[row.employee].append(row)
    built = []
    for employee in sorted(by_employee):
        history = sorted(by_employee[employee], key=lambda r: r.month)
        segments: list[list[Any]] = []
        for row in (r for r in history if r.month in period.months):
            if segments and segments[-1][-1].role == row.role:
                segments[-1].append(row)
            else:
                segments.append([row])
        for segment in segments:
            policy = engine_run.choose_policy(policies, segment[0].role, period)
            assert policy is not None
            team = team_of(segment[0])
            records = [record(r, team) for r in segment]
            past = [(r.month, record(r, team_of(r))) for r in history]
            built.append(EmployeeInput(
                employee=employee, name=segment[0].name or "", role=segment[0].role, team=team,
                months=tuple(r.month for r in segment),
                facts=engine_run.rollup(policy, records),
                month_facts=tuple(engine_run.rollup(policy, [r]) for r in records)
                if policy.uses_months else (),
                period_facts=earlier_periods(policy, past) if policy.needs_history and
                policy.uses_periods else (),
                year_facts=fiscal_years(policy, past) if policy.needs_history and
                policy.uses_years else (),
                proration=engine_run._proration(policy, segment), ratings={}))
    return built


@pytest.mark.parametrize("team_history", [True, False])
@pytest.mark.parametrize(("seed", "shuffled", "period", "to_date"), [
    (1, False, "2025-Q3", None), (2, True, "2025-Q3", None), (3, True, "", "2025-08"),
    (4, False, "2025-07", None), (5, True, "2025", None), (6, False, "2025-Q2", None),
])
def test_each_input_is_what_reading_every_row_of_every_month_gives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, shuffled: bool,
        period: str, to_date: str | None, team_history: bool) -> None:
    """Only the months a run reads are read, earlier months only for the facts looked back
    at, each kept compactly: every input handed to the evaluator is still exactly (repr,
    so exponents and order too) the one built from every row kept as a dict. With and
    without a fact of the team facts looked back at (earlier months then take the team's,
    the company's and the lines' facts as the period's do)."""
    import engine.run

    text = LOOKBACK if team_history else LOOKBACK.replace(
        "team_score + max(last_periods(team_score, 2))", "team_score")
    policies = load_policies([policy(tmp_path, text)])
    inputs = lookback_files(tmp_path, seed, shuffled)
    built: list[Any] = []
    evaluate = engine.run.evaluate_employee

    def recording(policy: Any, item: Any, *, trace: bool = False) -> Any:
        built.append(item)
        return evaluate(policy, item, trace=trace)

    monkeypatch.setattr(engine.run, "evaluate_employee", recording)
    scans: list[object] = []
    scan = engine.run.scan_facts

    def scanning(*args: Any, **kwargs: Any) -> Any:
        scans.append(args[0])
        built.clear()  # a read given up (the file is not grouped by employee) does not count
        return scan(*args, **kwargs)

    monkeypatch.setattr(engine.run, "scan_facts", scanning)
    result = run(policies, inputs, period, to_date=to_date, keep_going=True)
    expected = reference_inputs(policies, inputs, period, to_date)
    assert len(built) == len(expected) == len(result.results) + len(result.errors) > 20
    # grouped by employee, each is evaluated as their rows are read: in file order
    assert sorted(repr(item) for item in built) == sorted(repr(item) for item in expected)
    # A shuffled file is read a second time, whole, once an employee's rows begin again.
    assert scans == ([inputs.facts] * 2 if shuffled else [inputs.facts])
    assert any(item.period_facts for item in built) and any(item.year_facts for item in built)


# --- prepare: the files read once for several policy sets (a diff's two versions) ------------

def counting_scans(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    import engine.run

    calls: list[object] = []
    scan = engine.run.scan_facts

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        return scan(*args, **kwargs)

    monkeypatch.setattr(engine.run, "scan_facts", counted)
    return calls


def test_both_versions_of_a_diff_are_evaluated_on_the_files_read_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.run import prepare

    old, new = load_policies([POLICIES / "2025-Q3"]), load_policies([POLICIES / "2025-Q4"])
    apart = [run(p, example_inputs(), "2025-Q3", trace=True, ignore_effective=True)
             for p in (old, new)]
    scans = counting_scans(monkeypatch)
    prepared = prepare([*old, *new], example_inputs(), "2025-Q3")
    together = [run(p, prepared, "2025-Q3", trace=True, ignore_effective=True)
                for p in (old, new)]
    assert len(scans) == 1
    for one, other in zip(apart, together, strict=True):
        assert render_json(one) == render_json(other)
        assert [r.trace for r in one.results] == [r.trace for r in other.results]
        assert (one.warnings, one.errors, one.notes) == (other.warnings, other.errors,
                                                         other.notes)


def test_policies_that_read_the_facts_otherwise_read_them_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.run import prepare

    facts = csv_file(tmp_path, "f.csv", "employee,role,period,revenue,quota\n"
                     "E1,rep,2025-07,4,10\nE1,rep,2025-08,6.5,10\n")
    money = load_policies([policy(tmp_path, SIMPLE)])
    whole = load_policies([policy(tmp_path, SIMPLE.replace("type: money, label: Revenue",
                                                           "type: integer, label: Revenue"),
                                  "whole.yaml")])
    scans = counting_scans(monkeypatch)
    prepared = prepare([*money, *whole], RunInputs(facts=facts), "2025-Q3")
    assert run(money, prepared, "2025-Q3").results[0].total_score == Decimal("0.525")
    assert len(scans) == 1
    # revenue read as money for the first; as an integer 6.5 is refused, as a run of it alone
    with pytest.raises(InputError) as caught:
        run(whole, prepared, "2025-Q3")
    assert codes(caught) == [("E_FACTS", 3, 4)]
    assert len(scans) == 2
    # another period reads everything again
    assert run(money, prepared, "2025-07").results[0].total_score == Decimal("0.4")
    assert len(scans) == 3


def test_a_run_evaluates_with_the_evaluator_given_and_gives_each_segments_input_again(
        tmp_path: Path) -> None:
    """run(..., evaluator=) evaluates every segment with it (the population stage too), and
    segment_inputs gives each segment's policy and input again, as the run built them."""
    from engine.evaluate import evaluate_employee
    from engine.run import prepare, segment_inputs

    policies = load_policies([POLICIES / "2025-Q4"])
    prepared = prepare(policies, example_inputs(), "2025-Q3")
    seen: list[tuple[Any, Any, bool]] = []

    def evaluator(policy: Any, item: Any, trace: bool) -> Any:
        seen.append((policy, item, trace))
        return evaluate_employee(policy, item, trace=trace)

    result = run(policies, prepared, "2025-Q3", ignore_effective=True, evaluator=evaluator)
    plain = run(policies, prepared, "2025-Q3", ignore_effective=True)
    assert render_json(result) == render_json(plain)
    assert len(seen) == len(result.results) and not any(trace for _, _, trace in seen)
    for policy, item, _ in seen:
        again = segment_inputs(policies, prepared, "2025-Q3", item.employee,
                               ignore_effective=True)
        assert (policy, item) in again
    # E0016 changes role in August: two segments; no 2025-Q4 policy is in force in 2025-Q3
    assert [item.months for _, item in segment_inputs(
        policies, prepared, "2025-Q3", "E0016", ignore_effective=True)] == [
        ("2025-07",), ("2025-08", "2025-09")]
    assert segment_inputs(policies, prepared, "2025-Q3", "E0016") == []


def test_a_fact_from_lines_is_summed_in_the_earlier_periods_a_policy_looks_back_at(
        tmp_path: Path) -> None:
    """Regression: lines were read for the period's months only, so `revenue` from lines was
    0 in every earlier quarter and max(last_periods(revenue, 2)) saw only the current one."""
    body = """facts:
  revenue: {type: money, source: lines, label: Revenue}
indicators:
  best:
    kind: result
    label: Best quarter
    value: max(last_periods(revenue, 2))
    score: {curve: linear, zero_at: 0, full_at: 1000}
roles:
  rep: {label: Rep, weights: {best: 100%}}
"""
    facts = "employee,period,role\n" + "".join(f"E1,2025-0{m},rep\n" for m in range(4, 10))
    lines = ("employee,period,fact,line_id,amount\nE1,2025-04,revenue,L1,500\n"
             "E1,2025-05,revenue,L2,-50\nE1,2025-07,revenue,L3,100\n")
    result = run(load_policies([policy(tmp_path, body)]),
                 RunInputs(facts=csv_file(tmp_path, "facts.csv", facts),
                           lines=csv_file(tmp_path, "lines.csv", lines)), "2025-Q3")
    [employee] = result.results
    # Q2: 500 - 50 = 450 (a credit note); Q3: 100; max = 450; score 450 / 1000 = 0.45
    assert employee.indicators[0].value == Decimal("450")
    assert employee.indicators[0].score == Decimal("0.45")
