"""Policy test cases (`*.test.yaml`): load them, run them, compare expected with actual.

The same format serves HR's own policy tests and the project's worked examples. A case gives
facts (and optionally ratings, teams, team and company facts, lines) inline or as files, and
the outcomes it expects for some employees; only what is written is compared. Money is
compared exactly; a score or value to as many decimal places as the expectation is written
with (`0.8611` compares the actual value rounded half-even to 4 places).
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

from .diagnostics import Diagnostic, InputError, Location, MeritpayError, Severity
from .evaluate import EmployeeResult
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


def run_test_file(path: Path) -> list[CaseResult]:
    document = load_test_file(path)
    data = document.data
    policy_path = path.parent / str(data["policy"])
    if not policy_path.exists():
        line, column = document.position(("policy",))
        diagnostic = Diagnostic("E_TEST_POLICY", Severity.ERROR,
                                Location(str(path), line, column),
                                f"the policy '{data['policy']}' does not exist (looked for "
                                f"{policy_path})", "give the path relative to the test file")
        raise InputError(diagnostic.render(), [diagnostic])
    policies = load_policies([policy_path])
    results = []
    for index, case in enumerate(data["cases"]):
        line = document.position(("cases", index))[0]
        results.append(_run_case(path, line, case, data.get("period"), policies))
    return results


def _run_case(path: Path, line: int, case: Mapping[str, Any], default_period: Any,
              policies: list[CompiledPolicy]) -> CaseResult:
    name = str(case["name"])
    period = str(case.get("period") or default_period or "")
    expected_error = case.get("expect_error")
    with tempfile.TemporaryDirectory(prefix="meritpay-case-") as scratch:
        try:
            inputs = _inputs(path, case, policies, Path(scratch))
            outcome = run(policies, inputs, period)
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
    mismatches = []
    for employee, expectation in (case.get("expect") or {}).items():
        found = by_employee.get(str(employee))
        if not found:
            mismatches.append(Mismatch(str(employee), "evaluated", "not in the results"))
            continue
        mismatches.extend(compare(str(employee), expectation, found[-1]))
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


def compare(employee: str, expectation: Mapping[str, Any],
            result: EmployeeResult) -> Iterator[Mismatch]:
    """Every difference between what the case expects and what the run gave."""
    for key in ("role", "tier"):
        if key in expectation and expectation[key] != getattr(result, key):
            yield Mismatch(f"{employee}.{key}", expectation[key], getattr(result, key))
    for key in ("total_score", "proration"):
        if key in expectation and not _same_number(expectation[key], getattr(result, key)):
            yield Mismatch(f"{employee}.{key}", expectation[key], getattr(result, key))
    if "total_pay" in expectation and _number(expectation["total_pay"]) != result.total_pay:
        yield Mismatch(f"{employee}.total_pay", expectation["total_pay"], result.total_pay)
    lines = {r.name: r for r in result.rewards}
    for name, amount in (expectation.get("rewards") or {}).items():
        line = lines.get(name)
        actual = line.amount if line is not None else None
        if line is None or _number(amount) != actual:
            yield Mismatch(f"{employee}.rewards.{name}", amount,
                           actual if line is not None else "no such reward for this employee")
    for name, granted in (expectation.get("outcomes") or {}).items():
        line = lines.get(name)
        if line is None or bool(line.granted) != granted:
            yield Mismatch(f"{employee}.outcomes.{name}", granted,
                           bool(line.granted) if line is not None else "no such outcome")
    gates = dict(result.gates)
    for name, passed in (expectation.get("gates") or {}).items():
        if name not in gates or gates[name] != passed:
            yield Mismatch(f"{employee}.gates.{name}", passed, gates.get(name, "no such gate"))
    indicators = {i.name: i for i in result.indicators}
    for name, fields in (expectation.get("indicators") or {}).items():
        indicator = indicators.get(name)
        if indicator is None:
            yield Mismatch(f"{employee}.indicators.{name}", fields, "no such indicator")
            continue
        for key, want in fields.items():
            actual = getattr(indicator, key)
            same = want == actual if key == "status" else _same_number(want, actual)
            if not same:
                yield Mismatch(f"{employee}.indicators.{name}.{key}", want, actual)
