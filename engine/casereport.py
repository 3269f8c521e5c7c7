"""Render the result of `meritpay test` (a SuiteResult): text, JSON, JUnit XML, coverage.

Deterministic like every report: cases in file and case order, coverage items in policy
order, no times or durations.

The JSON structure (stable; new keys may be added, none renamed or removed):

    {"files": [PATH, ...],
     "cases": [{"name", "file", "line", "passed", "error",
                "mismatches": [{"path", "expected", "actual",
                                "explanation": [{"step", "name", "outcome", "value",
                                                 "reads": {NAME: VALUE}, "detail",
                                                 "line"}]}]}],
     "summary": {"files", "cases", "passed", "failed"},
     "coverage": [{"policy", "version", "file", "covered", "total", "percent",
                   "items": [{"kind", "rule", "item", "line", "covered"}]}]}

Numbers (amounts, scores, percentages) are strings, so no decimal is lost; booleans stay
booleans.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

from .cases import CaseResult, Mismatch, SuiteResult
from .coverage import PolicyCoverage
from .evaluate import TraceEvent, show


def _plain(value: Any) -> Any:
    """A value as JSON keeps it: bools and None as they are, everything else as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _shown(value: Any) -> str:
    """An expected or actual value: text as written, a Decimal with its places (40000.00)."""
    if isinstance(value, str | Decimal):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(_plain(value), ensure_ascii=False)
    return show(value)


def event_lines(event: TraceEvent, source: str = "") -> list[str]:
    """A trace event for people: what ran, how it went, its arithmetic and what it read."""
    where = f" ({source}:{event.line})" if source and event.line else \
        (f" (line {event.line})" if event.line else "")
    lines = [f"{event.step} {event.name}{where}: {event.outcome} -> {_shown(event.value)}"]
    if event.detail:
        lines.append(f"  {event.detail}")
    if event.reads:
        lines.append("  reads: " + ", ".join(f"{n} = {show(v)}" for n, v in event.reads))
    return lines


def mismatch_lines(mismatch: Mismatch, source: str = "") -> list[str]:
    lines = [f"{mismatch.path}: expected {_shown(mismatch.expected)}, "
             f"got {_shown(mismatch.actual)}"]
    for event in mismatch.events:
        lines.extend(f"  {line}" for line in event_lines(event, source))
    return lines


def _policy_source(suite: SuiteResult, case: CaseResult) -> str:
    """The policy file of the case's results, when they all share one."""
    sources = {c.source for c in suite.coverage
               for r in case.results if (r.policy, r.version) == (c.policy, c.version)}
    return next(iter(sources)) if len(sources) == 1 else ""


def case_lines(suite: SuiteResult, case: CaseResult) -> list[str]:
    """What went wrong in a failing case: its error, or each mismatch and its explanation."""
    if case.error:
        return [case.error]
    source = _policy_source(suite, case)
    lines: list[str] = []
    for mismatch in case.mismatches:
        lines.extend(mismatch_lines(mismatch, source))
    return lines


def render_text(suite: SuiteResult, *, show_coverage: bool = False) -> str:
    out: list[str] = []
    current = None
    for case in suite.cases:
        if case.file != current:
            current = case.file
            out.append(case.file)
        out.append(f"  {'PASS' if case.passed else 'FAIL'}  {case.name} (line {case.line})")
        if not case.passed:
            out.extend(f"        {line}" for line in case_lines(suite, case))
    files = len(suite.files)
    out.append(f"{len(suite.cases)} case(s) in {files} file(s): {suite.passed} passed, "
               f"{suite.failed} failed")
    if show_coverage:
        out.append("")
        out.extend(coverage_lines(suite.coverage))
    return "\n".join(out) + "\n"


def coverage_lines(coverages: tuple[PolicyCoverage, ...] | list[PolicyCoverage]) -> list[str]:
    out = ["coverage:"]
    for item in coverages:
        out.append(f"  {item.policy} {item.version} ({item.source}): {item.percent}% "
                   f"({item.covered} of {item.total} items)")
        for missing in item.uncovered:
            out.append(f"    {item.source}:{missing.line}: not covered: {missing.text}")
    return out


def _event_json(event: TraceEvent) -> dict[str, Any]:
    return {"step": event.step, "name": event.name, "outcome": event.outcome,
            "value": _plain(event.value), "reads": {n: show(v) for n, v in event.reads},
            "detail": event.detail, "line": event.line}


def coverage_json(item: PolicyCoverage) -> dict[str, Any]:
    return {"policy": item.policy, "version": item.version, "file": item.source,
            "covered": item.covered, "total": item.total, "percent": str(item.percent),
            "items": [{"kind": i.kind, "rule": i.rule, "item": i.text, "line": i.line,
                       "covered": i.covered} for i in item.items]}


def render_json(suite: SuiteResult) -> str:
    data = {
        "files": list(suite.files),
        "cases": [{
            "name": case.name, "file": case.file, "line": case.line, "passed": case.passed,
            "error": case.error,
            "mismatches": [{"path": m.path, "expected": _plain(m.expected),
                            "actual": _plain(m.actual),
                            "explanation": [_event_json(e) for e in m.events]}
                           for m in case.mismatches],
        } for case in suite.cases],
        "summary": {"files": len(suite.files), "cases": len(suite.cases),
                    "passed": suite.passed, "failed": suite.failed},
        "coverage": [coverage_json(item) for item in suite.coverage],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def render_junit(suite: SuiteResult) -> str:
    """JUnit XML: one testsuite per test file, one testcase per case (classname = the file);
    a failing case has one <failure> whose message lists the mismatches (or the error) and
    whose text adds the explanations."""
    root = ET.Element("testsuites", name="meritpay test", tests=str(len(suite.cases)),
                      failures=str(suite.failed), errors="0")
    for file in suite.files:
        cases = [c for c in suite.cases if c.file == file]
        failed = sum(1 for c in cases if not c.passed)
        element = ET.SubElement(root, "testsuite", name=file, tests=str(len(cases)),
                                failures=str(failed), errors="0", skipped="0")
        for case in cases:
            node = ET.SubElement(element, "testcase", classname=file, name=case.name,
                                 file=file, line=str(case.line))
            if case.passed:
                continue
            message = case.error or "; ".join(
                f"{m.path}: expected {_shown(m.expected)}, got {_shown(m.actual)}"
                for m in case.mismatches)
            failure = ET.SubElement(node, "failure", message=message, type="mismatch"
                                    if not case.error else "error")
            failure.text = "\n".join(case_lines(suite, case))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"
