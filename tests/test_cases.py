"""The worked examples and every case file run through the one case loader (`engine.cases`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import InputError
from engine.cases import find_test_files, run_test_file

ROOT = Path(__file__).resolve().parent.parent
CASE_FILES = find_test_files([ROOT / "tests" / "cases", ROOT / "policies"])
CASES = [(path, result) for path in CASE_FILES for result in run_test_file(path)]


@pytest.mark.parametrize(("path", "result"), CASES,
                         ids=[f"{p.stem}: {r.name}" for p, r in CASES])
def test_case(path: Path, result: object) -> None:
    assert result.passed, (result.error, result.mismatches)  # type: ignore[attr-defined]


def test_a_wrong_expectation_is_reported_at_its_exact_path(tmp_path: Path) -> None:
    source = (ROOT / "tests" / "cases" / "commission.test.yaml").read_text(encoding="utf-8")
    # graduated on 2,500,000 is 80,000.00; claim 80,000.01 instead
    changed = source.replace('commission_graduated: "80000.00"', 'commission_graduated: "80000.01"')
    assert changed != source
    (tmp_path / "commission.yaml").write_text(
        (ROOT / "tests" / "cases" / "commission.yaml").read_text(encoding="utf-8"),
        encoding="utf-8")
    target = tmp_path / "wrong.test.yaml"
    target.write_text(changed, encoding="utf-8")
    first = run_test_file(target)[0]
    assert not first.passed
    assert [(m.path, m.expected, str(m.actual)) for m in first.mismatches] == [
        ("G1.rewards.commission_graduated", "80000.01", "80000.00")]


def test_a_test_file_naming_a_missing_policy_is_bad_input(tmp_path: Path) -> None:
    target = tmp_path / "x.test.yaml"
    target.write_text("meritpay-test: 1\npolicy: nowhere.yaml\ncases:\n"
                      "  - {name: one, facts: [], expect: {}}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        run_test_file(target)
    assert [(d.code, d.location.line, d.location.column) for d in caught.value.diagnostics] == [
        ("E_TEST_POLICY", 2, 9)]


def test_a_malformed_test_file_names_the_line(tmp_path: Path) -> None:
    target = tmp_path / "x.test.yaml"
    target.write_text("meritpay-test: 1\npolicy: p.yaml\ncases:\n  - {name: one, facts: [], "
                      "expekt: {}}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        run_test_file(target)
    codes = [(d.code, d.location.line) for d in caught.value.diagnostics]
    assert ("E_SCHEMA", 4) in codes
