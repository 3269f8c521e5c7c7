"""A whole run: choose the policy for each employee, roll monthly facts up, evaluate everyone,
then apply the population rules.

    policies + facts file + period -> RunResult

An employee whose role changes inside the period is evaluated as one segment per role, on
that role's months; `hired` and `left` dates prorate amount rewards by days.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from .compiler import compile_policy
from .diagnostics import Diagnostic, FindingsError, InputError, Location, Severity
from .evaluate import EmployeeInput, EmployeeResult, EvaluationError, evaluate_employee
from .expr import MISSING
from .facts import FactRow, read_facts
from .model import CompiledPolicy, FactDecl
from .population import PopulationNote, apply_population
from .ratings import read_ratings
from .validate import validate_paths

_QUARTER = re.compile(r"(\d{4})-[Qq]([1-4])")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_YEAR = re.compile(r"(\d{4})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Period:
    label: str  # 2025-Q3, 2025-07, 2025
    kind: str  # month, quarter, year
    start: date
    end: date

    @property
    def months(self) -> tuple[str, ...]:
        return months_between(self.start, self.end)


def months_between(start: date, end: date) -> tuple[str, ...]:
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(months)


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def parse_period(text: str, kind: str | None = None) -> Period:
    """'2025-Q3', '2025-07', '2025', or a date (the period of `kind` holding it)."""
    text = text.strip()
    if match := _QUARTER.fullmatch(text):
        year, quarter = int(match.group(1)), int(match.group(2))
        first = 3 * quarter - 2
        return Period(f"{year}-Q{quarter}", "quarter", date(year, first, 1),
                      _month_end(year, first + 2))
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise _bad_period(text) from None
        if kind == "month":
            return parse_period(f"{day.year}-{day.month:02d}")
        if kind == "year":
            return parse_period(str(day.year))
        return parse_period(f"{day.year}-Q{(day.month - 1) // 3 + 1}")
    if match := _MONTH.fullmatch(text):
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            raise _bad_period(text)
        return Period(text, "month", date(year, month, 1), _month_end(year, month))
    if match := _YEAR.fullmatch(text):
        year = int(text)
        return Period(text, "year", date(year, 1, 1), date(year, 12, 31))
    raise _bad_period(text)


def _bad_period(text: str) -> InputError:
    return InputError(f"--period '{text}' is not a period: write 2025-Q3, 2025-07, 2025 or a "
                      "date such as 2025-08-15")


# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunResult:
    period: Period
    policies: tuple[CompiledPolicy, ...]
    results: tuple[EmployeeResult, ...]
    errors: tuple[Diagnostic, ...]  # employees that could not be evaluated (--keep-going)
    warnings: tuple[Diagnostic, ...] = ()
    notes: tuple[PopulationNote, ...] = ()


def load_policies(paths: Iterable[Path]) -> list[CompiledPolicy]:
    """Validate and compile every policy under paths; FindingsError if any has errors."""
    report = validate_paths(paths)
    if report.errors:
        errors = [d for d in report.diagnostics if d.severity is Severity.ERROR]
        raise FindingsError(f"{report.errors} policy error(s); run 'meritpay validate'", errors)
    if not report.policies:
        raise InputError("no policy files found in " + ", ".join(str(p) for p in paths))
    return [compile_policy(check) for check in report.policies]


def covers(policy: CompiledPolicy, period: Period) -> bool:
    until = policy.effective_until or date.max
    return policy.effective_from <= period.start and period.end <= until


def choose_policy(policies: Sequence[CompiledPolicy], role: str,
                  period: Period) -> CompiledPolicy | None:
    for policy in policies:
        if role in policy.roles and covers(policy, period):
            return policy
    return None


def fact_types(policies: Sequence[CompiledPolicy]) -> dict[str, str]:
    types: dict[str, str] = {}
    for policy in policies:
        for fact in policy.facts:
            # a column for a fact computed by a rollup expression is read (so it is checked)
            # and then recomputed from its parts
            if fact.scope == "employee":
                types.setdefault(fact.name, fact.type)
    return types


def rater_groups(policies: Sequence[CompiledPolicy]) -> dict[str, tuple[Decimal, Decimal]]:
    """Every rater group of every 360 review, with its scale (the widest if two differ)."""
    groups: dict[str, tuple[Decimal, Decimal]] = {}
    for policy in policies:
        for indicator in policy.indicators:
            if indicator.raters is None:
                continue
            for group in indicator.raters.groups:
                low, high = indicator.raters.scale_min, indicator.raters.scale_max
                if group.name in groups:
                    low, high = min(low, groups[group.name][0]), max(high, groups[group.name][1])
                groups[group.name] = (low, high)
    return groups


def run(policies: Sequence[CompiledPolicy], facts_path: Path, period_text: str, *,
        encoding: str | None = None, keep_going: bool = False, trace: bool = False,
        force_policy: CompiledPolicy | None = None, ratings_path: Path | None = None
        ) -> RunResult:
    """Evaluate everyone in the facts file for the period.

    force_policy evaluates every employee under that one policy whatever its effective range
    (a dry-run of a new version on last quarter's facts).
    """
    kinds = {p.period for p in policies}
    period = parse_period(period_text, next(iter(kinds)) if len(kinds) == 1 else None)
    read = read_facts(facts_path, fact_types(policies), encoding=encoding,
                      places=max(p.places for p in policies))
    warnings: list[Diagnostic] = []
    if read.unknown_columns:
        warnings.append(Diagnostic(
            "W_FACTS_UNKNOWN_COLUMNS", Severity.WARNING, Location(str(facts_path), 1),
            "columns no policy declares were ignored: " + ", ".join(read.unknown_columns), ""))
    ratings: Mapping[str, Mapping[str, tuple[Decimal, ...]]] = {}
    if ratings_path is not None:
        ratings = read_ratings(ratings_path, {period.label, *period.months},
                               rater_groups(policies), encoding=encoding).by_employee
    by_employee: dict[str, list[FactRow]] = defaultdict(list)
    for row in read.rows:
        by_employee[row.employee].append(row)
    results: list[EmployeeResult] = []
    items: list[EmployeeInput] = []
    errors: list[Diagnostic] = []
    months = set(period.months)
    for employee in sorted(by_employee):
        rows = sorted(by_employee[employee], key=lambda r: r.month)
        current = [r for r in rows if r.month in months]
        for segment in _segments(current):
            role = segment[0].role
            policy = force_policy if force_policy is not None and role in force_policy.roles \
                else choose_policy(policies, role, period)
            try:
                if policy is None:
                    raise _no_policy(segment[0], period, facts_path)
                item = build_input(policy, segment, rows, period,
                                   ratings.get(segment[0].employee, {}))
                results.append(evaluate_employee(policy, item, trace=trace))
                items.append(item)
            except EvaluationError as error:
                if not keep_going:
                    raise
                errors.extend(error.diagnostics)
    if not results and not errors:
        raise InputError(f"{facts_path}: no records fall in {period.label}",
                         [Diagnostic("E_FACTS", Severity.ERROR, Location(str(facts_path)),
                                     f"no records fall in period {period.label}",
                                     "check --period against the facts' period column")])
    final, notes = apply_population(
        results, items, policies, lambda p, i: evaluate_employee(p, i, trace=trace))
    return RunResult(period, tuple(policies), tuple(final), tuple(errors), tuple(warnings),
                     tuple(notes))


def _no_policy(row: FactRow, period: Period, path: Path) -> EvaluationError:
    diagnostic = Diagnostic(
        "E_EVAL_NO_POLICY", Severity.ERROR, Location(str(path), row.row),
        f"employee {row.employee}: no policy covers role '{row.role}' in {period.label}",
        "add the role to a policy, or check the period and the policies' effective ranges")
    return EvaluationError(diagnostic.render(), [diagnostic])


def _segments(rows: Sequence[FactRow]) -> list[list[FactRow]]:
    """Consecutive months with the same role."""
    segments: list[list[FactRow]] = []
    for row in rows:
        if segments and segments[-1][-1].role == row.role:
            segments[-1].append(row)
        else:
            segments.append([row])
    return segments


def rollup(policy: CompiledPolicy, rows: Sequence[FactRow]) -> dict[str, Any]:
    """Roll monthly rows up into one record as each fact declares; defaults fill the gaps."""
    values: dict[str, Any] = {}
    for fact in policy.facts:
        if fact.expression is not None:
            values[fact.name] = _rollup_expression(fact, values)
        else:
            present = [r.values[fact.name] for r in rows if fact.name in r.values]
            values[fact.name] = _combine(fact.rollup, present)
        if values[fact.name] is MISSING and fact.default is not MISSING:
            values[fact.name] = fact.default
    return values


def _combine(how: str, present: list[Any]) -> Any:
    if not present:
        return MISSING
    if how == "sum":
        total = present[0]
        for value in present[1:]:
            total = total + value
        return total
    if how == "mean":
        return sum(present, Decimal(0)) / len(present)
    if how == "first":
        return present[0]
    if how == "min":
        return min(present)
    if how == "max":
        return max(present)
    return present[-1]


def _rollup_expression(fact: FactDecl, values: Mapping[str, Any]) -> Any:
    assert fact.expression is not None
    if any(values.get(n, MISSING) is MISSING for n in fact.expression.reads):
        return MISSING
    try:
        return fact.expression.function(values)
    except ArithmeticError:  # e.g. margin of a quarter with no revenue
        return MISSING


def build_input(policy: CompiledPolicy, segment: Sequence[FactRow], history: Sequence[FactRow],
                period: Period, ratings: Mapping[str, tuple[Decimal, ...]] | None = None
                ) -> EmployeeInput:
    first = segment[0]
    months = tuple(r.month for r in segment)
    month_facts = tuple(rollup(policy, [r]) for r in segment)
    period_facts: tuple[Mapping[str, Any], ...] = ()
    year_facts: tuple[Mapping[str, Any] | None, ...] = ()
    if policy.needs_history:
        period_facts = _earlier_periods(policy, history, period)
        year_facts = _fiscal_years(policy, history, period)
    return EmployeeInput(
        employee=first.employee, name=first.name or "", role=first.role, team=first.team or "",
        months=months, facts=rollup(policy, segment), month_facts=month_facts,
        period_facts=period_facts, year_facts=year_facts,
        proration=_proration(policy, segment), ratings=ratings or {})


def _proration(policy: CompiledPolicy, segment: Sequence[FactRow]) -> Decimal:
    if policy.proration != "days":
        return Decimal(1)
    hired = segment[0].hired
    left = segment[-1].left
    first_year, first_month = map(int, segment[0].month.split("-"))
    last_year, last_month = map(int, segment[-1].month.split("-"))
    start, end = date(first_year, first_month, 1), _month_end(last_year, last_month)
    total = (end - start).days + 1
    worked_start = max(start, hired) if hired else start
    worked_end = min(end, left) if left else end
    worked = max(0, (worked_end - worked_start).days + 1)
    return Decimal(1) if worked == total else Decimal(worked) / Decimal(total)


def _earlier_periods(policy: CompiledPolicy, rows: Sequence[FactRow],
                     period: Period) -> tuple[Mapping[str, Any], ...]:
    """Each earlier period of the same length, oldest first (periods with no rows skipped)."""
    length = len(period.months)
    buckets: dict[int, list[FactRow]] = defaultdict(list)
    start_index = _month_index(period.months[0])
    for row in rows:
        index = _month_index(row.month)
        if index < start_index:
            buckets[(start_index - index - 1) // length].append(row)
    return tuple(rollup(policy, buckets[k]) for k in sorted(buckets, reverse=True))


def _fiscal_years(policy: CompiledPolicy, rows: Sequence[FactRow],
                  period: Period) -> tuple[Mapping[str, Any] | None, ...]:
    """Complete fiscal years before the one holding the period, oldest first; None for a
    year with no rows. The current, incomplete year neither counts nor breaks a run."""
    start = policy.fiscal_start

    def fiscal_year(month: str) -> int:
        year, number = map(int, month.split("-"))
        return year if number >= start else year - 1

    current = fiscal_year(period.months[0])
    buckets: dict[int, list[FactRow]] = defaultdict(list)
    for row in rows:
        year = fiscal_year(row.month)
        if year < current:
            buckets[year].append(row)
    if not buckets:
        return ()
    years = range(min(buckets), current)
    return tuple(rollup(policy, buckets[y]) if buckets.get(y) else None for y in years)


def _month_index(month: str) -> int:
    year, number = map(int, month.split("-"))
    return year * 12 + number - 1
