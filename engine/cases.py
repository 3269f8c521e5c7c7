"""Policy test cases (`*.test.yaml`): load them, run them, compare expected with actual.

The same format serves HR's own policy tests and the project's worked examples. A case gives
facts (and optionally ratings, teams, team and company facts, lines) inline or as files, and
the outcomes it expects for some employees; only what is written is compared. Money is
compared exactly; a score or value to as many decimal places as the expectation is written
with (`0.8611` compares the actual value rounded half-even to 4 places).

Before anything runs, every name an expectation uses (rewards, outcomes, gates, indicators,
tier bands, roles) is checked against the test file's policies: a name no policy has is a
malformed test file (E_TEST_EXPECTATION, with its line), not a failing case. Cases run with
the trace on, so a mismatch carries the trace events that explain the actual value, and
`run_suite` adds the coverage of every policy by all its cases (engine.coverage).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .coverage import PolicyCoverage, coverage
from .diagnostics import (
    Diagnostic,
    InputError,
    Location,
    MeritpayError,
    Severity,
    did_you_mean,
    sort_diagnostics,
)
from .evaluate import EmployeeResult, TraceEvent
from .facts import read_records
from .load import load_document, read_text
from .model import CompiledPolicy, Document
from .run import RunInputs, fact_types, load_policies, run
from .schema import schema_diagnostics

TEST_SUFFIXES = (".test.yaml", ".test.yml")


@dataclass(frozen=True)
class Mismatch:
    path: str  # e.g. E1.rewards.commission
    expected: Any
    actual: Any
    # the trace events of the employee that explain the actual value (its rule, its gate...)
    events: tuple[TraceEvent, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class CaseResult:
    file: str
    line: int
    name: str
    mismatches: tuple[Mismatch, ...] = ()
    error: str = ""  # an unexpected error, or an expected one that did not happen
    results: tuple[EmployeeResult, ...] = field(default=(), repr=False)

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.error


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIXES)


def find_test_files(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in path.rglob("*") if p.is_file() and is_test_file(p))
        else:
            found.append(path)
    return sorted(set(found))


def load_test_file(path: Path) -> Document:
    """Load and schema-check a test file; InputError with every problem if it is malformed."""
    document, problems = load_document(read_text(path), str(path))
    if document is not None:
        problems = [*problems, *schema_diagnostics(document, "policy-test.schema.json")]
    if problems or document is None:
        raise InputError(f"{path}: the test file is malformed", problems)
    return document


def prepare_test_file(path: Path, loaded: dict[Path, list[CompiledPolicy]] | None = None
                      ) -> tuple[Document, list[CompiledPolicy]]:
    """Load a test file and its policies and check its expectations against them.

    InputError (exit 2) for a malformed file, a missing policy or an expectation naming an
    output no policy has; FindingsError (exit 1) for an invalid policy. `loaded` caches the
    policies by path across files.
    """
    document = load_test_file(path)
    data = document.data
    outside = _outside_paths(path, document)
    if outside:
        raise InputError(f"{path}: {len(outside)} path(s) outside the test file's folder",
                         outside)
    policy_path = path.parent / str(data["policy"])
    if not policy_path.exists():
        line, column = document.position(("policy",))
        diagnostic = Diagnostic("E_TEST_POLICY", Severity.ERROR,
                                Location(str(path), line, column),
                                f"the policy '{data['policy']}' does not exist (looked for "
                                f"{policy_path})", "give the path relative to the test file")
        raise InputError(diagnostic.render(), [diagnostic])
    loaded = {} if loaded is None else loaded
    key = policy_path.resolve()
    if key not in loaded:
        loaded[key] = load_policies([policy_path])
    policies = loaded[key]
    problems = check_expectations(document, policies)
    if problems:
        raise InputError(f"{path}: {len(problems)} expectation(s) name outputs the policy does "
                         "not have", problems)
    return document, policies


_FILE_KEYS = ("facts", "ratings", "teams", "team_facts", "company_facts", "lines")


def _outside_paths(path: Path, document: Document) -> list[Diagnostic]:
    """Files a test file names (its policy, and facts... given as paths) must be relative
    and stay inside its folder, symlinks resolved: a test file that arrives in a pull request
    cannot make `meritpay test` read /etc/passwd or a CI secret into its messages."""
    folder = path.parent.resolve()
    named: list[tuple[tuple[str | int, ...], Any]] = [(("policy",), document.data.get("policy"))]
    for index, case in enumerate(document.data.get("cases") or []):
        if isinstance(case, dict):
            named += [(("cases", index, key), case.get(key)) for key in _FILE_KEYS]
    problems = []
    for where, value in named:
        if not isinstance(value, str):
            continue
        target = (path.parent / value).resolve()
        if Path(value).is_absolute() or not target.is_relative_to(folder):
            line, column = document.position(where)
            problems.append(Diagnostic(
                "E_TEST_PATH", Severity.ERROR, Location(str(path), line, column),
                f"'{value}' is outside the test file's folder",
                "keep the policy and data files a test file names in its folder or below"))
    return problems


def run_test_file(path: Path) -> list[CaseResult]:
    document, policies = prepare_test_file(path)
    return _run_cases(path, document, policies)


def _run_cases(path: Path, document: Document, policies: list[CompiledPolicy]
               ) -> list[CaseResult]:
    data = document.data
    results = []
    for index, case in enumerate(data["cases"]):
        line = document.position(("cases", index))[0]
        results.append(_run_case(path, line, case, data.get("period"), policies))
    return results


@dataclass(frozen=True)
class SuiteResult:
    """Every case of every test file, and the coverage of every policy they load."""

    files: tuple[str, ...]
    cases: tuple[CaseResult, ...]
    coverage: tuple[PolicyCoverage, ...]

    @property
    def passed(self) -> int:
        return sum(1 for case in self.cases if case.passed)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed


def run_suite(paths: Sequence[Path]) -> SuiteResult:
    """Run every case of the test files under paths (files and directories).

    Every test file is loaded and checked before any case runs, and the problems of all of
    them are raised together (InputError). Coverage is computed per policy (id and version)
    from the results of all cases that evaluated under it.
    """
    files = find_test_files(paths)
    if not files:
        raise InputError("no test files (*.test.yaml) found in "
                         + ", ".join(str(p) for p in paths))
    loaded: dict[Path, list[CompiledPolicy]] = {}
    prepared = []
    problems: list[Diagnostic] = []
    for path in files:
        try:
            prepared.append((path, *prepare_test_file(path, loaded)))
        except InputError as error:
            if not error.diagnostics:
                raise InputError(f"{path}: {error.message}") from None
            problems.extend(error.diagnostics)
    if problems:
        raise InputError(f"{len(problems)} problem(s) in the test files",
                         sort_diagnostics(problems))
    cases: list[CaseResult] = []
    for path, document, policies in prepared:
        cases.extend(_run_cases(path, document, policies))
    everything = [p for policies in loaded.values() for p in policies]
    results = [r for case in cases for r in case.results]
    return SuiteResult(tuple(str(p) for p in files), tuple(cases),
                       tuple(coverage(everything, results)))


_SECTIONS = {"rewards": "money reward", "outcomes": "non-money reward (outcome)",
             "gates": "gate", "indicators": "indicator"}
_STATUSES = ("scored", "excluded", "not_applicable")


def check_expectations(document: Document, policies: Sequence[CompiledPolicy]
                       ) -> list[Diagnostic]:
    """Every name an expectation uses that none of the policies has, with its line."""
    known = {
        "rewards": {r.name for p in policies for r in p.rewards if r.is_money},
        "outcomes": {r.name for p in policies for r in p.rewards if not r.is_money},
        "gates": {g.name for p in policies for g in p.gates},
        "indicators": {i.name for p in policies for i in p.indicators},
        "tier": {b.name for p in policies if p.tiers is not None for b in p.tiers.bands},
        "role": {r for p in policies for r in p.roles},
    }
    problems: list[Diagnostic] = []

    def problem(where: tuple[str | int, ...], message: str, hint: str, *, key: bool) -> None:
        line, column = document.position(where, key=key)
        problems.append(Diagnostic("E_TEST_EXPECTATION", Severity.ERROR,
                                   Location(document.source, line, column), message, hint))

    for index, case in enumerate(document.data.get("cases") or []):
        for employee, expectation in (case.get("expect") or {}).items():
            at = ("cases", index, "expect", employee)
            who = f"case '{case.get('name')}' expects of {employee}"
            for key in ("tier", "role"):
                if key in expectation and str(expectation[key]) not in known[key]:
                    value = str(expectation[key])
                    problem((*at, key), f"{who} {key} '{value}', which no policy of this test "
                            f"file has{did_you_mean(value, known[key])}",
                            f"the policy's {'tier bands' if key == 'tier' else 'roles'}: "
                            + (", ".join(sorted(known[key])) or "none"), key=False)
            for section, noun in _SECTIONS.items():
                for name in expectation.get(section) or {}:
                    if str(name) in known[section]:
                        continue
                    elsewhere = [s for s in _SECTIONS if str(name) in known[s]]
                    hint = f"'{name}' is a {_SECTIONS[elsewhere[0]]}: expect it under " \
                        f"{elsewhere[0]}" if elsewhere else f"name a {noun} of the policy"
                    problem((*at, section, name), f"{who} {noun} '{name}', which no policy "
                            f"of this test file has{did_you_mean(str(name), known[section])}",
                            hint, key=True)
            for name, fields in (expectation.get("indicators") or {}).items():
                status = (fields or {}).get("status")
                if status is not None and status not in _STATUSES:
                    problem((*at, "indicators", name, "status"), f"{who} indicator '{name}' "
                            f"status '{status}'{did_you_mean(str(status), _STATUSES)}",
                            "a status is one of " + ", ".join(_STATUSES), key=False)
    return problems


def _run_case(path: Path, line: int, case: Mapping[str, Any], default_period: Any,
              policies: list[CompiledPolicy]) -> CaseResult:
    name = str(case["name"])
    period = str(case.get("period") or default_period or "")
    expected_error = case.get("expect_error")
    with tempfile.TemporaryDirectory(prefix="meritpay-case-") as scratch:
        try:
            inputs = _inputs(path, case, policies, Path(scratch))
            outcome = run(policies, inputs, period, trace=True)
        except MeritpayError as error:
            codes = [d.code for d in error.diagnostics]
            text = " ".join(d.render() for d in error.diagnostics) or error.message
            if expected_error:
                want, who = expected_error["code"], expected_error.get("employee")
                if want in codes and (not who or who in text):
                    return CaseResult(str(path), line, name)
                return CaseResult(str(path), line, name, error=f"expected {want}"
                                  f"{f' for {who}' if who else ''}, got: {text}")
            return CaseResult(str(path), line, name, error=text)
    if expected_error:
        return CaseResult(str(path), line, name,
                          error=f"expected error {expected_error['code']}, but the run succeeded")
    by_employee: dict[str, list[EmployeeResult]] = {}
    for result in outcome.results:
        by_employee.setdefault(result.employee, []).append(result)
    by_version = {(p.policy, p.version): p for p in policies}
    mismatches = []
    for employee, expectation in (case.get("expect") or {}).items():
        found = by_employee.get(str(employee))
        if not found:
            mismatches.append(Mismatch(str(employee), "evaluated", "not in the results"))
            continue
        last = found[-1]
        mismatches.extend(compare(str(employee), expectation, last,
                                  by_version.get((last.policy, last.version))))
    return CaseResult(str(path), line, name, tuple(mismatches), results=outcome.results)


def _inputs(path: Path, case: Mapping[str, Any], policies: list[CompiledPolicy],
            scratch: Path) -> RunInputs:
    facts = case["facts"]
    if isinstance(facts, list):
        places = max(p.places for p in policies)
        read = read_records(facts, fact_types(policies), f"{path}: facts", places=places)
    else:
        read = None
    files: dict[str, Path | None] = {}
    for key in ("facts", "ratings", "teams", "team_facts", "company_facts", "lines"):
        value = case.get(key)
        if value is None:
            files[key] = None
        elif isinstance(value, str):
            files[key] = path.parent / value
        else:
            files[key] = _write_csv(scratch / f"{key}.csv", value)
    return RunInputs(facts=read if read is not None else files["facts"] or path,
                     ratings=files["ratings"], teams=files["teams"],
                     team_facts=files["team_facts"], company_facts=files["company_facts"],
                     lines=files["lines"])


def _write_csv(target: Path, records: list[Mapping[str, Any]]) -> Path:
    columns: list[str] = []
    for record in records:
        columns.extend(k for k in record if k not in columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    target.write_text(buffer.getvalue(), encoding="utf-8")
    return target


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _same_number(expected: Any, actual: Decimal | None) -> bool:
    want = _number(expected)
    if want is None or actual is None:
        return want is None and actual is None
    exponent = want.as_tuple().exponent
    places = max(-exponent, 0) if isinstance(exponent, int) else 0
    return actual.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN) == want


def compare(employee: str, expectation: Mapping[str, Any], result: EmployeeResult,
            policy: CompiledPolicy | None = None) -> Iterator[Mismatch]:
    """Every difference between what the case expects and what the run gave, each with the
    trace events that explain the actual value (when the result was traced; `policy` adds
    the gate a reward requires)."""
    explain = _Explainer(result, policy)
    for key in ("role", "tier"):
        if key in expectation and expectation[key] != getattr(result, key):
            yield Mismatch(f"{employee}.{key}", expectation[key], getattr(result, key),
                           explain.field(key))
    for key in ("total_score", "proration"):
        if key in expectation and not _same_number(expectation[key], getattr(result, key)):
            yield Mismatch(f"{employee}.{key}", expectation[key], getattr(result, key),
                           explain.field(key))
    if "total_pay" in expectation and _number(expectation["total_pay"]) != result.total_pay:
        yield Mismatch(f"{employee}.total_pay", expectation["total_pay"], result.total_pay,
                       explain.field("total_pay"))
    lines = {r.name: r for r in result.rewards}
    for name, amount in (expectation.get("rewards") or {}).items():
        line = lines.get(name)
        actual = line.amount if line is not None else None
        if line is None or _number(amount) != actual:
            yield Mismatch(f"{employee}.rewards.{name}", amount,
                           actual if line is not None else "no such reward for this employee",
                           explain.reward(name))
    for name, granted in (expectation.get("outcomes") or {}).items():
        line = lines.get(name)
        if line is None or bool(line.granted) != granted:
            yield Mismatch(f"{employee}.outcomes.{name}", granted,
                           bool(line.granted) if line is not None else "no such outcome",
                           explain.named(("outcome", "selection"), name))
    gates = dict(result.gates)
    for name, passed in (expectation.get("gates") or {}).items():
        if name not in gates or gates[name] != passed:
            yield Mismatch(f"{employee}.gates.{name}", passed, gates.get(name, "no such gate"),
                           explain.named(("gate",), name))
    indicators = {i.name: i for i in result.indicators}
    for name, fields in (expectation.get("indicators") or {}).items():
        indicator = indicators.get(name)
        if indicator is None:
            yield Mismatch(f"{employee}.indicators.{name}", fields,
                           f"not an indicator of role {result.role}",
                           explain.indicator(name))
            continue
        for key, want in fields.items():
            actual = getattr(indicator, key)
            same = want == actual if key == "status" else _same_number(want, actual)
            if not same:
                yield Mismatch(f"{employee}.indicators.{name}.{key}", want, actual,
                               explain.indicator(name, weight=key == "weight"))


class _Explainer:
    """Picks the trace events of one result that explain one of its values."""

    def __init__(self, result: EmployeeResult, policy: CompiledPolicy | None) -> None:
        self.events = result.trace
        self.policy = policy

    def named(self, steps: tuple[str, ...], name: str) -> tuple[TraceEvent, ...]:
        return tuple(e for e in self.events if e.step in steps and e.name == name)

    def field(self, key: str) -> tuple[TraceEvent, ...]:
        if key == "tier":
            return tuple(e for e in self.events if e.step in ("total", "tier"))
        if key == "total_score":
            return tuple(e for e in self.events if e.step in ("weight", "total"))
        if key == "total_pay":
            return tuple(e for e in self.events if e.step == "reward")
        return ()

    def reward(self, name: str) -> tuple[TraceEvent, ...]:
        events = self.named(("reward",), name)
        decl = next((r for r in self.policy.rewards if r.name == name), None) \
            if self.policy is not None else None
        if decl is not None and decl.gate is not None:
            events += self.named(("gate",), decl.gate)
        return events

    def indicator(self, name: str, *, weight: bool = False) -> tuple[TraceEvent, ...]:
        steps = ("indicator", "score", "rating") + (("weight", "total") if weight else ())
        return tuple(e for e in self.events if e.step in steps and (
            e.name == name or e.name.startswith(f"{name}.") or e.step in ("weight", "total")))
