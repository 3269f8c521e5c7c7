"""The practical limit: policies/2025-Q3/business-roles.yaml written out by hand in Python.

`evaluate(record)` computes what meritpay computes for one role segment, with the same Decimal
arithmetic in the same order (28 significant digits, half-even; money rounded half-up to the
cent once per line, the monthly commission once per month): each indicator's value and score,
the renormalised weighted total, the two gates, the tier, the pay mix, base pay, variable pay
(gated, capped, floored, prorated), the graduated monthly commission (gated, with the 2% else
rate, capped) and the director's interpolated profit share (gated), and the three outcomes'
conditions. Nothing else: no tracing, no checks, no generality.

Run as a script it is the hand-written end-to-end baseline: it reads the same CSV files as
`meritpay run` (facts, lines, ratings, company facts), rolls each employee's months up, ranks
and selects within roles, and writes the same result CSV:

    .venv/bin/python -m benchmarks.handwritten DATA_DIR OUT.csv [PERIOD_MONTHS]

DATA_DIR must hold only employees of the business roles (see benchmarks/data.py).
"""

from __future__ import annotations

import bisect
import calendar
import csv
import decimal
import math
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from .records import Payout, Record, score_text

D = Decimal
ZERO, ONE = D(0), D(1)
CENT = D("0.01")
HALF, P15, P90 = D("0.5"), D("0.15"), D("0.9")

# (weight, indicator) per role, in the policy's order
WEIGHTS: dict[str, tuple[tuple[str, Decimal], ...]] = {
    "junior_sales_rep": (("revenue_attainment", D("0.40")),
                         ("new_customer_development", D("0.30")),
                         ("visit_frequency", D("0.10")), ("needs_analysis_rate", D("0.05")),
                         ("review_360", D("0.10")), ("digital_collaboration", D("0.05"))),
    "account_manager": (("customer_retention", D("0.25")), ("average_order_value", D("0.20")),
                        ("revenue_attainment", D("0.15")), ("cash_collection", D("0.10")),
                        ("proposal_conversion", D("0.10")), ("contract_timeliness", D("0.05")),
                        ("review_360", D("0.10")), ("digital_collaboration", D("0.05"))),
    "business_director": (("profit_margin", D("0.30")), ("strategic_penetration", D("0.25")),
                          ("revenue_attainment", D("0.15")),
                          ("carbon_neutral_adoption", D("0.05")),
                          ("report_completeness", D("0.05")), ("review_360", D("0.20"))),
}
SHIFT = D("0.10")  # market_downturn: cash_collection takes 10 points from revenue_attainment
RATER_GROUPS = (("superior", D("0.40"), 1), ("peer", D("0.30"), 2), ("customer", D("0.20"), 3),
                ("subordinate", D("0.10"), 1))
BRACKETS = ((D(1000000), D("0.02")), (D(3000000), D("0.04")), (None, D("0.06")))
ELSE_RATE = D("0.02")
COMMISSION_CAP = D(300000)
LOW, LOW_RATE, HIGH, HIGH_RATE = D(2000000), D("0.01"), D(6000000), D("0.03")
BASE_SHARE, VARIABLE_SHARE, VARIABLE_CAP = D("0.60"), D("0.40"), D("1.5")
MONEY_REWARDS = {"junior_sales_rep": ("base_pay", "variable_pay", "commission"),
                 "account_manager": ("base_pay", "variable_pay", "commission"),
                 "business_director": ("base_pay", "variable_pay", "director_profit_share")}


def linear(value: Decimal, zero_at: Decimal, full_at: Decimal, cap: Decimal) -> Decimal:
    raw = (value - zero_at) / (full_at - zero_at)
    return ZERO if raw < ZERO else cap if raw > cap else raw


def scores_of(role: str, f: Mapping[str, Any], ratings: Mapping[str, tuple[Decimal, ...]]
              ) -> tuple[dict[str, Decimal], Decimal]:
    """The scores of the role's weighted indicators (excluded and not applicable ones left
    out), and revenue_attainment's value (for the min_attainment gate)."""
    s: dict[str, Decimal] = {}
    attainment = f["revenue"] / f["quota"]
    s["revenue_attainment"] = linear(attainment, HALF, ONE, D("1.5"))
    if f["remote"]:
        updates = f["shared_doc_updates"] / 24
        value = (updates if updates < 1 else ONE) * HALF + f["online_proposal_quality"] * HALF
        s["digital_collaboration"] = linear(value, D("0.2"), D("0.8"), D("1.2"))
    weighted = weights = ZERO
    for group, weight, least in RATER_GROUPS:
        scores = ratings.get(group, ())
        if len(scores) >= least and scores:
            weighted += weight * (sum(scores, ZERO) / len(scores))
            weights += weight
    s["review_360"] = linear(weighted / weights, D(2), D(4), D("1.25"))
    if role == "junior_sales_rep":
        if f["new_customer_target"] != 0:
            s["new_customer_development"] = linear(
                f["new_customers"] / f["new_customer_target"], ZERO, ONE, D("1.3"))
        visits = f["visits"]
        s["visit_frequency"] = D("1.1") if visits >= 45 else ONE if visits >= 30 else \
            D("0.7") if visits >= 20 else ZERO
        if f["needs_reports_due"] != 0:
            s["needs_analysis_rate"] = linear(f["needs_reports_sent"] / f["needs_reports_due"],
                                              HALF, ONE, ONE)
    elif role == "account_manager":
        retention = f["retention_rate"]
        s["customer_retention"] = D("1.2") if retention >= D("0.95") else \
            ONE if retention >= P90 else D("0.6") if retention >= D("0.8") else ZERO
        orders = f["orders"]
        s["average_order_value"] = linear(f["revenue"] / orders if orders != 0 else ZERO,
                                          D(20000), D(60000), D("1.25"))
        s["cash_collection"] = linear(f["collection_days"], D(90), D(45), D("1.2"))
        proposals = f["proposals"]
        s["proposal_conversion"] = linear(f["proposals_won"] / proposals if proposals != 0
                                          else ZERO, D("0.1"), D("0.35"), D("1.2"))
        if f["contracts_due"] != 0:
            s["contract_timeliness"] = ONE if f["contracts_on_time"] / f["contracts_due"] \
                >= D("0.95") else HALF
    else:
        s["profit_margin"] = linear(f["gross_margin"], D("0.05"), D("0.20"), D("1.4"))
        if f["strategic_accounts"] != 0:
            s["strategic_penetration"] = linear(
                f["strategic_penetrated"] / f["strategic_accounts"], ZERO, D("0.6"), D("1.2"))
        s["carbon_neutral_adoption"] = linear(f["carbon_neutral_adopted"], ZERO, D("0.3"),
                                              D("1.2"))
        if f["reports_due"] != 0:
            value = f["reports_complete"] / f["reports_due"]
            s["report_completeness"] = max(ZERO, min(ONE, value))
        if f["market_downturn"]:  # only a downturn brings cash_collection in
            s["cash_collection"] = linear(f["collection_days"], D(90), D(45), D("1.2"))
    return s, attainment


def total_score(role: str, s: Mapping[str, Decimal], downturn: bool) -> Decimal:
    weights = dict(WEIGHTS[role])
    if downturn and role != "junior_sales_rep":
        weights["revenue_attainment"] -= SHIFT
        weights["cash_collection"] = weights.get("cash_collection", ZERO) + SHIFT
    denominator = sum((w for n, w in weights.items() if n in s), ZERO)
    total = ZERO
    for name, weight in weights.items():
        if name in s:
            total += weight / denominator * s[name]
    return total


def graduated(base: Decimal) -> Decimal:
    total, lower = ZERO, ZERO
    for upto, rate in BRACKETS:
        if base <= lower:
            break
        top = base if upto is None or base < upto else upto
        total += (top - lower) * rate
        if upto is None:
            break
        lower = upto
    return total


def evaluate(r: Record) -> Payout:
    f, role = r.facts, r.role
    s, attainment = scores_of(role, f, r.ratings)
    total = total_score(role, s, bool(f["market_downturn"]))
    if total >= D("1.1"):
        tier, multiplier = "outstanding", D("1.5")
    elif total >= D("0.8"):
        tier, multiplier = "meets", ONE
    elif total >= 0:
        tier, multiplier = "below", ZERO
    else:
        tier, multiplier = "", ZERO
    margin_ok = "gross_margin" in f and f["gross_margin"] >= P15
    target = f["target_cash"]
    base, variable = target * BASE_SHARE, target * VARIABLE_SHARE
    proration = r.proration
    amounts: dict[str, Decimal] = {}
    if proration != ONE:
        base = base * proration
    amounts["base_pay"] = base.quantize(CENT, rounding=ROUND_HALF_UP)
    pay = variable * multiplier if attainment >= HALF else ZERO
    if proration != ONE:
        pay = pay * proration
    cap = variable * VARIABLE_CAP
    pay = cap if pay > cap else ZERO if pay < 0 else pay
    amounts["variable_pay"] = pay.quantize(CENT, rounding=ROUND_HALF_UP)
    if role == "business_director":
        if margin_ok:
            profit = f["gross_profit"]
            if profit <= LOW:
                rate = LOW_RATE
            elif profit <= HIGH:
                rate = LOW_RATE + (HIGH_RATE - LOW_RATE) * (profit - LOW) / (HIGH - LOW)
            else:
                rate = HIGH_RATE
            share = profit * rate
        else:
            share = ZERO
        amounts["director_profit_share"] = share.quantize(CENT, rounding=ROUND_HALF_UP)
    else:
        commission = ZERO
        for month in r.month_facts:
            revenue = month.get("revenue", ZERO)
            paid = graduated(revenue) if margin_ok else revenue * ELSE_RATE
            commission += paid.quantize(CENT, rounding=ROUND_HALF_UP)
        if commission > COMMISSION_CAP:
            commission = COMMISSION_CAP
        amounts["commission"] = commission.quantize(CENT, rounding=ROUND_HALF_UP)
    outcomes = []
    if tier == "outstanding":
        outcomes.append("value_creation_star")
    if total >= ONE and s["revenue_attainment"] >= ONE:
        outcomes.append("leading_talent")
    if role != "junior_sales_rep":
        years = r.year_facts[-3:]
        if len(years) == 3 and all(y is not None and y["retention_rate"] >= P90
                                   for y in years) and f["successors_trained"] >= 2:
            outcomes.append("equity_eligibility")
    return Payout(total, tier, amounts, tuple(outcomes))


# --------------------------------------------------------------------------------------------
# The end-to-end script: CSV in, the same result CSV out.

PERIOD = ("2025-07", "2025-08", "2025-09")
LABEL = "2025-Q3"
SUM = ("quota", "gross_profit", "new_customers", "new_customer_target", "orders", "visits",
       "proposals", "proposals_won", "contracts_due", "contracts_on_time", "reports_due",
       "reports_complete", "needs_reports_due", "needs_reports_sent", "target_cash")
LAST = ("customers_retained", "strategic_accounts", "strategic_penetrated",
        "carbon_neutral_adopted", "successors_trained")
KEPT = ("employee", "name", "role", "period", "hired", "left", *SUM, *LAST, "customers_start",
        "collection_days", "online_proposal_quality", "shared_doc_updates", "remote")
DEFAULTS = {"carbon_neutral_adopted": ZERO, "remote": False, "shared_doc_updates": ZERO,
            "online_proposal_quality": ZERO, "successors_trained": ZERO}
BOOLEAN = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _ratio(numerator: Any, denominator: Any) -> Decimal | None:
    try:
        return numerator / denominator  # type: ignore[no-any-return]
    except (ArithmeticError, TypeError):
        return None


def roll_up(rows: Sequence[dict[str, str]], revenue: Sequence[Decimal],
            downturn: bool | None) -> dict[str, Any]:
    """One segment's months rolled up as business-roles declares its facts."""
    f: dict[str, Any] = {"revenue": sum(revenue, ZERO)}
    for name in SUM:
        present = [D(row[name]) for row in rows if row[name]]
        if present:
            total = present[0]
            for value in present[1:]:
                total = total + value
            f[name] = total
    for name in LAST:
        cells = [row[name] for row in rows if row[name]]
        if cells:
            f[name] = D(cells[-1])
    starts = [row["customers_start"] for row in rows if row["customers_start"]]
    if starts:
        f["customers_start"] = D(starts[0])
    for name in ("collection_days", "online_proposal_quality"):
        present = [D(row[name]) for row in rows if row[name]]
        if present:
            f[name] = sum(present, ZERO) / len(present)
    shared = [D(row["shared_doc_updates"]) for row in rows if row["shared_doc_updates"]]
    if shared:
        f["shared_doc_updates"] = sum(shared[1:], shared[0])
    remote = [row["remote"] for row in rows if row["remote"]]
    if remote:
        f["remote"] = BOOLEAN[remote[-1]]
    if downturn is not None:
        f["market_downturn"] = downturn
    for name, default in DEFAULTS.items():
        f.setdefault(name, default)
    f.setdefault("market_downturn", False)
    margin = _ratio(f.get("gross_profit"), f["revenue"])
    if margin is not None:
        f["gross_margin"] = margin
    retention = _ratio(f.get("customers_retained"), f.get("customers_start"))
    if retention is not None:
        f["retention_rate"] = retention
    return f


def _month_end(month: str) -> date:
    year, number = int(month[:4]), int(month[5:])
    return date(year, number, calendar.monthrange(year, number)[1])


def proration(rows: Sequence[dict[str, str]]) -> Decimal:
    start = date(int(rows[0]["period"][:4]), int(rows[0]["period"][5:]), 1)
    end = _month_end(rows[-1]["period"])
    total = (end - start).days + 1
    hired, left = rows[0]["hired"], rows[-1]["left"]
    worked_start = max(start, date.fromisoformat(hired)) if hired else start
    worked_end = min(end, date.fromisoformat(left)) if left else end
    worked = max(0, (worked_end - worked_start).days + 1)
    return ONE if worked == total else D(worked) / D(total)


def _year(ends: list[str]) -> dict[str, Any]:
    """A fiscal year's retention from its first customers_start and last customers_retained
    (absent when either is)."""
    if not ends[1] or not ends[3]:
        return {}
    retention = _ratio(D(ends[3]), D(ends[1]))
    return {} if retention is None else {"retention_rate": retention}


def read(folder: Path, months: Sequence[str] = PERIOD) -> list[Record]:
    """Every business-roles segment of the period, in meritpay's order (by employee id, then
    month): facts rolled up per segment, per month and per complete fiscal year."""
    wanted = set(months)
    current_year = int(months[0][:4])  # the policy's fiscal year starts in January
    period_rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    # fiscal year -> [first month, customers_start, last month, customers_retained]
    years: dict[str, dict[int, list[str]]] = defaultdict(dict)
    with (folder / "facts.csv").open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        at = {name: i for i, name in enumerate(header)}
        employee, period = at["employee"], at["period"]
        start, retained = at["customers_start"], at["customers_retained"]
        for cells in reader:
            month = cells[period]
            if month in wanted:
                period_rows[cells[employee]].append({k: cells[at[k]] for k in KEPT})
            year = int(month[:4])
            if year < current_year:
                ends = years[cells[employee]].setdefault(year, ["", "", "", ""])
                if cells[start] and (not ends[0] or month < ends[0]):
                    ends[0], ends[1] = month, cells[start]
                if cells[retained] and month > ends[2]:
                    ends[2], ends[3] = month, cells[retained]
    lines: dict[tuple[str, str], Decimal] = {}
    with (folder / "lines.csv").open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        at = {name: i for i, name in enumerate(next(reader))}
        for cells in reader:
            if cells[at["period"]] in wanted and cells[at["fact"]] == "revenue":
                key = (cells[at["employee"]], cells[at["period"]])
                lines[key] = lines.get(key, ZERO) + D(cells[at["amount"]])
    ratings: dict[str, dict[str, list[Decimal]]] = defaultdict(lambda: defaultdict(list))
    labels = wanted | {LABEL}
    with (folder / "ratings.csv").open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        at = {name: i for i, name in enumerate(next(reader))}
        for cells in reader:
            if cells[at["period"]] in labels:
                ratings[cells[at["employee"]]][cells[at["group"]]].append(D(cells[at["score"]]))
    downturn: dict[str, bool] = {}
    with (folder / "company_facts.csv").open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["market_downturn"]:
                downturn[row["period"]] = BOOLEAN[row["market_downturn"]]

    records = []
    for person in sorted(period_rows):
        rows = sorted(period_rows[person], key=lambda row: row["period"])
        by_year = years.get(person, {})
        year_facts: tuple[Mapping[str, Any] | None, ...] = ()
        if by_year:
            year_facts = tuple(_year(by_year[y]) if y in by_year else None
                               for y in range(min(by_year), current_year))
        segments: list[list[dict[str, str]]] = []
        for row in rows:
            if segments and segments[-1][-1]["role"] == row["role"]:
                segments[-1].append(row)
            else:
                segments.append([row])
        for segment in segments:
            revenue = [lines.get((person, row["period"]), ZERO) for row in segment]
            flags = [downturn[row["period"]] for row in segment if row["period"] in downturn]
            facts = roll_up(segment, revenue, flags[-1] if flags else None)
            month_facts = tuple({"revenue": value} for value in revenue)
            records.append(Record(
                person, segment[0]["name"], segment[0]["role"],
                tuple(row["period"] for row in segment), facts, month_facts, year_facts,
                {g: tuple(v) for g, v in ratings.get(person, {}).items()}, proration(segment)))
    return records


def population(records: Sequence[Record], payouts: Sequence[Payout]
               ) -> list[tuple[int, Decimal, tuple[str, ...]]]:
    """Rank and percentile by total score within the role, and the honour's top 5% (everyone
    tied at the cut included): (rank, percentile, outcomes granted) per record."""
    by_role: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_role[record.role].append(index)
    ranked: list[tuple[int, Decimal, tuple[str, ...]]] = [(0, ZERO, ())] * len(records)
    for indexes in by_role.values():
        scores = sorted(payouts[i].total_score for i in indexes)
        size = len(indexes)
        take = min(size, math.ceil(D("0.05") * size))
        candidates = sorted((payouts[i].total_score for i in indexes
                             if "value_creation_star" in payouts[i].outcomes), reverse=True)
        cut = candidates[min(take, len(candidates)) - 1] if take > 0 and candidates else None
        for i in indexes:
            score = payouts[i].total_score
            lower = bisect.bisect_left(scores, score)
            higher = size - bisect.bisect_right(scores, score)
            outcomes = tuple(o for o in payouts[i].outcomes
                             if o != "value_creation_star" or (cut is not None and score >= cut))
            ranked[i] = (higher + 1, D(lower) / D(size), outcomes)
    return ranked


COLUMNS = ["employee", "name", "role", "team", "period", "months", "policy", "version",
           "currency", "total_score", "rank_in_role", "percentile_in_role", "tier", "base_pay",
           "variable_pay", "commission", "director_profit_share", "total_pay", "outcomes",
           "error"]
ORDER = ("value_creation_star", "leading_talent", "equity_eligibility")


def write(path: Path, records: Sequence[Record], payouts: Sequence[Payout]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for record, payout, (rank, percentile, outcomes) in zip(
                records, payouts, population(records, payouts), strict=True):
            amounts = payout.amounts
            writer.writerow([
                record.employee, record.name, record.role, "", LABEL,
                f"{record.months[0]}..{record.months[-1]}", "business-roles", "2025.3", "CNY",
                score_text(payout.total_score), str(rank), score_text(percentile), payout.tier,
                *[str(amounts[n]) if n in amounts else "" for n in
                  ("base_pay", "variable_pay", "commission", "director_profit_share")],
                str(sum(amounts.values(), ZERO)),
                ";".join(o for o in ORDER if o in outcomes), ""])


def context() -> decimal.Context:
    """meritpay's arithmetic: 28 significant digits, half-even."""
    return decimal.Context(prec=28, rounding=ROUND_HALF_EVEN)


def main(argv: list[str]) -> None:
    folder, out = Path(argv[0]), Path(argv[1])
    with decimal.localcontext(context()):
        records = read(folder)
        payouts = [evaluate(record) for record in records]
        write(out, records, payouts)


if __name__ == "__main__":
    main(sys.argv[1:])
