"""`meritpay test`: policy test files run as HR sees them, with coverage, JSON and JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from cli import main
from engine.cases import run_suite
from engine.coverage import parse_minimum
from engine.evaluate import bracket_index, step_index
from engine.model import Bracket, Curve

ROOT = Path(__file__).resolve().parent.parent

# One gate, one indicator, three bands, three brackets: 11 coverage items.
SMALL = """\
meritpay: 1
policy: small
version: "1"
effective: {from: 2025-01-01}
period: quarter
currency: CNY
facts:
  revenue: {type: money, label: Revenue}
  quota: {type: money, label: Quota}
  margin: {type: ratio, label: Margin}
indicators:
  attainment:
    kind: result
    label: Attainment
    value: revenue / quota
    score: {curve: linear, zero_at: 0, full_at: 100%, cap: 2}
roles:
  rep: {label: Rep, weights: {attainment: 100%}}
gates:
  margin_ok:
    when: margin >= 15%
    why: A margin of at least 15%
tiers:
  bands:
    - {name: low, from: 0, to: 0.8, multiplier: 0, label: Low}
    - {name: mid, from: 0.8, to: 1.2, multiplier: 1, label: Mid}
    - {name: high, from: 1.2, multiplier: 1.5, label: High}
rewards:
  commission:
    kind: commission
    label: Commission
    base: revenue
    mode: whole
    brackets: [{upto: 1000, rate: 1%}, {upto: 2000, rate: 2%}, {rate: 3%}]
    requires: {gate: margin_ok, else: {rate: 1%}}
"""
GATE_LINE, TIERS_LINE, INDICATOR_LINE, REWARD_LINE = 20, 23, 12, 29

# E1: 1,500 / 1,000 = 1.5 -> high; margin 20%: 1,500 x 2% = 30.00 (bracket 2).
# E2: 500 / 1,000 = 0.5 -> low; margin 20%: 500 x 1% = 5.00 (bracket 1).
TESTS = """\
meritpay-test: 1
policy: small.yaml
period: 2025-Q3
cases:
  - name: above target
    facts:
      - {employee: E1, role: rep, period: 2025-07, revenue: 1500, quota: 1000, margin: 0.2}
    expect:
      E1: {tier: high, gates: {margin_ok: true}, rewards: {commission: "30.00"}}
  - name: below target
    facts:
      - {employee: E2, role: rep, period: 2025-07, revenue: 500, quota: 1000, margin: 0.2}
    expect:
      E2: {tier: low, rewards: {commission: "5.00"}}
"""


def write(folder: Path, tests: str = TESTS, policy: str = SMALL) -> Path:
    (folder / "small.yaml").write_text(policy, encoding="utf-8")
    (folder / "small.test.yaml").write_text(tests, encoding="utf-8")
    return folder


def cli(*args: object) -> Result:
    return CliRunner().invoke(main, ["test", *map(str, args)], prog_name="meritpay")


def test_lines_of_the_small_policy_are_where_the_tests_say() -> None:
    lines = SMALL.splitlines()
    assert lines[GATE_LINE - 1].strip() == "margin_ok:"
    assert lines[TIERS_LINE - 1] == "tiers:"
    assert lines[INDICATOR_LINE - 1].strip() == "attainment:"
    assert lines[REWARD_LINE - 1].strip() == "commission:"


# --- pass, fail, exit codes ---------------------------------------------------------------

def test_passing_cases_print_pass_and_exit_0(tmp_path: Path) -> None:
    result = cli(write(tmp_path))
    assert result.exit_code == 0, result.output
    assert "PASS  above target (line 5)" in result.output
    assert "PASS  below target (line 10)" in result.output
    assert "2 case(s) in 1 file(s): 2 passed, 0 failed" in result.output


def test_a_failing_amount_shows_expected_actual_and_its_arithmetic(tmp_path: Path) -> None:
    result = cli(write(tmp_path, TESTS.replace('commission: "30.00"', 'commission: "31.00"')))
    assert result.exit_code == 1, result.output
    out = result.output
    assert "FAIL  above target (line 5)" in out
    assert "PASS  below target" in out
    assert "E1.rewards.commission: expected 31.00, got 30.00" in out
    # the reward's trace event with its arithmetic and its rule's line, then its gate
    assert f"reward commission ({tmp_path / 'small.yaml'}:{REWARD_LINE}): applied -> 30.00" in out
    assert "1,500.00 x 2% = 30.00" in out
    assert "gate margin_ok" in out and "reads: margin = 0.2" in out
    assert "2 case(s) in 1 file(s): 1 passed, 1 failed" in out


def test_a_failing_gate_shows_its_expression_and_the_values_it_read(tmp_path: Path) -> None:
    result = cli(write(tmp_path, TESTS.replace("margin_ok: true", "margin_ok: false")))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    at = lines.index("        E1.gates.margin_ok: expected false, got true")
    # the gate's event is at the line of its `when`
    assert lines[at + 1].strip() == (f"gate margin_ok ({tmp_path / 'small.yaml'}:"
                                     f"{GATE_LINE + 1}): applied -> true")
    assert lines[at + 2].strip() == "margin >= 15%"
    assert lines[at + 3].strip() == "reads: margin = 0.2"


def test_an_unexpected_evaluation_error_fails_the_case(tmp_path: Path) -> None:
    result = cli(write(tmp_path, TESTS.replace("quota: 1000, margin: 0.2}\n    expect:\n"
                                               "      E2", "quota: 0, margin: 0.2}\n"
                                               "    expect:\n      E2")))
    assert result.exit_code == 1
    assert "FAIL  below target" in result.output
    assert "E_EVAL_DIVIDE_BY_ZERO" in result.output


def test_a_malformed_test_file_is_exit_2_with_its_line(tmp_path: Path) -> None:
    result = cli(write(tmp_path, TESTS.replace("    expect:\n      E2", "    expekt:\n      E2")))
    assert result.exit_code == 2
    assert f"{tmp_path / 'small.test.yaml'}:13" in result.output
    assert "E_SCHEMA" in result.output


def test_a_missing_policy_is_exit_2(tmp_path: Path) -> None:
    result = cli(write(tmp_path, TESTS.replace("policy: small.yaml", "policy: smal.yaml")))
    assert result.exit_code == 2
    assert f"{tmp_path / 'small.test.yaml'}:2:9: E_TEST_POLICY" in result.output


def test_no_test_files_is_exit_2(tmp_path: Path) -> None:
    result = cli(tmp_path)
    assert result.exit_code == 2
    assert "no test files" in result.output


def test_an_unknown_expected_reward_is_bad_input_with_did_you_mean_and_line(
        tmp_path: Path) -> None:
    tests = TESTS.replace('rewards: {commission: "5.00"}', 'rewards: {comission: "5.00"}')
    result = cli(write(tmp_path, tests))
    assert result.exit_code == 2
    column = tests.splitlines()[13].index("comission") + 1
    assert f"{tmp_path / 'small.test.yaml'}:14:{column}: E_TEST_EXPECTATION" in result.output
    assert "money reward 'comission'" in result.output
    assert "did you mean 'commission'?" in result.output
    assert "PASS" not in result.output  # nothing ran


@pytest.mark.parametrize(("section", "name", "hint"), [
    ("gates", "margin_okay: true", "did you mean 'margin_ok'?"),
    ("indicators", "attainmant: {score: 1}", "did you mean 'attainment'?"),
    ("outcomes", "commission: true", "'commission' is a money reward: expect it under rewards"),
])
def test_every_unknown_expected_name_is_reported(tmp_path: Path, section: str, name: str,
                                                  hint: str) -> None:
    tests = TESTS.replace("E2: {tier: low,", f"E2: {{{section}: {{{name}}}, tier: low,")
    result = cli(write(tmp_path, tests))
    assert result.exit_code == 2, result.output
    assert "E_TEST_EXPECTATION" in result.output and hint in result.output


def test_an_unknown_tier_band_is_reported(tmp_path: Path) -> None:
    result = cli(write(tmp_path, TESTS.replace("tier: low", "tier: lowe")))
    assert result.exit_code == 2
    assert "tier 'lowe'" in result.output and "did you mean 'low'?" in result.output


# --- coverage ------------------------------------------------------------------------------

def test_coverage_counted_by_hand_on_a_small_policy(tmp_path: Path) -> None:
    # items: gate passes, gate fails; bands low, mid, high; attainment scored; commission paid;
    # brackets 1, 2, 3; the else branch = 11. Reached: passes, low, high, scored, paid,
    # brackets 1 (E2, 500) and 2 (E1, 1,500) = 7.
    suite = run_suite([write(tmp_path)])
    [small] = suite.coverage
    assert (small.policy, small.version, small.covered, small.total) == ("small", "1", 7, 11)
    assert small.percent == Decimal("63.6")
    assert [(i.line, i.text) for i in small.uncovered] == [
        (GATE_LINE, "gate margin_ok fails"),
        (TIERS_LINE, "tier band mid (from 0.8) is reached"),
        (REWARD_LINE, "reward commission reaches bracket 3 (open, 3%)"),
        (REWARD_LINE, "reward commission takes its else branch (gate margin_ok fails)"),
    ]


def test_coverage_is_printed_with_file_and_line_of_each_uncovered_item(tmp_path: Path) -> None:
    result = cli(write(tmp_path), "--coverage")
    assert result.exit_code == 0
    policy = tmp_path / "small.yaml"
    assert f"small 1 ({policy}): 63.6% (7 of 11 items)" in result.output
    assert f"{policy}:{GATE_LINE}: not covered: gate margin_ok fails" in result.output
    assert f"{policy}:{REWARD_LINE}: not covered: reward commission reaches bracket 3" \
        in result.output


def test_graduated_covers_every_bracket_the_base_reaches_into(tmp_path: Path) -> None:
    # 1,500 graduated is 1,000 x 1% + 500 x 2%: brackets 1 and 2 from E1 alone
    suite = run_suite([write(tmp_path, TESTS.replace('commission: "30.00"',
                                                     'commission: "20.00"'),
                             SMALL.replace("mode: whole", "mode: graduated"))])
    assert suite.failed == 0
    brackets = [(i.text, i.covered) for i in suite.coverage[0].items if i.kind == "bracket"]
    assert [covered for _, covered in brackets] == [True, True, False]


def test_the_else_branch_and_the_failed_gate_complete_the_coverage(tmp_path: Path) -> None:
    # E3: margin 10% fails the gate: 2,500 x 1% = 25.00; 1,000 / 1,000 -> mid. E4: 2,500 /
    # 1,000 = 2.5 -> high, margin 20% -> 2,500 x 3% = 75.00 (bracket 3). Now all 11.
    more = TESTS + """\
  - name: the rest
    facts:
      - {employee: E3, role: rep, period: 2025-07, revenue: 2500, quota: 2500, margin: 0.1}
      - {employee: E4, role: rep, period: 2025-07, revenue: 2500, quota: 1000, margin: 0.2}
    expect:
      E3: {tier: mid, gates: {margin_ok: false}, rewards: {commission: "25.00"}}
      E4: {tier: high, rewards: {commission: "75.00"}}
"""
    result = cli(write(tmp_path, more), "--coverage", "--min-coverage", "100%")
    assert result.exit_code == 0, result.output
    assert "100.0% (11 of 11 items)" in result.output


def test_min_coverage_below_exits_1_naming_the_policy_and_the_shortfall(tmp_path: Path) -> None:
    result = cli(write(tmp_path), "--min-coverage", "90%")
    assert result.exit_code == 1
    # 7 / 11 = 63.63...%: 26.36... points short, shown rounded up
    assert f"coverage of small 1 ({tmp_path / 'small.yaml'}) is 63.6%, 26.4 points below the " \
        "minimum 90%" in result.output
    assert "not covered: gate margin_ok fails" in result.output


def test_min_coverage_met_exits_0(tmp_path: Path) -> None:
    assert cli(write(tmp_path), "--min-coverage", "60").exit_code == 0


@pytest.mark.parametrize("bad", ["ninety", "120%", "-1%", "NaN"])
def test_a_bad_minimum_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    assert cli(write(tmp_path), "--min-coverage", bad).exit_code == 2
    with pytest.raises(ValueError):
        parse_minimum(bad)


def test_every_shipped_policy_has_a_test_file_beside_it_that_covers_it_fully() -> None:
    policies = sorted(p for p in (ROOT / "policies").rglob("*.yaml")
                      if not p.name.endswith(".test.yaml"))
    assert len(policies) == 8
    for policy in policies:
        assert policy.with_name(policy.stem + ".test.yaml").exists(), policy
    suite = run_suite([ROOT / "policies"])
    assert suite.failed == 0
    assert len(suite.coverage) == 8
    assert [(c.policy, c.version, c.uncovered) for c in suite.coverage if c.uncovered] == []


# --- JSON and JUnit ------------------------------------------------------------------------

def test_json_has_files_cases_summary_and_coverage(tmp_path: Path) -> None:
    result = cli(write(tmp_path, TESTS.replace('commission: "30.00"', 'commission: "31.00"')),
                 "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert list(data) == ["files", "cases", "summary", "coverage"]
    assert data["files"] == [str(tmp_path / "small.test.yaml")]
    assert data["summary"] == {"files": 1, "cases": 2, "passed": 1, "failed": 1}
    first = data["cases"][0]
    assert {k: first[k] for k in ("name", "file", "line", "passed", "error")} == {
        "name": "above target", "file": str(tmp_path / "small.test.yaml"), "line": 5,
        "passed": False, "error": ""}
    [mismatch] = first["mismatches"]
    assert (mismatch["path"], mismatch["expected"], mismatch["actual"]) == (
        "E1.rewards.commission", "31.00", "30.00")
    reward, gate = mismatch["explanation"]
    assert (reward["step"], reward["name"], reward["outcome"], reward["value"], reward["line"]) \
        == ("reward", "commission", "applied", "30.00", REWARD_LINE)
    assert "1,500.00 x 2%" in reward["detail"]
    assert (gate["step"], gate["reads"]) == ("gate", {"margin": "0.2"})
    assert data["cases"][1]["mismatches"] == [] and data["cases"][1]["passed"] is True
    [small] = data["coverage"]
    assert {k: small[k] for k in ("policy", "version", "covered", "total", "percent")} == {
        "policy": "small", "version": "1", "covered": 7, "total": 11, "percent": "63.6"}
    assert small["items"][0] == {"kind": "gate", "rule": "margin_ok",
                                 "item": "gate margin_ok passes", "line": GATE_LINE,
                                 "covered": True}


def test_junit_has_one_suite_per_file_and_one_case_per_case(tmp_path: Path) -> None:
    write(tmp_path, TESTS.replace('commission: "30.00"', 'commission: "31.00"'))
    other = tmp_path / "other"
    other.mkdir()
    write(other)
    report = tmp_path / "report.xml"
    result = cli(tmp_path, "--junit", report)
    assert result.exit_code == 1
    root = ET.parse(report).getroot()
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "4", "1")
    suites = root.findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in suites] == [
        (str(other / "small.test.yaml"), "2", "0"), (str(tmp_path / "small.test.yaml"), "2", "1")]
    failing = suites[1].findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in failing] == [
        (str(tmp_path / "small.test.yaml"), "above target"),
        (str(tmp_path / "small.test.yaml"), "below target")]
    failure = failing[0].find("failure")
    assert failure is not None and failing[1].find("failure") is None
    assert failure.get("message") == "E1.rewards.commission: expected 31.00, got 30.00"
    assert "1,500.00 x 2% = 30.00" in (failure.text or "")
    assert list(tmp_path.glob(".*tmp")) == []  # written atomically


# --- the evaluation facts coverage reads ---------------------------------------------------

def test_bracket_index_puts_a_base_on_an_upto_in_the_lower_bracket() -> None:
    brackets = (Bracket(Decimal(1000), Decimal("0.01")), Bracket(Decimal(2000), Decimal("0.02")))
    assert [bracket_index(brackets, Decimal(b)) for b in (0, 1000, 1001, 2000, 9000)] == [
        0, 0, 1, 1, 1]


def test_step_index_is_the_last_step_reached() -> None:
    curve = Curve("steps", steps=((Decimal(0), Decimal(0)), (Decimal("0.8"), Decimal("0.6"))))
    assert [step_index(curve, Decimal(v)) for v in ("-1", "0", "0.79", "0.8", "5")] == [
        None, 0, 0, 1, 1]


# --- pre-commit -----------------------------------------------------------------------------

def test_pre_commit_hooks_validate_changed_policies_and_run_the_tests() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load(
        (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))}
    assert set(hooks) == {"meritpay-validate", "meritpay-test"}
    validate, test = hooks["meritpay-validate"], hooks["meritpay-test"]
    assert (validate["entry"], validate["language"], validate["pass_filenames"]) == (
        "meritpay validate", "python", True)
    assert (test["entry"], test["language"], test["pass_filenames"]) == (
        "meritpay test", "python", False)
    assert validate["files"] == test["files"] == r"\.ya?ml$"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "id: meritpay-validate" in readme and "id: meritpay-test" in readme
