"""The sample data in examples/: reproducible, and consistent with the shipped policies.

The policies are read with plain YAML (no engine): the facts they declare (name, type, scope,
source), the roles and the 360 rater groups. When a policy gains or renames a fact, the column
tests here fail: update FACTS / TEAM_FACTS / COMPANY_FACTS in examples/generate.py and
regenerate (`.venv/bin/python examples/generate.py`).
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

CHECKOUT = Path(__file__).resolve().parents[1]
EXAMPLES = CHECKOUT / "examples"
FILES = ("facts.csv", "lines.csv", "ratings.csv", "teams.csv", "team_facts.csv",
         "company_facts.csv")
NUMERIC = {"money", "number", "ratio", "integer"}
Q3 = ("2025-07", "2025-08", "2025-09")
APPRAISAL_MONTHS = (*Q3, "2025-10", "2025-11", "2025-12")


def policy_files() -> list[Path]:
    """The shipped policies, in the order `meritpay validate policies/` reads them."""
    return sorted(p for p in (CHECKOUT / "policies").rglob("*.y*ml")
                  if not p.name.endswith((".test.yaml", ".test.yml")))


@cache
def policies() -> tuple[dict[str, Any], ...]:
    return tuple(yaml.safe_load(p.read_text(encoding="utf-8")) for p in policy_files())


@cache
def declared(scope: str) -> dict[str, dict[str, Any]]:
    """Facts of one scope over all policies, in order of first appearance."""
    out: dict[str, dict[str, Any]] = {}
    for policy in policies():
        for name, fact in policy["facts"].items():
            if fact.get("scope", "employee") == scope:
                out.setdefault(name, fact)
    return out


@cache
def policy_of_role() -> dict[str, dict[str, Any]]:
    return {role: policy for policy in policies() for role in policy["roles"]}


def employee_facts_of(policy: dict[str, Any]) -> set[str]:
    return {n for n, f in policy["facts"].items() if f.get("scope", "employee") == "employee"}


def rater_groups(policy: dict[str, Any]) -> dict[str, Any]:
    """The review's rater groups (and scale), or {} when the policy has no 360 review."""
    for indicator in policy["indicators"].values():
        if "raters" in indicator:
            return dict(indicator["raters"])
    return {}


@cache
def read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (EXAMPLES / name).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("examples_generate", EXAMPLES / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


def decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise AssertionError(f"{text!r} is not a number") from None


def test_regenerating_gives_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    load_generator().generate(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), (
            f"examples/{name} is not what examples/generate.py makes: regenerate it")


def test_the_facts_file_stays_small() -> None:
    assert (EXAMPLES / "facts.csv").stat().st_size < 3_000_000


def test_columns_are_the_declared_facts_in_order_of_first_appearance() -> None:
    identity = ["employee", "name", "role", "team", "period", "hired", "left"]
    descriptive = ["grade", "location", "gender"]  # for `meritpay diff --by`
    assert read("facts.csv")[0] == identity + descriptive + list(declared("employee"))
    assert read("team_facts.csv")[0] == ["team", "period", *declared("team")]
    assert read("company_facts.csv")[0] == ["period", *declared("company")]


def test_every_role_of_every_shipped_policy_appears_in_2025_q3() -> None:
    roles = {row["role"] for row in read("facts.csv")[1] if row["period"] in Q3}
    assert set(policy_of_role()) <= roles


def test_a_fact_is_filled_exactly_where_the_role_s_policy_declares_it() -> None:
    header, rows = read("facts.csv")
    facts = header[10:]
    for row in rows:
        policy = policy_of_role()[row["role"]]
        filled = {name for name in facts if row[name] != ""}
        assert filled == employee_facts_of(policy), (row["employee"], row["period"])


@pytest.mark.parametrize("name", ["facts.csv", "team_facts.csv", "company_facts.csv"])
def test_cells_parse_as_their_declared_type(name: str) -> None:
    header, rows = read(name)
    types = {n: f["type"] for scope in ("employee", "team", "company")
             for n, f in declared(scope).items() if n in header}
    for column, kind in types.items():
        for row in rows:
            cell = row[column]
            if cell == "":
                continue
            if kind in NUMERIC:
                value = decimal(cell)
                if kind == "integer":
                    assert cell.lstrip("-").isdigit(), (column, cell)
                if kind == "money":
                    assert value == value.quantize(Decimal("0.01")), (column, cell)
            elif kind == "boolean":
                assert cell in ("true", "false"), (column, cell)


def test_periods_are_the_42_months_from_2022_07_to_2025_12() -> None:
    months = [f"{y}-{m:02d}" for y in range(2022, 2026) for m in range(1, 13)][6:]
    assert len(months) == 42
    periods = {row["period"] for row in read("facts.csv")[1]}
    assert periods == set(months)
    assert [row["period"] for row in read("company_facts.csv")[1]] == months


def test_lines_sum_to_the_revenue_of_each_employee_month() -> None:
    line_facts = {n for n, f in declared("employee").items() if f.get("source") == "lines"}
    assert line_facts == {"revenue"}
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for line in read("lines.csv")[1]:
        assert line["fact"] in line_facts
        assert line["period"] in APPRAISAL_MONTHS
        sums[line["employee"], line["period"]] += decimal(line["amount"])
    revenue = {(row["employee"], row["period"]): decimal(row["revenue"])
               for row in read("facts.csv")[1]
               if row["revenue"] and row["period"] in APPRAISAL_MONTHS}
    assert sums == revenue
    ids = [line["line_id"] for line in read("lines.csv")[1]]
    assert len(ids) == len(set(ids))
    assert any(decimal(line["amount"]) < 0 for line in read("lines.csv")[1]), "no credit note"


def test_divisors_the_policies_cannot_fall_back_on_are_never_zero() -> None:
    # revenue_attainment divides by quota with `divide_by_zero: error`; the rollups
    # gross_profit / revenue and customers_retained / customers_start have no fallback.
    for row in read("facts.csv")[1]:
        for column in ("quota", "customers_start"):
            assert row[column] == "" or decimal(row[column]) > 0, (row["employee"], column)
        if row["gross_margin"]:
            assert decimal(row["revenue"]) > 0, row["employee"]
    for row in read("team_facts.csv")[1]:
        assert row["launch_profit_target"] == "" or decimal(row["launch_profit_target"]) > 0


def test_team_shares_sum_to_one_and_match_the_facts() -> None:
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    member_team: dict[str, str] = {}
    for row in read("teams.csv")[1]:
        totals[row["team"], row["period"]] += decimal(row["share"])
        member_team[row["member"]] = row["team"]
    assert totals and all(total == 1 for total in totals.values()), totals
    for row in read("facts.csv")[1]:
        assert row["team"] == member_team.get(row["employee"], ""), row["employee"]
    teams = {row["team"] for row in read("team_facts.csv")[1]}
    assert teams == set(member_team.values())


@cache
def role_in_quarter() -> dict[tuple[str, str], str]:
    """(employee, quarter) -> the role in the quarter's last month with data."""
    out: dict[tuple[str, str], str] = {}
    for row in read("facts.csv")[1]:
        if row["period"] in APPRAISAL_MONTHS:
            quarter = "2025-Q3" if row["period"] in Q3 else "2025-Q4"
            out[row["employee"], quarter] = row["role"]
    return out


def test_ratings_use_the_groups_and_scale_of_the_employee_s_policy() -> None:
    for rating in read("ratings.csv")[1]:
        role = role_in_quarter()[rating["employee"], rating["period"]]
        raters = rater_groups(policy_of_role()[role])
        assert rating["group"] in raters["groups"], rating
        score = decimal(rating["score"])
        assert raters["scale"]["min"] <= score <= raters["scale"]["max"], rating
        assert score == score.quantize(Decimal("0.1")), rating


def test_most_rater_groups_have_their_minimum_and_the_edge_cases_do_not() -> None:
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    minimum: dict[tuple[str, str, str], int] = {}
    for rating in read("ratings.csv")[1]:
        key = (rating["employee"], rating["period"], rating["group"])
        counts[key] += 1
        groups = rater_groups(policy_of_role()[role_in_quarter()[key[:2]]])["groups"]
        minimum[key] = groups[key[2]].get("min_raters", 1)
    short = {key for key, n in counts.items() if n < minimum[key]}
    assert short == {("E0019", "2025-Q3", "customer")}
    directors = {row["employee"] for row in read("facts.csv")[1]
                 if row["role"] == "business_director"}
    without = {d for d in directors if (d, "2025-Q3", "subordinate") not in counts}
    assert without == {"E0038"}


def test_documented_edge_cases() -> None:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in read("facts.csv")[1]:
        rows[row["employee"]].append(row)

    def periods(eid: str) -> list[str]:
        return [row["period"] for row in rows[eid]]

    def q3(eid: str, column: str) -> Decimal:
        return sum((decimal(r[column]) for r in rows[eid] if r["period"] in Q3), Decimal(0))

    assert rows["E0012"][0]["hired"] == "2025-08-16" and periods("E0012")[0] == "2025-08"
    assert rows["E0013"][0]["left"] == "2025-08-31" and periods("E0013")[-1] == "2025-08"
    assert [r["left"] for eid in rows for r in rows[eid] if r["left"]] == ["2025-08-31"] * len(
        rows["E0013"])
    assert [r["role"] for r in rows["E0016"] if r["period"] in Q3] == [
        "junior_sales_rep", "account_manager", "account_manager"]
    assert q3("E0023", "gross_profit") / q3("E0023", "revenue") == Decimal("0.15")
    assert q3("E0024", "gross_profit") / q3("E0024", "revenue") == Decimal("0.1499")
    assert q3("E0020", "revenue") / q3("E0020", "quota") == Decimal("0.4")
    assert q3("E0025", "revenue") / q3("E0025", "quota") == Decimal("1.5")
    assert q3("E0014", "new_customer_target") == 0 and q3("E0018", "new_customer_target") == 0
    gap = [p for p in periods("E0035") if "2023-07" <= p <= "2024-12"]
    assert gap == [] and "2023-06" in periods("E0035") and "2025-01" in periods("E0035")
    credit = [line for line in read("lines.csv")[1] if decimal(line["amount"]) < 0]
    assert [(line["employee"], line["period"]) for line in credit] == [("E0003", "2025-08")]

    def year_rate(eid: str, year: str) -> Decimal:
        book = [r for r in rows[eid] if r["period"].startswith(year)]
        return decimal(book[-1]["customers_retained"]) / decimal(book[0]["customers_start"])

    assert year_rate("E0034", "2023") == Decimal("0.89")
    for eid in ("E0008", "E0011"):
        assert all(year_rate(eid, y) >= Decimal("0.9") for y in ("2022", "2023", "2024"))
        assert int(rows[eid][-1]["successors_trained"]) >= 2
    company = {row["period"]: row["market_downturn"] for row in read("company_facts.csv")[1]}
    assert [p for p, v in company.items() if v == "true"] == ["2025-11", "2025-12"]
