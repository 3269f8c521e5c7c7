"""A whole run: choose the policy for each employee, roll monthly facts up, evaluate everyone,
then apply the population rules.

    policies + facts file + period -> RunResult

An employee whose role changes inside the period is evaluated as one segment per role, on
that role's months; `hired` and `left` dates prorate amount rewards by days.
"""

from __future__ import annotations

import calendar
import multiprocessing
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from .compiler import compile_policy
from .diagnostics import Diagnostic, FindingsError, InputError, Location, Severity
from .evaluate import EmployeeInput, EmployeeResult, EvaluationError
from .expr import MISSING
from .facts import FactRow, FactsRead, read_facts
from .fast import evaluate as evaluate_employee  # compiled per role; with a trace, evaluate.py
from .model import CompiledPolicy, FactDecl
from .population import PoolContext, PopulationNote, apply_population
from .ratings import read_ratings
from .tables import Teams, read_keyed_facts, read_lines, read_teams
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
    to_date: str | None = None  # a period-to-date run stops after this month (YYYY-MM)

    @property
    def all_months(self) -> tuple[str, ...]:
        return months_between(self.start, self.end)

    @property
    def months(self) -> tuple[str, ...]:
        """The months evaluated: all of them, or those up to `to_date`."""
        months = self.all_months
        return months if self.to_date is None else tuple(m for m in months if m <= self.to_date)

    @property
    def title(self) -> str:
        if self.to_date is None:
            return self.label
        return f"{self.label} to date ({self.to_date}, {len(self.months)} of " \
               f"{len(self.all_months)} months)"


def to_date_period(month: str, kind: str | None) -> Period:
    """The period of `kind` (default quarter) holding `month` (YYYY-MM), cut after it."""
    if not _MONTH.fullmatch(month):
        raise InputError(f"--to-date '{month}' is not a month: write YYYY-MM, e.g. 2025-08")
    full = parse_period(f"{month}-01", kind)
    if kind == "month":
        return full
    return Period(full.label, full.kind, full.start, full.end, month)


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


def choose_policy(policies: Sequence[CompiledPolicy], role: str, period: Period,
                  ignore_effective: bool = False) -> CompiledPolicy | None:
    """The policy for the role whose effective range covers the period. With
    ignore_effective (a dry-run), any policy for the role: the one covering the period if
    there is one, else the latest to take effect."""
    candidates = [p for p in policies if role in p.roles]
    for policy in candidates:
        if covers(policy, period):
            return policy
    if ignore_effective and candidates:
        return max(candidates, key=lambda p: (p.effective_from, p.version))
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


@dataclass(frozen=True)
class RunInputs:
    """The files of a run. Only the facts are required."""

    facts: Path | FactsRead  # a file, or records already read (test cases)
    ratings: Path | None = None
    teams: Path | None = None
    team_facts: Path | None = None
    company_facts: Path | None = None
    lines: Path | None = None
    encoding: str | None = None
    expected_columns: tuple[str, ...] = ()  # read elsewhere (diff --by): not warned about


def _scoped_types(policies: Sequence[CompiledPolicy], scope: str) -> dict[str, str]:
    return {f.name: f.type for p in policies for f in p.facts
            if f.scope == scope and f.expression is None}


Progress = Callable[[int, int], None]  # (employees done, employees in all)


def run(policies: Sequence[CompiledPolicy], inputs: RunInputs, period_text: str, *,
        keep_going: bool = False, trace: bool = False,
        ignore_effective: bool = False, progress: Progress | None = None,
        to_date: str | None = None, workers: int = 1) -> RunResult:
    """Evaluate everyone in the facts file for the period (or, with to_date='2025-08', for
    the months of its period so far: progress against the period's targets to date).

    ignore_effective evaluates every employee under the policy for their role whatever its
    effective range (a dry-run of a new version on last quarter's facts).
    """
    kinds = {p.period for p in policies}
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    period = to_date_period(to_date, kind) if to_date else parse_period(period_text, kind)
    places = max(p.places for p in policies)
    encoding = inputs.encoding
    # only the period's months are stored, unless a policy looks back at earlier periods
    history = any(p.needs_history for p in policies)
    months_wanted = set(period.months)
    read = inputs.facts if isinstance(inputs.facts, FactsRead) else read_facts(
        inputs.facts, fact_types(policies), encoding=encoding, places=places,
        keep=None if history else months_wanted.__contains__)
    facts_source = read.rows[0].source if read.rows else str(inputs.facts)
    warnings: list[Diagnostic] = []
    ignored = [c for c in read.unknown_columns if c not in inputs.expected_columns]
    if ignored:
        warnings.append(Diagnostic(
            "W_FACTS_UNKNOWN_COLUMNS", Severity.WARNING, Location(facts_source, 1),
            "columns no policy declares were ignored: " + ", ".join(ignored),
            "remove them, or declare them as facts"))
    labels = {period.label, *period.months}
    ratings: Mapping[str, Mapping[str, tuple[Decimal, ...]]] = {}
    if inputs.ratings is not None:
        ratings = read_ratings(inputs.ratings, labels, rater_groups(policies),
                               encoding=encoding).by_employee
    teams = read_teams(inputs.teams, labels, encoding=encoding) if inputs.teams else None
    side: dict[str, dict[tuple[str, str], dict[str, Any]]] = {"team": {}, "company": {}}
    for scope, path in (("team", inputs.team_facts), ("company", inputs.company_facts)):
        if path is not None:
            side[scope], unknown = read_keyed_facts(
                path, "team" if scope == "team" else None, _scoped_types(policies, scope),
                encoding=encoding, places=places)
            if unknown:
                warnings.append(Diagnostic(
                    "W_FACTS_UNKNOWN_COLUMNS", Severity.WARNING, Location(str(path), 1),
                    "columns no policy declares were ignored: " + ", ".join(unknown),
                    f"remove them, or declare them as facts with scope: {scope}"))
    line_facts = {f.name for p in policies for f in p.facts if f.source == "lines"}
    lines = read_lines(inputs.lines, line_facts, set(period.months), encoding=encoding,
                       places=places) if inputs.lines is not None and line_facts else None
    context = _Context(teams, side["team"], side["company"], lines, line_facts)

    by_employee: dict[str, list[FactRow]] = defaultdict(list)
    for row in read.rows:
        by_employee[row.employee].append(row)
    if teams is not None:
        for team, members in teams.members.items():
            for member in members:
                if member.member not in by_employee:
                    raise InputError(
                        f"{teams.source}:{member.row}: E_TEAMS: {member.member} of team {team} "
                        "has no facts", [Diagnostic(
                            "E_TEAMS", Severity.ERROR, Location(teams.source, member.row),
                            f"{member.member} of team {team} has no fact records",
                            "add the member's facts, or remove the membership")])
    job = _Job(tuple(policies), by_employee, period, ratings, context, trace, keep_going,
               ignore_effective)
    employees = sorted(by_employee)
    results, items, errors = _evaluate_all(job, employees, workers, progress)
    if not results and not errors:
        raise InputError(f"{facts_source}: no records fall in {period.label}",
                         [Diagnostic("E_FACTS", Severity.ERROR, Location(facts_source),
                                     f"no records fall in period {period.label}",
                                     "check --period against the facts' period column")])
    pools = PoolContext(
        members=teams.members if teams else {},
        team_facts=lambda policy, team: _side_rollup(policy, context, team, period.months),
    )
    final, notes = apply_population(
        results, items, policies, lambda p, i: evaluate_employee(p, i, trace=trace), pools)
    return RunResult(period, tuple(policies), tuple(final), tuple(errors), tuple(warnings),
                     tuple(notes))


@dataclass(frozen=True)
class _Job:
    """Everything the per-employee stage needs, handed to worker processes by fork."""

    policies: tuple[CompiledPolicy, ...]
    by_employee: Mapping[str, list[FactRow]]
    period: Period
    ratings: Mapping[str, Mapping[str, tuple[Decimal, ...]]]
    context: _Context
    trace: bool
    keep_going: bool
    ignore_effective: bool


Evaluated = tuple[list[EmployeeResult], list[EmployeeInput], list[Diagnostic]]
_WORKER_JOB: list[_Job] = []  # set in each worker process by _start_worker, never in the parent
_CHUNK = 2000  # employees a worker takes at a time
_PARALLEL_FROM = 4000  # fewer employees than this are evaluated in one process


def _evaluate_chunk(job: _Job, employees: Sequence[str]) -> Evaluated:
    results: list[EmployeeResult] = []
    items: list[EmployeeInput] = []
    errors: list[Diagnostic] = []
    months = set(job.period.months)
    for employee in employees:
        rows = sorted(job.by_employee[employee], key=lambda r: r.month)
        current = [r for r in rows if r.month in months]
        for segment in _segments(current):
            policy = choose_policy(job.policies, segment[0].role, job.period,
                                   job.ignore_effective)
            try:
                if policy is None:
                    raise _no_policy(segment[0], job.period)
                item = build_input(policy, segment, rows, job.period,
                                   job.ratings.get(employee, {}), job.context)
                results.append(evaluate_employee(policy, item, trace=job.trace))
                items.append(item)
            except EvaluationError as error:
                if not job.keep_going:
                    raise
                errors.extend(error.diagnostics)
    return results, items, errors


def _start_worker(job: _Job) -> None:
    _WORKER_JOB.append(job)


def _work(employees: Sequence[str]) -> Evaluated | EvaluationError:
    try:
        return _evaluate_chunk(_WORKER_JOB[0], employees)
    except EvaluationError as error:
        return error


def _evaluate_all(job: _Job, employees: list[str], workers: int,
                  progress: Progress | None) -> Evaluated:
    """Every employee's own evaluation, in employee order; with workers > 1, in that many
    processes (forked, so the compiled policies need not be pickled). The output is the same
    byte for byte whatever the number of workers."""
    chunks = [employees[i:i + _CHUNK] for i in range(0, len(employees), _CHUNK)] or [[]]
    results: list[EmployeeResult] = []
    items: list[EmployeeInput] = []
    errors: list[Diagnostic] = []
    if workers > 1 and len(employees) >= _PARALLEL_FROM and "fork" in \
            multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, initializer=_start_worker, initargs=(job,)) as pool:
            outcomes = pool.imap(_work, chunks)
            for done, outcome in enumerate(outcomes):
                if isinstance(outcome, EvaluationError):
                    raise outcome
                results += outcome[0]
                items += outcome[1]
                errors += outcome[2]
                if progress is not None:
                    progress(min((done + 1) * _CHUNK, len(employees)), len(employees))
        return results, items, errors
    for done, chunk in enumerate(chunks):
        if progress is not None:
            progress(done * _CHUNK, len(employees))
        outcome = _evaluate_chunk(job, chunk)
        results += outcome[0]
        items += outcome[1]
        errors += outcome[2]
    if progress is not None:
        progress(len(employees), len(employees))
    return results, items, errors


@dataclass(frozen=True)
class _Context:
    """The side tables, as looked up while building each employee's input."""

    teams: Teams | None
    team_facts: Mapping[tuple[str, str], Mapping[str, Any]]
    company_facts: Mapping[tuple[str, str], Mapping[str, Any]]
    lines: Mapping[tuple[str, str, str], Decimal] | None
    line_facts: set[str]

    def team_of(self, row: FactRow) -> str:
        if self.teams is not None and row.employee in self.teams.team_of:
            return self.teams.team_of[row.employee]
        return row.team or ""

    def record(self, row: FactRow, team: str) -> dict[str, Any]:
        """A month's facts: the row's, its team's, the company's, and the lines' sums."""
        values = dict(row.values)
        values.update(self.team_facts.get((team, row.month), {}))
        values.update(self.company_facts.get(("", row.month), {}))
        if self.lines is not None:
            for fact in self.line_facts:
                values[fact] = self.lines.get((row.employee, row.month, fact), Decimal(0))
        return values


def _side_rollup(policy: CompiledPolicy, context: _Context, team: str,
                 months: Sequence[str]) -> dict[str, Any]:
    """A team's facts (and the company's) rolled up over the period, for its pool."""
    records = []
    for month in months:
        values = dict(context.team_facts.get((team, month), {}))
        values.update(context.company_facts.get(("", month), {}))
        records.append(values)
    return rollup(policy, records)


def _no_policy(row: FactRow, period: Period) -> EvaluationError:
    diagnostic = Diagnostic(
        "E_EVAL_NO_POLICY", Severity.ERROR, Location(row.source, row.row),
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


def rollup(policy: CompiledPolicy, records: Sequence[Mapping[str, Any]],
           only: frozenset[str] | None = None) -> dict[str, Any]:
    """Roll monthly records up into one as each fact declares; defaults fill the gaps.
    `only` limits it to some facts (those an earlier period is read for)."""
    values: dict[str, Any] = {}
    for fact in policy.facts:
        if only is not None and fact.name not in only:
            continue
        if fact.expression is not None:
            values[fact.name] = _rollup_expression(fact, values)
        else:
            present = [r[fact.name] for r in records if fact.name in r]
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
                period: Period, ratings: Mapping[str, tuple[Decimal, ...]] | None = None,
                context: _Context | None = None) -> EmployeeInput:
    context = context or _Context(None, {}, {}, None, set())
    first = segment[0]
    team = context.team_of(first)
    records = [context.record(r, team) for r in segment]
    month_facts = tuple(rollup(policy, [r]) for r in records) if policy.uses_months else ()
    period_facts: tuple[Mapping[str, Any], ...] = ()
    year_facts: tuple[Mapping[str, Any] | None, ...] = ()
    if policy.needs_history:
        past = [(r.month, context.record(r, context.team_of(r))) for r in history]
        if policy.uses_periods:
            period_facts = _earlier_periods(policy, past, period)
        if policy.uses_years:
            year_facts = _fiscal_years(policy, past, period)
    return EmployeeInput(
        employee=first.employee, name=first.name or "", role=first.role, team=team,
        months=tuple(r.month for r in segment), facts=rollup(policy, records),
        month_facts=month_facts, period_facts=period_facts, year_facts=year_facts,
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


def _earlier_periods(policy: CompiledPolicy, rows: Sequence[tuple[str, Mapping[str, Any]]],
                     period: Period) -> tuple[Mapping[str, Any], ...]:
    """Each earlier period of the same length, oldest first (periods with no rows skipped)."""
    length = len(period.months)
    buckets: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    start_index = _month_index(period.months[0])
    for month, record in rows:
        index = _month_index(month)
        if index < start_index:
            buckets[(start_index - index - 1) // length].append(record)
    return tuple(rollup(policy, buckets[k], policy.history_facts)
                 for k in sorted(buckets, reverse=True))


def _fiscal_years(policy: CompiledPolicy, rows: Sequence[tuple[str, Mapping[str, Any]]],
                  period: Period) -> tuple[Mapping[str, Any] | None, ...]:
    """Complete fiscal years before the one holding the period, oldest first; None for a
    year with no rows. The current, incomplete year neither counts nor breaks a run."""
    start = policy.fiscal_start

    def fiscal_year(month: str) -> int:
        year, number = map(int, month.split("-"))
        return year if number >= start else year - 1

    current = fiscal_year(period.months[0])
    buckets: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for month, record in rows:
        year = fiscal_year(month)
        if year < current:
            buckets[year].append(record)
    if not buckets:
        return ()
    years = range(min(buckets), current)
    return tuple(rollup(policy, buckets[y], policy.history_facts) if buckets.get(y) else None
                 for y in years)


def _month_index(month: str) -> int:
    year, number = map(int, month.split("-"))
    return year * 12 + number - 1
