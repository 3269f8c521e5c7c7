"""A whole run: choose the policy for each employee, roll monthly facts up, evaluate everyone,
then apply the population rules.

    policies + files + period -> prepare -> Prepared -> run -> RunResult

An employee whose role changes inside the period is evaluated as one segment per role, on
that role's months; `hired` and `left` dates prorate amount rewards by days.

prepare() reads what the policies use of the files (facts.MonthPlan: the period's records, and
earlier months' looked-back facts only when a policy reads earlier periods or years), once:
run() of any subset of those policies takes it without reading again (a diff's two versions),
and segment_inputs() builds one employee's inputs again (to trace one result). A run given the
files themselves forgets each employee's records once evaluated, so it holds its results, not
its facts as well. Inputs are built from the compact records exactly as from every row kept as
a dict (tests/test_run.py holds them to that, repr for repr).
"""

from __future__ import annotations

import calendar
import multiprocessing
import re
import weakref
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from typing import Any, cast, overload

from .compiler import compile_policy
from .diagnostics import Diagnostic, FindingsError, InputError, Location, Severity
from .evaluate import ONE, EmployeeInput, EmployeeResult, EvaluationError
from .expr import MISSING
from .facts import (
    Decode,
    EmployeeFacts,
    FactsRead,
    FactsTable,
    MonthPlan,
    NotGrouped,
    Record,
    month_index,
    plan_records,
    scan_facts,
)
from .fast import evaluate as evaluate_employee  # compiled per role; with a trace, evaluate.py
from .model import CompiledPolicy, Expr
from .population import PoolContext, PopulationNote, apply_population
from .ratings import read_ratings
from .tables import Teams, Through, read_keyed_facts, read_lines, read_teams
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

    @cached_property
    def all_months(self) -> tuple[str, ...]:
        return months_between(self.start, self.end)

    @cached_property
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


def history_facts(policies: Sequence[CompiledPolicy], types: Mapping[str, str]
                  ) -> tuple[str, ...] | None:
    """The fact columns earlier months are read for (None when no policy looks back): those a
    policy that reads earlier periods or years rolls up, except facts it computes with a
    rollup expression (recomputed from their parts)."""
    if not any(p.needs_history for p in policies):
        return None
    names = {f.name for p in policies if p.needs_history for f in p.facts
             if (p.history_facts is None or f.name in p.history_facts)
             and f.expression is None and f.name in types}
    return tuple(sorted(names))


@dataclass(frozen=True)
class _Needs:
    """What a set of policies needs read: each part is compared when a Prepared is reused."""

    period: Period
    places: int
    types: Mapping[str, str]  # employee facts: the columns of the facts file read
    plan: MonthPlan
    groups: Mapping[str, tuple[Decimal, Decimal]]  # rater groups and their scales
    team_types: Mapping[str, str]
    company_types: Mapping[str, str]
    line_facts: frozenset[str]
    history: bool  # a policy looks back: a team member with records only outside the period
    # still has facts
    side_months: set[str] | None  # the months of team and company facts read (None: all)
    lines_back: bool = False  # lines of earlier months read too (a policy looks back at one)


def _needs(policies: Sequence[CompiledPolicy], inputs: RunInputs, period_text: str,
           to_date: str | None) -> _Needs:
    kinds = {p.period for p in policies}
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    period = to_date_period(to_date, kind) if to_date else parse_period(period_text, kind)
    types = fact_types(policies)
    team_types = _scoped_types(policies, "team")
    history = history_facts(policies, types)
    plan = MonthPlan(frozenset(period.months), history,
                     history is not None and inputs.team_facts is not None and bool(team_types))
    company_types = _scoped_types(policies, "company")
    # earlier months of team and company facts only for a policy looking back at one of them
    looked_back = {name for p in policies if p.needs_history
                   for name in (p.history_facts or {f.name for f in p.facts})}
    side_months = None if looked_back & ({*team_types, *company_types}) else set(period.months)
    line_facts = frozenset(f.name for p in policies for f in p.facts if f.source == "lines")
    return _Needs(period, max(p.places for p in policies), types, plan, rater_groups(policies),
                  team_types, company_types, line_facts, history is not None, side_months,
                  bool(looked_back & line_facts))


@dataclass(frozen=True)
class Prepared:
    """A run's input files read and checked once (see prepare), ready to be evaluated under
    the policies they were read for, or any of them (a diff's two versions)."""

    policies: tuple[CompiledPolicy, ...]
    inputs: RunInputs
    period_text: str
    to_date: str | None
    needs: _Needs
    facts: FactsTable
    facts_source: str  # the facts file, as named in messages
    ratings: dict[str, Mapping[str, tuple[Decimal, ...]]]
    teams: Teams | None
    team_facts: tuple[Mapping[tuple[str, str], Mapping[str, Any]], tuple[str, ...]]
    company_facts: tuple[Mapping[tuple[str, str], Mapping[str, Any]], tuple[str, ...]]
    lines: dict[tuple[str, str, str], Decimal] | None
    # what other policy sets read differently, read once (see _derived)
    derived: dict[tuple[tuple[int, ...], str, str | None], Prepared] = field(
        default_factory=dict, repr=False, compare=False)
    # segment_inputs' per-employee stage of each policy set, made once
    jobs: dict[tuple[tuple[int, ...], bool], _Job] = field(
        default_factory=dict, repr=False, compare=False)

    @property
    def period(self) -> Period:
        return self.needs.period


def prepare(policies: Sequence[CompiledPolicy], inputs: RunInputs, period_text: str, *,
            to_date: str | None = None) -> Prepared:
    """Read and check the input files of a run once, for evaluating `policies` or any subset
    of them: `run(subset, prepared, period_text)` reads nothing again when the subset needs
    what was read (the same period, fact types, rater groups, team, company and line facts;
    the facts file and earlier months read for more facts than it uses is fine), and reads
    again only the files whose reading would differ. A diff prepares both versions together:
    the facts file is then checked for the columns of both, and the first problem of either
    stops it."""
    return _prepare(tuple(policies), inputs, period_text, to_date, None)


def _prepare(policies: tuple[CompiledPolicy, ...], inputs: RunInputs, period_text: str,
             to_date: str | None, earlier: Prepared | None, stream: _Stream | None = None
             ) -> Prepared:
    """Read the inputs for `policies`, taking from `earlier` what it read the same way; with
    `stream`, a CSV or XLSX facts file is streamed into it (see scan_facts)."""
    needs = _needs(policies, inputs, period_text, to_date)
    had = earlier.needs if earlier is not None else None
    period, places, encoding = needs.period, needs.places, inputs.encoding
    same_period = had is not None and had.period == period
    labels = {period.label, *period.months}
    ratings: dict[str, Mapping[str, tuple[Decimal, ...]]] = {}
    if earlier is not None and had is not None and same_period and had.groups == needs.groups:
        ratings = earlier.ratings
    elif inputs.ratings is not None:
        ratings = read_ratings(inputs.ratings, labels, needs.groups,
                               encoding=encoding).by_employee
    if earlier is not None and same_period:
        teams = earlier.teams
    else:
        teams = read_teams(inputs.teams, labels, encoding=encoding) if inputs.teams else None
    side: dict[str, tuple[Mapping[tuple[str, str], Mapping[str, Any]], tuple[str, ...]]] = {}
    for scope, path, types in (("team", inputs.team_facts, needs.team_types),
                               ("company", inputs.company_facts, needs.company_types)):
        kept = None if earlier is None or had is None or places != had.places or not (
            had.side_months is None or had.side_months == needs.side_months) else \
            earlier.team_facts if scope == "team" and had.team_types == types else \
            earlier.company_facts if scope == "company" and had.company_types == types else \
            None
        if kept is not None:
            side[scope] = kept
        elif path is not None:
            side[scope] = read_keyed_facts(path, "team" if scope == "team" else None, types,
                                           encoding=encoding, places=places,
                                           months=needs.side_months)
        else:
            side[scope] = ({}, ())
    lines: dict[tuple[str, str, str], Decimal] | None = None
    if inputs.lines is not None and needs.line_facts:
        if earlier is not None and had is not None and same_period and \
                places == had.places and had.line_facts == needs.line_facts and \
                had.lines_back == needs.lines_back:
            lines = earlier.lines
        else:
            months: Container[str | None] = Through(period.months[-1]) if needs.lines_back \
                else set(period.months)
            lines = read_lines(inputs.lines, set(needs.line_facts), months, encoding=encoding,
                               places=places)
    # The facts last: a run streaming them evaluates each employee as their rows are read,
    # with the other files at hand.
    read = inputs.facts
    facts_source = read.rows[0].source if isinstance(read, FactsRead) and read.rows \
        else str(read)
    if stream is not None:
        stream.start(needs, ratings, teams, side["team"][0], side["company"][0], lines,
                     facts_source)
    if earlier is not None and had is not None and same_period and places == had.places \
            and _covers(had, needs):
        facts, facts_source = earlier.facts, earlier.facts_source
    elif isinstance(read, FactsRead):
        facts = plan_records(read, needs.plan)
    else:
        facts = scan_facts(read, needs.types, needs.plan, encoding=encoding, places=places,
                           complete=stream)
    return Prepared(policies, inputs, period_text, to_date, needs, facts, facts_source,
                    ratings, teams, side["team"], side["company"], lines)


def _covers(had: _Needs, needs: _Needs) -> bool:
    """Whether facts read for `had` hold everything `needs` reads, read the same way."""
    if any(had.types.get(name) != kind for name, kind in needs.types.items()):
        return False
    if needs.plan.history is None:
        return True
    return had.plan.history is not None and set(needs.plan.history) <= set(had.plan.history) \
        and had.plan.history_team >= needs.plan.history_team


Progress = Callable[[int, int], None]  # (employees done, employees in all)


Evaluator = Callable[[CompiledPolicy, EmployeeInput, bool], EmployeeResult]  # trace or not


def run(policies: Sequence[CompiledPolicy], inputs: RunInputs | Prepared, period_text: str, *,
        keep_going: bool = False, trace: bool = False,
        ignore_effective: bool = False, progress: Progress | None = None,
        to_date: str | None = None, workers: int = 1,
        evaluator: Evaluator | None = None) -> RunResult:
    """Evaluate everyone in the facts file for the period (or, with to_date='2025-08', for
    the months of its period so far: progress against the period's targets to date).

    `inputs` are the files, or what prepare() read of them (only what these policies read
    differently is read again). ignore_effective evaluates every employee under the policy
    for their role whatever its effective range (a dry-run of a new version on last quarter's
    facts). `evaluator(policy, input, trace)` evaluates each segment, in the population stage
    too (default: evaluate_employee).
    """
    policies = tuple(policies)
    stream = None
    if isinstance(inputs, Prepared):
        prepared = _derived(inputs, policies, period_text, to_date)
    else:
        # One process: each employee is evaluated as soon as their rows are read (when the
        # facts file is grouped by employee; else it is read again, whole).
        stream = _Stream((policies,), trace, keep_going, ignore_effective, evaluator,
                         progress) if workers == 1 else None
        try:
            prepared = _prepare(policies, inputs, period_text, to_date, None, stream)
        except NotGrouped:
            stream = None
            prepared = _prepare(policies, inputs, period_text, to_date, None)
    if stream is not None:
        (job, results, keys, errors), = stream.evaluated(prepared)
    else:
        owned = not isinstance(inputs, Prepared)  # no one else reads these files' contents
        job = _job(prepared, policies, trace, keep_going, ignore_effective, owned, evaluator)
        evaluated = sorted(e for e, entry in job.employees.items() if entry.records)
        results, keys, errors = _evaluate_all(job, evaluated, workers, progress)
    return _finish(policies, prepared, job, results, keys, errors)


Each = Callable[[str, list[list[tuple[CompiledPolicy, EmployeeInput, EmployeeResult]]], bool],
                None]


def stream_runs(policy_sets: Sequence[Sequence[CompiledPolicy]], inputs: RunInputs,
                period_text: str, *, keep_going: bool = False, ignore_effective: bool = False,
                evaluator: Evaluator | None = None, each: Each | None = None
                ) -> tuple[Prepared, list[RunResult]] | None:
    """A run of each policy set (a diff's two versions) from one reading of the files, each
    employee evaluated under every set as soon as their rows are read (see run).
    `each(employee, found, kept)` is called then with each set's (policy, input, result) of
    the employee's segments, before the employee's rows are dropped (`kept`: they are not,
    a set's population stage evaluates them again). The Prepared holds the rows kept.

    None when the sets would not read the other files alike (say, different rater groups),
    and NotGrouped when the facts are not grouped by employee: run each set on prepare()."""
    sets = [tuple(policies) for policies in policy_sets]
    union = tuple({id(p): p for policies in sets for p in policies}.values())
    needs = _needs(union, inputs, period_text, None)
    for policies in sets:
        own = _needs(policies, inputs, period_text, None)
        if not _covers(needs, own) or (own.places, own.groups, own.team_types,
                                       own.company_types, own.line_facts, own.lines_back,
                                       own.side_months) != (
                needs.places, needs.groups, needs.team_types, needs.company_types,
                needs.line_facts, needs.lines_back, needs.side_months):
            return None
    stream = _Stream(tuple(sets), False, keep_going, ignore_effective, evaluator, None, each)
    prepared = _prepare(union, inputs, period_text, None, None, stream)
    return prepared, [_finish(policies, prepared, job, results, keys, errors)
                      for policies, (job, results, keys, errors)
                      in zip(sets, stream.evaluated(prepared), strict=True)]


def _finish(policies: tuple[CompiledPolicy, ...], prepared: Prepared, job: _Job,
            results: list[EmployeeResult], keys: list[Key], errors: list[Diagnostic]
            ) -> RunResult:
    """The population stage of a run whose employees are evaluated."""
    period = prepared.period
    if not results and not errors:
        source = prepared.facts_source
        raise InputError(f"{source}: no records fall in {period.label}",
                         [Diagnostic("E_FACTS", Severity.ERROR, Location(source),
                                     f"no records fall in period {period.label}",
                                     "check --period against the facts' period column")])
    teams, context = prepared.teams, job.context
    pools = PoolContext(
        members=teams.members if teams else {},
        team_facts=lambda policy, team: _side_rollup(policy, context, team, period.months),
    )
    final, notes = apply_population(results, _Inputs(job, keys), policies, job.evaluate, pools)
    return RunResult(period, policies, tuple(final), tuple(errors), _warnings(prepared),
                     tuple(notes))


def segment_inputs(policies: Sequence[CompiledPolicy], prepared: Prepared, period_text: str,
                   employee: str, *, to_date: str | None = None, ignore_effective: bool = False
                   ) -> list[tuple[CompiledPolicy, EmployeeInput]]:
    """The policy and input of each of `employee`'s role segments, in month order, as
    run(policies, prepared, period_text, ...) with the same options builds them (to evaluate
    one result again, e.g. with a trace); a segment no policy covers is left out."""
    policies = tuple(policies)
    derived = _derived(prepared, policies, period_text, to_date)
    key = (tuple(map(id, policies)), ignore_effective)
    job = derived.jobs.get(key)
    if job is None or job.policies != policies:
        job = derived.jobs[key] = _job(derived, policies, False, True, ignore_effective, False,
                                       None, check=False)
    found = []
    for segment in job.segments(employee) if employee in job.employees else []:
        try:
            found.append(job.build(employee, segment))
        except EvaluationError:
            continue
    return found


def _derived(prepared: Prepared, policies: tuple[CompiledPolicy, ...], period_text: str,
             to_date: str | None) -> Prepared:
    """What `prepared` holds for `policies`, with what they read differently read again
    (once: kept in `prepared` for the next run or segment_inputs of the same policies)."""
    key = (tuple(map(id, policies)), period_text, to_date)
    known = prepared.derived.get(key)
    if known is None or known.policies != policies:
        known = prepared.derived[key] = _prepare(policies, prepared.inputs, period_text,
                                                 to_date, prepared)
    return known


def _warnings(prepared: Prepared) -> tuple[Diagnostic, ...]:
    """The columns of the facts, team and company files no policy declares."""
    warnings: list[Diagnostic] = []
    ignored = [c for c in prepared.facts.unknown_columns(prepared.needs.types)
               if c not in prepared.inputs.expected_columns]
    if ignored:
        warnings.append(Diagnostic(
            "W_FACTS_UNKNOWN_COLUMNS", Severity.WARNING, Location(prepared.facts_source, 1),
            "columns no policy declares were ignored: " + ", ".join(ignored),
            "remove them, or declare them as facts"))
    for scope, path, (_, unknown) in (
            ("team", prepared.inputs.team_facts, prepared.team_facts),
            ("company", prepared.inputs.company_facts, prepared.company_facts)):
        if unknown:
            warnings.append(Diagnostic(
                "W_FACTS_UNKNOWN_COLUMNS", Severity.WARNING, Location(str(path), 1),
                "columns no policy declares were ignored: " + ", ".join(unknown),
                f"remove them, or declare them as facts with scope: {scope}"))
    return tuple(warnings)


def _job(prepared: Prepared, policies: tuple[CompiledPolicy, ...], trace: bool,
         keep_going: bool, ignore_effective: bool, release: bool,
         evaluator: Evaluator | None, *, check: bool = True) -> _Job:
    """The per-employee stage of a run of `policies` on `prepared` (prepared for them), after
    checking (with `check`) that every team member has facts."""
    facts, history = prepared.facts, prepared.needs.history
    if check:
        def has_facts(member: str) -> bool:
            entry = facts.employees.get(member)
            return entry is not None and bool(entry.records or history)

        _check_teams(prepared.teams, has_facts)
    return _new_job(policies, prepared.needs, facts.employees,
                    facts.plan or MonthPlan(frozenset(prepared.period.months)),
                    prepared.facts_source, facts.decode, prepared.ratings, prepared.teams,
                    prepared.team_facts[0], prepared.company_facts[0], prepared.lines, trace,
                    keep_going, ignore_effective, release, evaluator)


def _check_teams(teams: Teams | None, has_facts: Callable[[str], bool]) -> None:
    """Every team member has facts (records in the period, or earlier ones a policy reads)."""
    if teams is None:
        return
    for team, members in teams.members.items():
        for member in members:
            if not has_facts(member.member):
                raise InputError(
                    f"{teams.source}:{member.row}: E_TEAMS: {member.member} of team {team} "
                    "has no facts", [Diagnostic(
                        "E_TEAMS", Severity.ERROR, Location(teams.source, member.row),
                        f"{member.member} of team {team} has no fact records",
                        "add the member's facts, or remove the membership")])


def _new_job(policies: tuple[CompiledPolicy, ...], needs: _Needs,
             employees: dict[str, EmployeeFacts], plan: MonthPlan, source: str,
             decode: Decode, ratings: dict[str, Mapping[str, tuple[Decimal, ...]]],
             teams: Teams | None, team_facts: Mapping[tuple[str, str], Mapping[str, Any]],
             company_facts: Mapping[tuple[str, str], Mapping[str, Any]],
             lines: dict[tuple[str, str, str], Decimal] | None, trace: bool, keep_going: bool,
             ignore_effective: bool, release: bool, evaluator: Evaluator | None) -> _Job:
    line_facts = set(needs.line_facts) if lines is not None else set()
    context = _Context(teams, team_facts, company_facts, lines, line_facts)
    # Evaluated again in the population stage: the results of a policy capping its tiers'
    # distribution (the others' inputs are forgotten once evaluated, when no one else reads
    # these files: a run's memory then holds its results, not its facts as well).
    again = frozenset(id(p) for p in policies if p.tiers is not None and p.tiers.distribution
                      is not None and p.tiers.distribution.mode != "advisory")
    return _Job(policies, employees, plan, source, needs.period, ratings, context, trace,
                keep_going, ignore_effective, decode, release, again, evaluator)


def _shrink(table: dict[Any, Any] | None) -> None:
    if table is not None:
        left = dict(table)
        table.clear()
        table.update(left)


class _Stream:
    """The per-employee stage of runs of one or more policy sets, done while the facts file is
    read (scan_facts' `complete`): each employee is evaluated under every set once their rows
    are all read, then their rows, ratings and lines' sums are dropped. A run's memory then
    holds its results and the employee being read, not every employee's facts as well. An
    employee who cannot be evaluated is kept for the end: a problem in the files (a bad cell
    further down, a team member with no facts) is reported first, as when every file is read
    before anyone is evaluated. Facts read whole (JSON) are evaluated the same way, in
    employee order, once read."""

    def __init__(self, sets: tuple[tuple[CompiledPolicy, ...], ...], trace: bool,
                 keep_going: bool, ignore_effective: bool, evaluator: Evaluator | None,
                 progress: Progress | None, each: Each | None = None) -> None:
        self.sets, self.trace, self.keep_going = sets, trace, keep_going
        self.ignore_effective, self.evaluator = ignore_effective, evaluator
        self.progress, self.each = progress, each
        self.completed: set[str] = set()
        self.absent: set[str] = set()  # employees read with no facts (see _check_teams)
        # for each set: its job, results, their segments, and the employees that failed
        self.jobs: list[_Job] = []
        self.results: list[list[EmployeeResult]] = [[] for _ in sets]
        self.keys: list[list[Key]] = [[] for _ in sets]
        self.failures: list[list[tuple[Key, EvaluationError]]] = [[] for _ in sets]
        self.side: tuple[Any, ...] = ()

    def start(self, needs: _Needs, ratings: dict[str, Mapping[str, tuple[Decimal, ...]]],
              teams: Teams | None, team_facts: Mapping[tuple[str, str], Mapping[str, Any]],
              company_facts: Mapping[tuple[str, str], Mapping[str, Any]],
              lines: dict[tuple[str, str, str], Decimal] | None, source: str) -> None:
        """The other files, read: the facts are read next."""
        self.side = (needs, ratings, teams, team_facts, company_facts, lines, source)

    def __call__(self, employee: str, employees: dict[str, EmployeeFacts], decode: Decode
                 ) -> None:
        if not self.jobs:
            needs, ratings, teams, team_facts, company_facts, lines, source = self.side
            self.jobs = [_new_job(policies, needs, employees, needs.plan, source, decode,
                                  ratings, teams, team_facts, company_facts, lines, self.trace,
                                  self.keep_going, self.ignore_effective, True, self.evaluator)
                         for policies in self.sets]
        self.completed.add(employee)
        entry = employees[employee]
        if not (entry.records or self.jobs[0].plan.history is not None):
            self.absent.add(employee)
        again = False
        found: list[list[tuple[CompiledPolicy, EmployeeInput, EmployeeResult]]] = []
        for job, results, keys, failures in zip(self.jobs, self.results, self.keys,
                                                self.failures, strict=True):
            found.append([])
            for number, segment in enumerate(job.segments(employee)):
                try:
                    policy, item = job.build(employee, segment)
                    again = again or id(policy) in job.again
                    result = job.evaluate(policy, item)
                except EvaluationError as error:
                    failures.append(((employee, number), error))
                    continue
                results.append(result)
                keys.append((employee, number))
                found[-1].append((policy, item, result))
        if self.each is not None:
            self.each(employee, found, again)
        if not again:
            self.jobs[0].forget((employee,))  # the sets share the rows and side tables
        if self.progress is not None and len(self.completed) % _CHUNK == 0:
            self.progress(len(self.completed), 0)

    def evaluated(self, prepared: Prepared) -> list[tuple[_Job, list[EmployeeResult],
                                                          list[Key], list[Diagnostic]]]:
        """Once the files are read: each set's job, results in employee order, their
        segments, and errors (the first raised, unless keep_going)."""
        facts = prepared.facts
        if not self.jobs:  # read whole (JSON, records): evaluated now, in employee order
            for employee in sorted(facts.employees):
                self(employee, facts.employees, facts.decode)
        if self.progress is not None:
            self.progress(len(self.completed), len(self.completed))
        _check_teams(prepared.teams, lambda member: member in self.completed and
                     member not in self.absent)
        if self.jobs:  # a dict keeps its size once emptied: shrink what is left
            _shrink(self.jobs[0].ratings)
            _shrink(self.jobs[0].context.lines)
        done = []
        for index, job in enumerate(self.jobs):
            failures = sorted(self.failures[index], key=itemgetter(0))
            if failures and not self.keep_going:
                raise failures[0][1]
            results, keys = self.results[index], self.keys[index]
            order = sorted(range(len(keys)), key=keys.__getitem__)
            errors = [d for _, error in failures for d in error.diagnostics]
            done.append((job, [results[i] for i in order], [keys[i] for i in order], errors))
            # the population stage replaces results: hold none
            self.results[index], self.keys[index] = [], []
        if not done:  # no one to evaluate
            done = [(_job(prepared, policies, self.trace, self.keep_going,
                          self.ignore_effective, True, self.evaluator), [], [], [])
                    for policies in self.sets]
        return done


def _evaluate(policy: CompiledPolicy, item: EmployeeInput, trace: bool) -> EmployeeResult:
    return evaluate_employee(policy, item, trace=trace)  # the module's name, looked up now


@dataclass(frozen=True)
class _Job:
    """Everything the per-employee stage needs, handed to worker processes by fork."""

    policies: tuple[CompiledPolicy, ...]
    employees: dict[str, EmployeeFacts]
    plan: MonthPlan  # how the history of `employees` is laid out
    source: str  # the facts file
    period: Period
    ratings: dict[str, Mapping[str, tuple[Decimal, ...]]]
    context: _Context
    trace: bool
    keep_going: bool
    ignore_effective: bool
    decode: Decode  # a record's cells -> its facts (FactsTable.decode)
    release: bool  # the inputs are this run's own: forget each employee's once evaluated
    again: frozenset[int]  # ids of the policies whose results may be evaluated again
    evaluator: Evaluator | None

    def evaluate(self, policy: CompiledPolicy, item: EmployeeInput) -> EmployeeResult:
        return (self.evaluator or _evaluate)(policy, item, self.trace)

    def forget(self, employees: Iterable[str]) -> None:
        """Drop what only these employees' evaluation read: their records, ratings and
        lines' sums."""
        lines, line_facts = self.context.lines, self.context.line_facts
        for employee in employees:
            entry = self.employees.pop(employee)
            self.ratings.pop(employee, None)
            if lines is not None:
                for record in entry.records:
                    for fact in line_facts:
                        lines.pop((employee, record.month, fact), None)

    def segments(self, employee: str) -> list[list[Record]]:
        """The employee's role segments in the period, in month order."""
        return _segments(sorted(self.employees[employee].records, key=_MONTH_OF))

    def build(self, employee: str, segment: Sequence[Record]) -> tuple[CompiledPolicy,
                                                                         EmployeeInput]:
        """The policy of a segment and its input; EvaluationError when no policy covers it."""
        policy = choose_policy(self.policies, segment[0].role, self.period,
                               self.ignore_effective)
        if policy is None:
            raise _no_policy(employee, segment[0], self.source, self.period)
        return policy, build_input(policy, employee, segment, self.period, self.decode,
                                   self.ratings.get(employee, {}), self.context,
                                   self.employees[employee], self.plan)


_MONTH_OF = itemgetter(0)  # Record.month
Key = tuple[str, int]  # an evaluated segment: the employee and the segment's index
# results, their segments, errors, and the employees no one will evaluate again
Evaluated = tuple[list[EmployeeResult], list[Key], list[Diagnostic], list[str]]
_WORKER_JOB: list[_Job] = []  # set in each worker process by _start_worker, never in the parent
_CHUNK = 2000  # employees a worker takes at a time
_PARALLEL_FROM = 4000  # fewer employees than this are evaluated in one process


def _evaluate_chunk(job: _Job, employees: Sequence[str]) -> Evaluated:
    results: list[EmployeeResult] = []
    keys: list[Key] = []
    errors: list[Diagnostic] = []
    done: list[str] = []
    for employee in employees:
        again = False
        for number, segment in enumerate(job.segments(employee)):
            try:
                policy, item = job.build(employee, segment)
                again = again or id(policy) in job.again
                results.append(job.evaluate(policy, item))
                keys.append((employee, number))
            except EvaluationError as error:
                if not job.keep_going:
                    raise
                errors.extend(error.diagnostics)
        if not again:
            done.append(employee)
    return results, keys, errors, done


class _Inputs(Sequence[EmployeeInput]):
    """The input of each evaluated segment, built again when the population stage asks for
    it (a distribution cap evaluates a few employees again): keeping every input until then
    would hold every employee's facts twice."""

    def __init__(self, job: _Job, keys: Sequence[Key]) -> None:
        self.job, self.keys = job, keys

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> EmployeeInput: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[EmployeeInput]: ...

    def __getitem__(self, index: int | slice) -> EmployeeInput | Sequence[EmployeeInput]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        employee, number = self.keys[index]
        return self.job.build(employee, self.job.segments(employee)[number])[1]


def _start_worker(job: _Job) -> None:
    _WORKER_JOB.append(job)


def _work(employees: Sequence[str]) -> Evaluated | EvaluationError:
    try:
        return _evaluate_chunk(_WORKER_JOB[0], employees)
    except EvaluationError as error:
        return error


def _evaluate_all(job: _Job, employees: list[str], workers: int,
                  progress: Progress | None) -> tuple[list[EmployeeResult], list[Key],
                                                      list[Diagnostic]]:
    """Every employee's own evaluation, in employee order; with workers > 1, in that many
    processes (forked, so the compiled policies and the facts need not be pickled; only the
    results come back). The output is the same byte for byte whatever the number of
    workers."""
    chunks = [employees[i:i + _CHUNK] for i in range(0, len(employees), _CHUNK)] or [[]]
    results: list[EmployeeResult] = []
    keys: list[Key] = []
    errors: list[Diagnostic] = []

    def add(outcome: Evaluated) -> None:
        results.extend(outcome[0])
        keys.extend(outcome[1])
        errors.extend(outcome[2])
        if job.release:
            job.forget(outcome[3])

    if workers > 1 and len(employees) >= _PARALLEL_FROM and "fork" in \
            multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, initializer=_start_worker, initargs=(job,)) as pool:
            outcomes = pool.imap(_work, chunks)
            for done, outcome in enumerate(outcomes):
                if isinstance(outcome, EvaluationError):
                    raise outcome
                add(outcome)
                if progress is not None:
                    progress(min((done + 1) * _CHUNK, len(employees)), len(employees))
        return results, keys, errors
    for done, chunk in enumerate(chunks):
        if progress is not None:
            progress(done * _CHUNK, len(employees))
        add(_evaluate_chunk(job, chunk))
    if progress is not None:
        progress(len(employees), len(employees))
    return results, keys, errors


_ZERO = Decimal(0)


@dataclass(frozen=True)
class _Context:
    """The side tables, as looked up while building each employee's input."""

    teams: Teams | None
    team_facts: Mapping[tuple[str, str], Mapping[str, Any]]
    company_facts: Mapping[tuple[str, str], Mapping[str, Any]]
    lines: dict[tuple[str, str, str], Decimal] | None
    line_facts: set[str]
    # id of a policy of the run -> wanted(policy) (the run's policies outlive its context)
    wanted_by: dict[int, frozenset[str]] = field(default_factory=dict, repr=False,
                                                 compare=False)
    # a segment's months -> the one tuple of them that inputs and results share
    months: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict, repr=False,
                                                           compare=False)

    def wanted(self, policy: CompiledPolicy) -> frozenset[str]:
        """The facts of a record the policy's rollups read: its facts, but those it computes
        (rollup expressions) and those the lines' sums always replace."""
        found = self.wanted_by.get(id(policy))
        if found is None:
            replaced = self.line_facts if self.lines is not None else set()
            found = self.wanted_by[id(policy)] = frozenset(
                f.name for f in policy.facts if f.expression is None and f.name not in replaced)
        return found

    @cached_property
    def supplied(self) -> frozenset[str]:
        """The facts a month's record may take from the side tables."""
        names = {name for table in (self.team_facts, self.company_facts)
                 for values in table.values() for name in values}
        return frozenset(names | (self.line_facts if self.lines is not None else set()))

    def team_of(self, employee: str, team: str | None) -> str:
        """The employee's team: from the teams table, else the record's."""
        if self.teams is not None and employee in self.teams.team_of:
            return self.teams.team_of[employee]
        return team or ""

    def record(self, employee: str, month: str, values: dict[str, Any],
               team: str) -> dict[str, Any]:
        """A month's facts: the record's (`values`, completed in place), its team's, the
        company's, and the lines' sums."""
        if self.team_facts:
            values.update(self.team_facts.get((team, month), {}))
        if self.company_facts:
            values.update(self.company_facts.get(("", month), {}))
        if self.lines is not None:
            for fact in self.line_facts:
                values[fact] = self.lines.get((employee, month, fact), _ZERO)
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


def _no_policy(employee: str, record: Record, source: str, period: Period) -> EvaluationError:
    diagnostic = Diagnostic(
        "E_EVAL_NO_POLICY", Severity.ERROR, Location(source, record.row),
        f"employee {employee}: no policy covers role '{record.role}' in {period.label}",
        "add the role to a policy, or check the period and the policies' effective ranges")
    return EvaluationError(diagnostic.render(), [diagnostic])


def _segments(records: Sequence[Record]) -> list[list[Record]]:
    """Consecutive months with the same role."""
    segments: list[list[Record]] = []
    for record in records:
        if segments and segments[-1][-1].role == record.role:
            segments[-1].append(record)
        else:
            segments.append([record])
    return segments


# (name, rollup, rollup expression, default) of each fact of a policy, in its order.
_Step = tuple[str, str, Expr | None, Any]
_STEPS: dict[int, dict[frozenset[str] | None, tuple[_Step, ...]]] = {}


def _steps(policy: CompiledPolicy, only: frozenset[str] | None) -> tuple[_Step, ...]:
    """The policy's facts (those in `only`) as _Steps, made once per policy while it lives."""
    known = _STEPS.get(id(policy))
    if known is None:
        known = _STEPS[id(policy)] = {}
        weakref.finalize(policy, _STEPS.pop, id(policy), None)
    steps = known.get(only)
    if steps is None:
        steps = known[only] = tuple((f.name, f.rollup, f.expression, f.default)
                                    for f in policy.facts if only is None or f.name in only)
    return steps


def _roll(policy: CompiledPolicy, only: frozenset[str] | None,
          records: Sequence[Mapping[str, Any]] = (),
          present: Mapping[str, list[Any]] | None = None) -> dict[str, Any]:
    """The one definition of rolling up: each fact in the policy's order (those in `only`),
    from its values in the months' `records` (or the values `present` of each), in month
    order, as it declares, or by its rollup expression over the facts before it; defaults
    fill the gaps."""
    values: dict[str, Any] = {}
    one = records[0] if present is None and len(records) == 1 else None  # a month's record
    for name, how, expression, default in _steps(policy, only):
        if expression is not None:
            value = _rollup_expression(expression, values)
        elif one is not None:
            value = one.get(name, MISSING)  # (no record holds MISSING)
            if value is not MISSING and how == "mean":
                value = _combine(how, [value])
        else:
            found = [r[name] for r in records if name in r] if present is None else \
                present.get(name)
            if not found:
                value = MISSING
            elif len(found) == 1 and how != "mean":
                value = found[0]  # what _combine gives of one value
            else:
                value = _combine(how, found)
        if value is MISSING and default is not MISSING:
            value = default
        values[name] = value
    return values


def rollup(policy: CompiledPolicy, records: Sequence[Mapping[str, Any]],
           only: frozenset[str] | None = None) -> dict[str, Any]:
    """Roll monthly records up into one as each fact declares; defaults fill the gaps.
    `only` limits it to some facts (those an earlier period is read for)."""
    return _roll(policy, only, records)


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


def _rollup_expression(expression: Expr, values: Mapping[str, Any]) -> Any:
    get = values.get
    for name in expression.reads:
        if get(name, MISSING) is MISSING:
            return MISSING
    try:
        return expression.function(values)
    except ArithmeticError:  # e.g. margin of a quarter with no revenue
        return MISSING


def build_input(policy: CompiledPolicy, employee: str, segment: Sequence[Record],
                period: Period, decode: Decode,
                ratings: Mapping[str, tuple[Decimal, ...]] | None = None,
                context: _Context | None = None, facts: EmployeeFacts | None = None,
                plan: MonthPlan | None = None) -> EmployeeInput:
    """The input of one role segment (records of the period, in month order) of `employee`
    under `policy`: the records' facts come from `decode` (FactsTable.decode), earlier
    periods and years from `facts.history`, laid out by `plan`."""
    context = context or _Context(None, {}, {}, None, set())
    first = segment[0]
    team = context.team_of(employee, first.team)
    wanted = context.wanted(policy)
    records = [context.record(employee, r.month, decode(r.cells, wanted), team)
               for r in segment]
    month_facts = tuple(_roll(policy, None, (r,)) for r in records) if policy.uses_months \
        else ()
    period_facts: tuple[Mapping[str, Any], ...] = ()
    year_facts: tuple[Mapping[str, Any] | None, ...] = ()
    if policy.needs_history and facts is not None and plan is not None:
        months, columns = _history(employee, facts, plan, context, policy.history_facts)
        if policy.uses_periods:
            period_facts = _earlier_periods(policy, months, columns, period)
        if policy.uses_years:
            year_facts = _fiscal_years(policy, months, columns, period)
    segment_months = tuple(r.month for r in segment)
    if context is not None:  # one tuple for everyone with these months
        segment_months = context.months.setdefault(segment_months, segment_months)
    return EmployeeInput(
        employee=employee, name=first.name or "", role=first.role, team=team,
        months=segment_months, facts=rollup(policy, records),
        month_facts=month_facts, period_facts=period_facts, year_facts=year_facts,
        proration=_proration(policy, segment), ratings=ratings or {})


History = dict[str, list[tuple[int, Any]]]  # fact -> (month index, value) where present


def _history(employee: str, facts: EmployeeFacts, plan: MonthPlan, context: _Context,
             wanted: frozenset[str] | None) -> tuple[list[int], History]:
    """The months before the period the employee has records in, in order, and the values
    present of each fact read in them, in month order: the record's, or its team's, the
    company's or the lines' (as for the period's months) when those hold facts in `wanted`."""
    names = plan.history or ()
    width = len(names)
    stride = 1 + plan.history_team + width
    flat = facts.history
    entries = sorted((cast(int, flat[at]), at) for at in range(0, len(flat), stride))
    months = [index for index, _ in entries]
    order = [at for _, at in entries]
    columns: History = {name: [] for name in names}
    if wanted is None or not wanted.isdisjoint(context.supplied):
        columns = defaultdict(list)
        for at, index in zip(order, months, strict=True):
            team = flat[at + 1] if plan.history_team else None
            values = {name: value for name, value in
                      zip(names, flat[at + 1 + plan.history_team:at + stride], strict=True)
                      if value is not None}
            month = f"{index // 12:04d}-{index % 12 + 1:02d}"
            record = context.record(employee, month, values, context.team_of(
                employee, team if isinstance(team, str) else None))
            for name, value in record.items():
                columns[name].append((index, value))
        return months, columns
    start = 1 + plan.history_team
    for offset, name in enumerate(names):
        column = columns[name]
        for at, index in zip(order, months, strict=True):
            value = flat[at + start + offset]
            if value is not None:
                column.append((index, value))
    return months, columns


def _proration(policy: CompiledPolicy, segment: Sequence[Record]) -> Decimal:
    if policy.proration != "days":
        return ONE  # shared
    hired = segment[0].hired
    left = segment[-1].left
    first_year, first_month = map(int, segment[0].month.split("-"))
    last_year, last_month = map(int, segment[-1].month.split("-"))
    start, end = date(first_year, first_month, 1), _month_end(last_year, last_month)
    total = (end - start).days + 1
    worked_start = max(start, hired) if hired else start
    worked_end = min(end, left) if left else end
    worked = max(0, (worked_end - worked_start).days + 1)
    return ONE if worked == total else Decimal(worked) / Decimal(total)


def _buckets(months: Sequence[int], columns: History, bucket: Callable[[int], int | None]
             ) -> dict[int, dict[str, list[Any]]]:
    """The values present of each fact, by bucket (an earlier period or year), in month
    order; a bucket with records but no values is there, empty."""
    key_of = {index: bucket(index) for index in months}
    found: dict[int, dict[str, list[Any]]] = {key: {} for key in key_of.values()
                                              if key is not None}
    for name, column in columns.items():
        for index, value in column:
            key = key_of[index]
            if key is not None:
                found[key].setdefault(name, []).append(value)
    return found


def _earlier_periods(policy: CompiledPolicy, months: Sequence[int], columns: History,
                     period: Period) -> tuple[Mapping[str, Any], ...]:
    """Each earlier period of the same length, oldest first (periods with no rows skipped)."""
    length = len(period.months)
    start = month_index(period.months[0])

    def earlier(index: int) -> int | None:
        return (start - index - 1) // length if index < start else None

    buckets = _buckets(months, columns, earlier)
    return tuple(_roll(policy, policy.history_facts, present=buckets[k])
                 for k in sorted(buckets, reverse=True))


_YEARS: dict[tuple[int, int], dict[int, int | None]] = {}  # see _fiscal_years


def _fiscal_years(policy: CompiledPolicy, months: Sequence[int], columns: History,
                  period: Period) -> tuple[Mapping[str, Any] | None, ...]:
    """Complete fiscal years before the one holding the period, oldest first; None for a
    year with no rows. The current, incomplete year neither counts nor breaks a run."""
    start = policy.fiscal_start

    def fiscal_year(index: int) -> int:
        year, number = divmod(index, 12)
        return year if number + 1 >= start else year - 1

    current = fiscal_year(month_index(period.months[0]))
    # each month's complete fiscal year (None: the current one or later), worked out once
    years = _YEARS.setdefault((start, current), {})

    def complete(index: int) -> int | None:
        year = years.get(index, -1)
        if year == -1:
            found = fiscal_year(index)
            year = years[index] = found if found < current else None
        return year

    buckets = _buckets(months, columns, complete)
    if not buckets:
        return ()
    return tuple(_roll(policy, policy.history_facts, present=buckets[y])
                 if y in buckets else None for y in range(min(buckets), current))
