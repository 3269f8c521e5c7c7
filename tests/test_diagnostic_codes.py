"""One test per diagnostic code, as data.

Every file in tests/fixtures/invalid is tests/fixtures/valid/minimal.yaml with one problem.
Its header lists exactly the diagnostics `validate` must report, one per line:

    # expect: E_WEIGHTS_SUM 24:7

The header is read from the raw bytes, so files the loader cannot read (not UTF-8) carry one
too. The codes that need several files or special setup (overlapping versions, duplicate
policies, an empty directory, a missing or huge file) are tested below with files built in
tmp_path.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from engine import CODES, Diagnostic, InputError, Severity
from engine.validate import validate_paths

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MINIMAL = FIXTURES / "valid" / "minimal.yaml"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
EXPECT = re.compile(r"#\s*expect:\s*([A-Z_]+)\s+(\d+):(\d+)\s*$")

# Codes tested by the multi-file / special-setup tests at the end of this module.
MULTI_FILE_CODES = {
    "E_EFFECTIVE_OVERLAP": "test_overlapping_versions_of_one_policy, "
                           "test_two_policies_covering_one_role_at_once",
    "E_DUPLICATE_POLICY": "test_same_policy_and_version_twice",
    "W_NO_POLICIES": "test_directory_without_policies",
    "E_FILE_UNREADABLE": "test_missing_file_is_unreadable",
    "E_FILE_TOO_LARGE": "test_file_over_5_mb_is_too_large",
}

# Codes of reading facts and evaluating, tested with the run (module: what tests them).
RUN_CODES = {
    "E_FACTS": "tests/test_facts.py",
    "E_RATINGS": "tests/test_run.py::test_rating_off_the_scale_names_file_row_and_column",
    "E_EVAL_MISSING_FACT": "tests/test_run.py::test_missing_fact_without_fallback_names_employee",
    "E_EVAL_DIVIDE_BY_ZERO": "tests/test_run.py::test_quota_zero_is_an_error_naming_the_indicator",
    "E_EVAL_ARITHMETIC": "tests/hostile/test_regressions.py::"
                         "test_an_amount_beyond_the_precision_was_a_raw_traceback",
    "E_EVAL_NO_POLICY": "tests/test_run.py::test_role_no_policy_covers",
    "E_EVAL_NO_INDICATORS": "tests/test_run.py::test_no_applicable_indicator",
    "E_EVAL_RATINGS": "tests/test_run.py::test_missing_rater_group_fails_when_declared",
    "W_FACTS_UNKNOWN_COLUMNS": "tests/test_run.py::test_unknown_columns_warned_once",
    "E_TEAMS": "tests/test_run.py::test_team_share_must_be_positive",
    "E_LINES": "tests/test_run.py::test_a_duplicate_line_id_is_refused",
    "E_TEST_POLICY": "tests/test_cases.py::test_a_test_file_naming_a_missing_policy_is_bad_input",
    "E_TEST_PATH": "tests/hostile/test_regressions.py::"
                   "test_a_test_file_could_make_meritpay_test_read_any_file",
    "E_TEST_EXPECTATION": "tests/test_policy_tests.py::"
                          "test_an_unknown_expected_reward_is_bad_input_with_did_you_mean_and_line",
    # the ledger of runs
    "E_LEDGER_NOT_A_LEDGER": "tests/test_ledger.py::"
                             "test_a_file_that_is_not_a_ledger_is_refused_untouched",
    "E_LEDGER_NEWER": "tests/test_ledger.py::test_a_newer_ledger_is_refused_untouched",
    "E_LEDGER_TAMPERED": "tests/test_ledger.py::test_an_edited_result_is_found_naming_the_run",
    "E_LEDGER_BUSY": "tests/test_ledger.py::"
                     "test_a_busy_ledger_fails_with_exit_3_and_keeps_earlier_runs",
    "E_LEDGER_READ_ONLY": "tests/test_ledger.py::"
                          "test_a_read_only_ledger_fails_with_exit_3_and_keeps_earlier_runs",
    "E_LEDGER_DISK_FULL": "tests/test_ledger.py::"
                          "test_a_full_disk_fails_with_exit_3_and_keeps_earlier_runs",
    "E_LEDGER_INTERRUPTED": "tests/test_ledger.py::"
                            "test_reading_after_an_interrupted_run_says_so_until_the_next_run",
    "E_LEDGER_CORRUPT": "tests/test_ledger.py::test_a_damaged_ledger_file_is_exit_3",
    "E_UNKNOWN_RUN": "tests/test_ledger.py::test_an_unknown_run_id_is_exit_2_with_the_nearest_ids",
    "E_REPLAY_DIFFERS": "tests/test_explain_ledger.py::"
                        "test_a_recomputed_run_that_differs_is_not_explained",
}

# Fixtures whose header states what validate should report but does not yet (engine bugs).
# strict=True: when the engine is fixed, the xfail turns into a failure and the entry goes.
KNOWN_BUGS: dict[str, str] = {}


def expected(path: Path) -> list[tuple[str, int, int]]:
    """The `# expect:` lines of the header comment (raw bytes, so any encoding works)."""
    found = []
    for raw in path.read_bytes().splitlines():
        line = raw.decode("ascii", errors="replace").strip()
        if not line.startswith("#"):
            break
        match = EXPECT.match(line)
        if match:
            found.append((match.group(1), int(match.group(2)), int(match.group(3))))
    return sorted(found)


def diagnostics(*paths: Path) -> list[Diagnostic]:
    """What validate reports; for a file it cannot read at all, the InputError's diagnostics."""
    try:
        return validate_paths(list(paths)).diagnostics
    except InputError as error:
        return list(error.diagnostics)


def found(path: Path) -> list[tuple[str, int, int]]:
    return sorted((d.code, d.location.line, d.location.column) for d in diagnostics(path))


def the_one(path: Path, code: str) -> Diagnostic:
    matching = [d for d in diagnostics(path) if d.code == code]
    assert len(matching) == 1, matching
    return matching[0]


def fixture(stem: str) -> Path:
    return FIXTURES / "invalid" / f"{stem}.yaml"


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.stem, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[p.stem])]
                  if p.stem in KNOWN_BUGS else []) for p in INVALID],
)
def test_fixture_reports_exactly_its_header(path: Path) -> None:
    want = expected(path)
    assert want, f"{path.name} has no '# expect: CODE LINE:COL' header"
    assert found(path) == want


def test_every_fixture_header_is_well_formed() -> None:
    for path in INVALID:
        for code, line, column in expected(path):
            assert code in CODES, f"{path.name}: unknown code {code}"
            assert line >= 1 and column >= 1, path.name
        head = path.read_bytes().split(b"\n", 1)[0]
        assert head.startswith(b"# expect: "), f"{path.name}: the first line is not '# expect:'"


def test_known_bugs_name_existing_fixtures() -> None:
    assert set(KNOWN_BUGS) <= {p.stem for p in INVALID}


def test_minimal_policy_is_clean() -> None:
    report = validate_paths([MINIMAL])
    assert report.diagnostics == []
    assert report.errors == report.warnings == 0
    assert len(report.policies) == 1 and report.policies[0].ok


def test_every_code_has_a_fixture() -> None:
    in_headers = {code for path in INVALID for code, _, _ in expected(path)}
    covered = in_headers | set(MULTI_FILE_CODES) | set(RUN_CODES)
    assert set(CODES) - covered == set(), "codes with no fixture and no multi-file test"
    assert covered - set(CODES) == set(), "fixtures or tests for codes that no longer exist"
    # and by a fixture that passes, not only by one documenting a known bug
    passing = {code for path in INVALID if path.stem not in KNOWN_BUGS
               for code, _, _ in expected(path)}
    assert set(CODES) - set(MULTI_FILE_CODES) - set(RUN_CODES) - passing == set()


def test_run_codes_name_tests_that_exist() -> None:
    root = Path(__file__).resolve().parent.parent
    for where in RUN_CODES.values():
        module, _, function = where.partition("::")
        text = (root / module).read_text(encoding="utf-8")
        assert not function or f"def {function}(" in text, where


# --- messages carry the key facts ---------------------------------------------------------

def test_weights_sum_message_gives_the_actual_sum() -> None:
    diagnostic = the_one(fixture("weights_sum_to_95"), "E_WEIGHTS_SUM")
    assert "95%" in diagnostic.message
    assert "'rep'" in diagnostic.message
    assert "5%" in diagnostic.hint


def test_guardrail_message_quotes_the_guardrail_and_the_actual_value() -> None:
    diagnostic = the_one(fixture("customer_weight_below_20"), "E_GUARDRAIL")
    assert "raters.review_360.customer >= 20%" in diagnostic.message
    assert "raters.review_360.customer is 10%" in diagnostic.message
    assert "20% of every 360 review" in diagnostic.hint  # the guardrail's why


@pytest.mark.parametrize(
    ("stem", "code", "suggestion"),
    [
        ("unknown_fact_in_indicator", "E_EXPR_UNKNOWN_NAME", "did you mean 'revenue'?"),
        ("unknown_qualified_name_in_gate", "E_EXPR_UNKNOWN_NAME", "did you mean 'score.sales'?"),
        ("unknown_function", "E_EXPR_UNKNOWN_FUNCTION", "did you mean 'clamp'?"),
        ("unknown_gate_in_reward", "E_UNKNOWN_REFERENCE", "did you mean 'enough_sales'?"),
        ("period_misspelt", "E_SCHEMA", "did you mean 'quarter'?"),
    ],
)
def test_did_you_mean(stem: str, code: str, suggestion: str) -> None:
    assert suggestion in the_one(fixture(stem), code).message


def test_misspelt_key_suggests_the_right_one() -> None:
    messages = [d.message for d in diagnostics(fixture("unknown_key_misspelt"))]
    assert any("zero_att" in m and "did you mean 'zero_at'?" in m for m in messages)


def test_other_messages_name_what_is_wrong() -> None:
    assert "first on line 17" in the_one(fixture("duplicate_key"), "E_YAML_DUPLICATE_KEY").message
    gap = the_one(fixture("tier_bands_gap"), "E_TIERS_GAP")
    assert "0.8" in gap.message and "0.9" in gap.message
    overlap = the_one(fixture("tier_bands_overlap"), "E_TIERS_OVERLAP")
    assert "0.7" in overlap.message and "0.8" in overlap.message
    brackets = the_one(fixture("commission_brackets_not_increasing"), "E_BRACKETS_ORDER")
    assert "500000" in brackets.message and "1000000" in brackets.message
    cycle = the_one(fixture("indicator_cycle"), "E_CYCLE")
    assert "margin -> sales -> margin" in cycle.message
    negative = the_one(fixture("negative_weight_after_adjustment"), "E_WEIGHTS_NEGATIVE")
    assert "'cash'" in negative.message and "-10%" in negative.message
    effective = the_one(fixture("effective_until_before_from"), "E_EFFECTIVE_RANGE")
    assert "2024-12-31" in effective.message and "2025-01-01" in effective.message
    assert "zh" in the_one(fixture("label_missing_zh"), "E_LABEL_LANGUAGE").message
    assert "0xcf" in the_one(fixture("non_utf8"), "E_FILE_ENCODING").message
    assert "version 2" in the_one(fixture("format_version_2"), "E_FORMAT_VERSION").message
    assert "'quota'" in the_one(fixture("unused_fact"), "W_UNUSED_FACT").message
    tab = the_one(fixture("tab_indented"), "E_YAML_SYNTAX")
    assert "tab" in tab.message
    assert "never closed" in the_one(fixture("unterminated_string"), "E_YAML_SYNTAX").message


def test_unmatched_closing_bracket_is_not_called_unclosed() -> None:
    message = the_one(fixture("unmatched_closing_bracket"), "E_EXPR_SYNTAX").message
    assert "ends before a bracket is closed" not in message
    assert ")" in message


def test_warnings_are_warnings_and_errors_are_errors() -> None:
    for path in INVALID:
        for diagnostic in diagnostics(path):
            want = Severity.WARNING if diagnostic.code.startswith("W_") else Severity.ERROR
            assert diagnostic.severity is want, (path.name, diagnostic)


# --- several files, or special setup -------------------------------------------------------

def policy(directory: Path, name: str, *, policy_id: str = "minimal", version: str = "1",
           start: str = "2025-01-01", until: str | None = "2025-12-31", role: str = "rep",
           extra_fact: bool = False) -> Path:
    """minimal.yaml with another id, version, effective range or role code."""
    text = MINIMAL.read_text(encoding="utf-8")
    effective = f"{{from: {start}, until: {until}}}" if until else f"{{from: {start}}}"
    text = text.replace("policy: minimal", f"policy: {policy_id}")
    text = text.replace('version: "1"', f'version: "{version}"')
    text = text.replace("effective: {from: 2025-01-01, until: 2025-12-31}",
                        f"effective: {effective}")
    text = text.replace("  rep:\n", f"  {role}:\n")
    if extra_fact:
        text = text.replace("facts:\n", "facts:\n  unused: {type: number, label: {en: Unused}}\n")
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def where(path: Path, key: str) -> tuple[int, int]:
    """Line and column of the value of a top-level key, as validate reports it."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(f"{key}:"):
            return number, len(key) + 3
    raise AssertionError(f"no {key} in {path}")


def codes(report_diagnostics: list[Diagnostic]) -> list[str]:
    return [d.code for d in report_diagnostics]


def test_overlapping_versions_of_one_policy(tmp_path: Path) -> None:
    first = policy(tmp_path, "b-2025.yaml", version="2025.1")
    later = policy(tmp_path, "a-2025h2.yaml", version="2025.2", start="2025-07-01", until=None)
    found = diagnostics(first, later)
    assert codes(found) == ["E_EFFECTIVE_OVERLAP"]
    overlap = found[0]
    # the location is in the later version (by start date, whatever the file names)
    assert overlap.location.file == str(later)
    assert (overlap.location.line, overlap.location.column) == where(later, "effective")
    assert "2025.1" in overlap.message and "2025.2" in overlap.message
    assert "2025-07-01" in overlap.message and "2025-12-31" in overlap.message


def test_consecutive_versions_do_not_overlap(tmp_path: Path) -> None:
    first = policy(tmp_path, "h1.yaml", version="2025.1", until="2025-06-30")
    second = policy(tmp_path, "h2.yaml", version="2025.2", start="2025-07-01", until=None)
    assert diagnostics(first, second) == []


def test_same_policy_and_version_twice(tmp_path: Path) -> None:
    one = policy(tmp_path, "one.yaml")
    two = policy(tmp_path, "two.yaml")
    found = diagnostics(one, two)
    assert codes(found) == ["E_DUPLICATE_POLICY"]  # and no E_EFFECTIVE_OVERLAP on top
    duplicate = found[0]
    assert duplicate.location.file == str(two)
    assert (duplicate.location.line, duplicate.location.column) == where(two, "version")
    assert "'minimal'" in duplicate.message and str(one) in duplicate.message


def test_two_policies_covering_one_role_at_once(tmp_path: Path) -> None:
    alpha = policy(tmp_path, "alpha.yaml", policy_id="alpha")
    beta = policy(tmp_path, "beta.yaml", policy_id="beta", start="2025-04-01", until="2025-06-30")
    found = diagnostics(alpha, beta)
    assert codes(found) == ["E_EFFECTIVE_OVERLAP"]
    overlap = found[0]
    assert overlap.location.file == str(beta)
    assert (overlap.location.line, overlap.location.column) == where(beta, "effective")
    assert "'alpha'" in overlap.message and "'beta'" in overlap.message
    assert "'rep'" in overlap.message
    assert "2025-04-01" in overlap.message and "2025-06-30" in overlap.message


def test_two_policies_for_different_roles_may_overlap(tmp_path: Path) -> None:
    alpha = policy(tmp_path, "alpha.yaml", policy_id="alpha")
    beta = policy(tmp_path, "beta.yaml", policy_id="beta", role="director")
    assert diagnostics(alpha, beta) == []


def test_directory_without_policies(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("not a policy\n", encoding="utf-8")
    (tmp_path / "fixture.test.yaml").write_text("meritpay: 1\n", encoding="utf-8")
    report = validate_paths([tmp_path])
    assert [(d.code, d.severity, d.location.file) for d in report.diagnostics] == [
        ("W_NO_POLICIES", Severity.WARNING, str(tmp_path))]
    assert report.errors == 0 and report.warnings == 1
    assert report.files == []


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InputError) as caught:
        validate_paths([missing])
    assert caught.value.exit_code == 2
    assert [(d.code, d.location.file) for d in caught.value.diagnostics] == [
        ("E_FILE_UNREADABLE", str(missing))]


def test_file_over_5_mb_is_too_large(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"# padding\n" * (5 * 1024 * 1024 // 10 + 1))
    assert huge.stat().st_size > 5 * 1024 * 1024
    with pytest.raises(InputError) as caught:
        validate_paths([huge])
    assert caught.value.exit_code == 2
    assert [(d.code, d.location.file) for d in caught.value.diagnostics] == [
        ("E_FILE_TOO_LARGE", str(huge))]
    assert "5,242,880" in caught.value.diagnostics[0].message


def test_order_of_paths_does_not_change_the_output(tmp_path: Path) -> None:
    a = policy(tmp_path, "a.yaml", version="2", start="2025-06-01", until=None, extra_fact=True)
    b = policy(tmp_path, "b.yaml", version="1", extra_fact=True)
    forwards, backwards = diagnostics(a, b), diagnostics(b, a)
    assert sorted(codes(forwards)) == ["E_EFFECTIVE_OVERLAP", "W_UNUSED_FACT", "W_UNUSED_FACT"]
    assert forwards == backwards
    assert validate_paths([tmp_path]).diagnostics == forwards


def test_overlap_is_found_between_dates_of_any_year(tmp_path: Path) -> None:
    """Open-ended versions overlap every later one; the message has no 'to' date then."""
    old = policy(tmp_path, "old.yaml", version="1", start="2024-01-01", until=None)
    new = policy(tmp_path, "new.yaml", version="2", start="2026-01-01", until=None)
    found = diagnostics(old, new)
    assert codes(found) == ["E_EFFECTIVE_OVERLAP"]
    assert found[0].location.file == str(new)
    assert str(date(2026, 1, 1)) in found[0].message and " to " not in found[0].message
