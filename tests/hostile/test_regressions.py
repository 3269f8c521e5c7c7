"""Regressions: each test is named after a hole hostile input found, and pins its fix."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from engine import InputError
from engine.evaluate import EmployeeInput, EvaluationError, evaluate_employee
from engine.expr import (
    MISSING,
    NUMBER,
    MissingValue,
    Scope,
    check_expression,
    compile_expression,
)
from engine.load import load_document
from engine.run import RunInputs, load_policies, run

HEAD = """meritpay: 1
policy: p
version: "1"
effective: {from: 2025-01-01}
period: quarter
currency: CNY
facts:
  revenue: {type: money, label: Revenue}
  quota: {type: money, label: Quota}
"""
ROLE = """roles:
  rep: {label: Rep, weights: {sales: 100%}}
"""
FACTS = "employee,period,role,revenue,quota\nE1,2025-07,rep,100,0\nE1,2025-08,rep,,0\n" \
        "E1,2025-09,rep,5,0\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def policy(tmp_path: Path, body: str) -> Path:
    return write(tmp_path, "p.yaml", HEAD + body)


def indicator(value: str, extra: str = "") -> str:
    return f"""indicators:
  sales:
    kind: result
    label: Sales
    value: "{value}"
    score: {{curve: linear, zero_at: 0, full_at: 100}}{extra}
"""


def run_policy(tmp_path: Path, body: str, facts: str = FACTS) -> Any:
    return run(load_policies([policy(tmp_path, body)]),
               RunInputs(facts=write(tmp_path, "facts.csv", facts)), "2025-Q3")


def evaluation_error(tmp_path: Path, body: str, facts: str = FACTS) -> tuple[str, int, str]:
    with pytest.raises(EvaluationError) as caught:
        run_policy(tmp_path, body, facts)
    diagnostic = caught.value.diagnostics[0]
    return diagnostic.code, diagnostic.location.line, diagnostic.message


SCOPE = Scope({"revenue": NUMBER, "region": "text", "tags": "list"},
              inner=Scope({"revenue": NUMBER, "region": "text", "tags": "list"},
                          is_inner=True))


def refused(text: str) -> list[str]:
    checked, problems = check_expression(text, SCOPE)
    assert checked is None, text
    return [p.code for p in problems]


# --- evaluation: every failure is the engine's own error ----------------------------------

def test_a_gate_dividing_by_zero_was_a_raw_traceback(tmp_path: Path) -> None:
    body = indicator("revenue") + """gates:
  g: {when: "revenue / quota > 1", why: x}
rewards:
  bonus: {kind: amount, label: B, amount: "1", requires: {gate: g, else: "0"}}
""" + ROLE
    code, line, message = evaluation_error(tmp_path, body)
    assert (code, line) == ("E_EVAL_DIVIDE_BY_ZERO", 17)
    assert "gate 'g'" in message and "revenue / quota > 1" in message and "E1" in message


def test_a_month_missing_inside_mean_of_months_was_a_type_error(tmp_path: Path) -> None:
    code, line, message = evaluation_error(tmp_path, indicator("mean(months(revenue))") + ROLE)
    assert (code, line) == ("E_EVAL_MISSING_FACT", 14)
    assert "revenue is missing" in message


def test_a_month_missing_inside_mean_of_months_takes_the_declared_fallback(
        tmp_path: Path) -> None:
    result = run_policy(tmp_path, indicator("mean(months(revenue))",
                                            "\n    missing: zero") + ROLE)
    assert result.results[0].indicators[0].value == 0


def test_every_month_with_a_month_missing_was_a_type_error() -> None:
    checked, _ = check_expression("every_month(revenue > 0)", SCOPE)
    assert checked is not None
    function = compile_expression(checked)

    def env(*values: Any) -> Any:
        return MappingProxyType({"@months": tuple({"revenue": v} for v in values)})

    assert function(env(Decimal(1), Decimal(2))) is True
    assert function(env(Decimal(1), MISSING, Decimal(0))) is False  # a month fails: false
    with pytest.raises(MissingValue):  # none fails, one is unknown: missing, not false
        function(env(Decimal(1), MISSING))


def test_an_amount_beyond_the_precision_was_a_raw_traceback(tmp_path: Path) -> None:
    body = indicator("revenue") + """rewards:
  bonus: {kind: amount, label: B, amount: "revenue ** 10 * 1000000000000000000000000"}
""" + ROLE
    code, line, message = evaluation_error(tmp_path, body)
    assert (code, line) == ("E_EVAL_ARITHMETIC", 17)
    assert "reward 'bonus'" in message


def test_round_beyond_the_precision_was_silently_scored_as_a_division_by_zero(
        tmp_path: Path) -> None:
    """divide_by_zero: zero used to catch every InvalidOperation: an indicator whose
    round() overflowed the precision silently scored 0."""
    body = indicator("round(revenue * 100000000000000000000000, 6)",
                     "\n    divide_by_zero: zero") + ROLE
    code, _, message = evaluation_error(tmp_path, body)
    assert code == "E_EVAL_ARITHMETIC" and "indicator 'sales'" in message


def test_zero_divided_by_zero_still_takes_the_divide_by_zero_fallback(tmp_path: Path) -> None:
    body = indicator("quota / quota", "\n    divide_by_zero: zero") + ROLE
    result = run_policy(tmp_path, body, FACTS.replace(",,0", ",1,0"))
    assert result.results[0].indicators[0].value == 0


def test_a_curve_expression_reading_a_missing_fact_was_a_type_error(tmp_path: Path) -> None:
    body = """indicators:
  sales:
    kind: result
    label: Sales
    value: revenue
    score: {curve: expression, expr: "value / quota"}
""" + ROLE
    facts = "employee,period,role,revenue,quota\nE1,2025-07,rep,100,\n"
    code, _, message = evaluation_error(tmp_path, body, facts)
    assert code == "E_EVAL_MISSING_FACT" and "quota" in message


def test_expressions_were_given_the_evaluators_own_mutable_environment(tmp_path: Path) -> None:
    seen: list[Any] = []
    policies = load_policies([policy(tmp_path, indicator("revenue") + ROLE)])
    compiled = policies[0]
    original = compiled.indicators[0].value.function  # type: ignore[union-attr]

    def spy(env: Any) -> Any:
        seen.append(env)
        return original(env)

    object.__setattr__(compiled.indicators[0].value, "function", spy)
    item = EmployeeInput("E1", "", "rep", "", ("2025-07",), {"revenue": Decimal(1),
                                                             "quota": Decimal(1)})
    evaluate_employee(compiled, item)
    assert seen and all(isinstance(env, MappingProxyType) for env in seen)


# --- the checker: a value of the wrong kind used to reach Python at run time ----------------

@pytest.mark.parametrize(("text", "code"), [
    ("min(['a', 'b'])", "E_EXPR_TYPE"),          # gave text typed as a number
    ("sum(tags)", "E_EXPR_TYPE"),                # Decimal + str
    ("max(months(region))", "E_EXPR_TYPE"),
    ("mean([1, 'a'])", "E_EXPR_TYPE"),
    ("round(months(revenue), 2)", "E_EXPR_ARGUMENTS"),  # tuple.quantize
    ("abs(months(revenue))", "E_EXPR_ARGUMENTS"),
    ("clamp(months(revenue), 0, 1)", "E_EXPR_ARGUMENTS"),
    ("safe_div(months(revenue), 2, 0)", "E_EXPR_ARGUMENTS"),
    ("min(months(revenue), 3)", "E_EXPR_ARGUMENTS"),   # tuple < Decimal
    ("min([])", "E_EXPR_ARGUMENTS"),                    # min() of an empty sequence
    ("months(revenue) < months(revenue)", "E_EXPR_TYPE"),
    ("[1] < [2]", "E_EXPR_TYPE"),
    ("every_month(revenue)", "E_EXPR_TYPE"),            # truthiness of a number
    ("consecutive_years(region, 3)", "E_EXPR_TYPE"),
    ("1e3 * revenue", "E_EXPR_FORBIDDEN"),              # 1e999999999 overflowed later
    ("revenue * 1e999999999", "E_EXPR_FORBIDDEN"),
    ("revenue * 10000000000000000000000000000", "E_EXPR_TOO_COMPLEX"),  # 29 digits, inexact
    ("revenue # + bonus", "E_EXPR_SYNTAX"),             # a comment silently cut the rest
    ("revenue\n# - penalty", "E_EXPR_SYNTAX"),
])
def test_values_of_the_wrong_kind_no_longer_reach_python(text: str, code: str) -> None:
    assert code in refused(text)


@pytest.mark.parametrize("text", ["revenue ** " + "-" * 1500 + "2",
                                  "round(revenue, " + "-" * 1500 + "2)",
                                  "last_periods(revenue, " + "-" * 1500 + "2)"])
def test_a_thousand_signs_before_an_exponent_overflowed_the_checkers_stack(text: str) -> None:
    """Found by the 1,000,000-mutation run: the literal reader recursed once per sign
    before the depth limit was checked (RecursionError out of check_expression)."""
    assert refused(text) in (["E_EXPR_TOO_COMPLEX"], ["E_EXPR_ARGUMENTS"])


def test_lists_of_numbers_still_aggregate() -> None:
    for text in ("min([1, 2])", "max(months(revenue))", "count(months(region))",
                 "sum(last_periods(revenue, 2))", "count(tags)", "min(revenue, 3)"):
        checked, problems = check_expression(text, SCOPE)
        assert problems == [] and checked is not None, text


def test_the_parser_no_longer_prints_syntax_warnings(capfd: pytest.CaptureFixture[str]) -> None:
    check_expression("1if revenue else 2", SCOPE)
    check_expression("region == '\\w'", SCOPE)
    assert capfd.readouterr().err == ""


# --- YAML ----------------------------------------------------------------------------------

def test_a_yaml_number_of_5000_digits_was_a_raw_value_error() -> None:
    _, problems = load_document("meritpay: " + "9" * 5000 + "\n", "p.yaml")
    assert [(p.code, p.location.line, p.location.column) for p in problems] == [
        ("E_YAML_TOO_LARGE", 1, 11)]


@pytest.mark.parametrize("text", ["1e3", "1.5E-3", "-2e10", "1e999999999"])
def test_a_yaml_exponent_was_read_as_a_number_that_yaml_11_reads_as_text(text: str) -> None:
    _, problems = load_document(f"a: {text}\n", "p.yaml")
    assert [(p.code, p.location.line, p.location.column) for p in problems] == [
        ("E_YAML_AMBIGUOUS", 1, 4)]


# --- team pools ----------------------------------------------------------------------------

POOL = """  team_profit: {type: money, scope: team, label: Profit}
  headcount: {type: integer, scope: team, label: Heads}
indicators:
  sales:
    kind: result
    label: Sales
    value: revenue
    score: {curve: linear, zero_at: 0, full_at: 100}
gates:
  steady: {when: "every_month(team_profit > 0)", why: Steady}
rewards:
  share:
    kind: pool
    label: Share
    among: team
    split: equal
    amount: "AMOUNT"
""" + ROLE


def test_a_gate_walking_months_was_offered_to_a_pool_without_months(tmp_path: Path) -> None:
    from engine.validate import validate_paths

    path = policy(tmp_path, POOL.replace("AMOUNT", "team_profit if gate.steady else 0"))
    report = validate_paths([path])
    assert [d.code for d in report.diagnostics if d.severity.value == "error"] == [
        "E_EXPR_UNKNOWN_NAME"]


def test_a_pool_dividing_by_zero_was_a_raw_traceback(tmp_path: Path) -> None:
    path = policy(tmp_path, POOL.replace("AMOUNT", "team_profit / headcount"))
    facts = write(tmp_path, "facts.csv", "employee,period,role,revenue\nE1,2025-07,rep,1\n")
    teams = write(tmp_path, "teams.csv", "team,member,share\nT,E1,1\n")
    team_facts = write(tmp_path, "team_facts.csv",
                       "team,period,team_profit,headcount\nT,2025-07,100,0\n")
    with pytest.raises(EvaluationError) as caught:
        run(load_policies([path]), RunInputs(facts=facts, teams=teams, team_facts=team_facts),
            "2025-Q3")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "E_EVAL_DIVIDE_BY_ZERO" and "team T" in diagnostic.message


# --- side tables ---------------------------------------------------------------------------

RATED = HEAD + """indicators:
  review:
    kind: composite
    label: Review
    raters:
      scale: {min: 1, max: 5}
      missing_group: renormalize
      groups:
        superior: {weight: 100%, label: Superior}
roles:
  rep: {label: Rep, weights: {review: 100%}}
"""


def test_ratings_after_a_multi_line_comment_were_numbered_by_record_not_line(
        tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", RATED)
    ratings = write(tmp_path, "ratings.csv", 'employee,period,group,rater,score,comment\n'
                    'E1,2025-Q3,superior,R1,3,"two\nlines"\nE1,2025-Q3,superior,R2,١٢,x\n')
    facts = write(tmp_path, "facts.csv", "employee,period,role,revenue\nE1,2025-07,rep,1\n")
    with pytest.raises(InputError) as caught:
        run(load_policies([path]), RunInputs(facts=facts, ratings=ratings), "2025-Q3")
    location = caught.value.diagnostics[0].location
    assert (caught.value.diagnostics[0].code, location.line, location.column) == (
        "E_RATINGS", 4, 5)


def test_a_ratings_file_with_a_broken_quote_was_read_leniently(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", RATED)
    ratings = write(tmp_path, "ratings.csv",
                    'employee,period,group,rater,score\nE1,2025-Q3,superior,"R1"x,3\n')
    facts = write(tmp_path, "facts.csv", "employee,period,role,revenue\nE1,2025-07,rep,1\n")
    with pytest.raises(InputError) as caught:
        run(load_policies([path]), RunInputs(facts=facts, ratings=ratings), "2025-Q3")
    diagnostic = caught.value.diagnostics[0]
    assert (diagnostic.code, diagnostic.location.line) == ("E_RATINGS", 2)


def test_team_rows_after_a_multi_line_cell_were_numbered_by_record_not_line(
        tmp_path: Path) -> None:
    from engine.tables import read_teams

    teams = write(tmp_path, "teams.csv",
                  'team,member,share,role_in_team\nT,E1,1,"a\nb"\nT,E2,0,x\n')
    with pytest.raises(InputError) as caught:
        read_teams(teams, {"2025-Q3"})
    location = caught.value.diagnostics[0].location
    assert (location.line, location.column) == (4, 3)


def test_diff_by_a_column_of_a_malformed_json_file_was_an_internal_error(
        tmp_path: Path) -> None:
    path = policy(tmp_path, indicator("revenue") + ROLE)
    facts = write(tmp_path, "facts.json", '[{"employee": "E1", "period": "2025-07",')
    result = CliRunner().invoke(main, ["diff", str(path), str(path), "--facts", str(facts),
                                       "--period", "2025-Q3", "--by", "grade"])
    assert result.exit_code == 2, result.output
    assert "facts.json:1:" in result.stderr and "E_FACTS" in result.stderr


def test_a_data_file_over_the_limit_is_refused_before_it_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import facts as facts_module
    from engine.facts import read_facts

    monkeypatch.setattr(facts_module, "MAX_DATA_BYTES", 100)
    path = write(tmp_path, "facts.csv", "employee,period,role\n"
                 + "".join(f"E{n},2025-07,rep\n" for n in range(10)))
    with pytest.raises(InputError) as caught:
        read_facts(path, {})
    assert caught.value.diagnostics[0].code == "E_FILE_TOO_LARGE"
    assert "MERITPAY_MAX_DATA_BYTES" in caught.value.diagnostics[0].hint
    # 21 + 10 x 15 = 171 bytes: read once the limit is raised on purpose
    monkeypatch.setenv("MERITPAY_MAX_DATA_BYTES", "171")
    assert len(read_facts(path, {}).rows) == 10
    monkeypatch.setenv("MERITPAY_MAX_DATA_BYTES", "170")
    with pytest.raises(InputError):
        read_facts(path, {})
    monkeypatch.setenv("MERITPAY_MAX_DATA_BYTES", "16 GB")
    with pytest.raises(InputError) as caught:
        read_facts(path, {})
    assert "is not a number of bytes" in caught.value.diagnostics[0].message


# --- messages and the command line ----------------------------------------------------------

def test_control_characters_from_an_input_file_reached_the_terminal(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", RATED)
    ratings = write(tmp_path, "ratings.csv", "employee,period,group,rater,score\n"
                    "E1,2025-Q3,super\x1b[2Jior,R1,3\n")
    facts = write(tmp_path, "facts.csv", "employee,period,role,revenue\nE1,2025-07,rep,1\n")
    result = CliRunner().invoke(main, ["run", str(path), "--facts", str(facts), "--ratings",
                                       str(ratings), "--period", "2025-Q3", "--no-ledger"])
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\\x1b[2J" in result.stderr


def test_an_unexpected_exception_was_a_traceback_unless_debug(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.run

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr(engine.run, "run", boom)
    path = policy(tmp_path, indicator("revenue") + ROLE)
    facts = write(tmp_path, "facts.csv", FACTS)
    args = ["run", str(path), "--facts", str(facts), "--period", "2025-Q3", "--no-ledger"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 3
    assert result.stderr.startswith("meritpay: internal error: KeyError: 'surprise'\n")
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    debug = CliRunner().invoke(main, ["--debug", *args])
    assert isinstance(debug.exception, KeyError)  # re-raised: click's runner holds it


def test_output_to_dev_null_replaced_the_device_as_root(tmp_path: Path) -> None:
    from engine.report import write_atomically

    before = os.stat(os.devnull)
    write_atomically(Path(os.devnull), "discarded\n")
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_output_to_dev_full_is_a_clear_exit_3(tmp_path: Path) -> None:
    path = policy(tmp_path, indicator("revenue") + ROLE)
    facts = write(tmp_path, "facts.csv", FACTS.replace(",0", ",1"))
    result = CliRunner().invoke(main, ["run", str(path), "--facts", str(facts), "--period",
                                       "2025-Q3", "--no-ledger", "-o", "/dev/full"])
    assert result.exit_code == 3
    assert result.stderr.strip().endswith("cannot write /dev/full: No space left on device")


@pytest.mark.parametrize(("target", "words"), [("missing/out.csv", "does not exist"),
                                               (".", "it is a folder")])
def test_output_into_a_missing_folder_or_onto_a_folder_is_bad_usage(
        tmp_path: Path, target: str, words: str) -> None:
    path = policy(tmp_path, indicator("revenue") + ROLE)
    facts = write(tmp_path, "facts.csv", FACTS.replace(",0", ",1"))
    result = CliRunner().invoke(main, ["run", str(path), "--facts", str(facts), "--period",
                                       "2025-Q3", "--no-ledger", "-o", str(tmp_path / target)])
    assert result.exit_code == 2 and words in result.stderr


def test_write_atomically_now_syncs_the_folder_after_the_rename(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import report

    synced: list[str] = []
    real = os.fsync

    def fsync(handle: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(handle).st_mode) else "file")
        real(handle)

    monkeypatch.setattr(report.os, "fsync", fsync)
    report.write_atomically(tmp_path / "out.csv", "a,b\n")
    assert synced == ["file", "dir"]
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == "a,b\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


# --- found by the money properties and the resource bombs -----------------------------------

def test_a_negative_amount_rounding_to_zero_was_written_minus_zero(tmp_path: Path) -> None:
    body = indicator("revenue") + """rewards:
  fee: {kind: amount, label: Fee, amount: "revenue * -0.001%"}
""" + ROLE
    result = run_policy(tmp_path, body, "employee,period,role,revenue,quota\n"
                        "E1,2025-07,rep,100,1\n")
    from engine.report import render_csv

    fee = result.results[0].reward("fee").amount
    assert str(fee) == "0.00" and str(result.results[0].total_pay) == "0.00"
    assert "-0.00" not in render_csv(result)


def test_millions_of_small_yaml_values_were_composed_before_the_limit_applied(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """4.9 MB of `- {a: 1, b: 2, c: 3}` took 55 s and 1 GB before the node budget, which
    applied only after composing; the composer now stops at the budget."""
    from engine import load

    calls = [0]
    compose = load._Composer.compose_node

    def counted(self: Any, parent: Any, index: Any) -> Any:
        calls[0] += 1
        return compose(self, parent, index)

    monkeypatch.setattr(load._Composer, "compose_node", counted)
    monkeypatch.setattr(load, "MAX_NODES", 1000)  # the same, faster
    text = "items:\n" + "- {a: 1, b: 2, c: 3}\n" * 3_000  # 21,000 values
    document, problems = load_document(text, "p.yaml")
    assert document is None
    assert [(p.code, p.location.line) for p in problems] == [("E_YAML_TOO_LARGE", 144)]
    assert calls[0] == 1001


def test_a_csv_was_copied_whole_into_a_stringio_at_four_bytes_a_character(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CSV reader now takes lines a megabyte at a time; cut into tiny chunks, every
    line ending and a quoted line break still read the same."""
    from engine import facts as facts_module
    from engine.facts import read_facts

    path = tmp_path / "facts.csv"
    path.write_bytes(b"employee,period,role,name\r\nE1,2025-07,rep,\"two\r\nlines\"\r"
                     b"E2,2025-07,rep,b\nE3,2025-08,rep,c")
    whole = read_facts(path, {})
    monkeypatch.setattr(facts_module, "_CHUNK", 3)
    chunked = read_facts(path, {})
    assert [(r.employee, r.name, r.row) for r in chunked.rows] == [
        (r.employee, r.name, r.row) for r in whole.rows] == [
        ("E1", "two\r\nlines", 2), ("E2", "b", 4), ("E3", "c", 5)]


def test_every_command_maps_its_errors_to_exit_codes_at_the_edge() -> None:
    """Each command that reads input is wrapped by handle_errors, the one place exceptions
    become exit codes (0 ok, 1 findings, 2 bad input or usage, 3 environment)."""
    import ast

    tree = ast.parse((Path(__file__).resolve().parents[2] / "cli.py").read_text(
        encoding="utf-8"))
    unwrapped = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [ast.unparse(d) for d in node.decorator_list]
        if any(d.startswith("main.command") for d in decorators) and node.name != "list_codes" \
                and "handle_errors" not in decorators:
            unwrapped.append(node.name)
    assert unwrapped == []


@pytest.mark.parametrize(("error", "code", "words"), [
    (MemoryError(), 3, "out of memory"),
    (PermissionError(13, "Permission denied", "/x/y"), 3, "Permission denied: /x/y"),
    (RecursionError("deep"), 3, "internal error: RecursionError"),
])
def test_an_error_at_the_edge_is_one_line_and_its_exit_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, code: int,
        words: str) -> None:
    import engine.run

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(engine.run, "run", fail)
    path = policy(tmp_path, indicator("revenue") + ROLE)
    facts = write(tmp_path, "facts.csv", FACTS)
    result = CliRunner().invoke(main, ["run", str(path), "--facts", str(facts), "--period",
                                       "2025-Q3", "--no-ledger"])
    assert result.exit_code == code and words in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") <= 2


@pytest.mark.parametrize(("policy_path", "facts", "where"), [
    ("/etc/passwd", "[]", (2, 9)),
    ("../outside.yaml", "[]", (2, 9)),
    ("p.yaml", "/proc/self/environ", (4, 24)),
    ("p.yaml", "../../secrets.csv", (4, 24)),
    ("p.yaml", "link/facts.csv", (4, 24)),  # a symlink out of the folder
])
def test_a_test_file_could_make_meritpay_test_read_any_file(
        tmp_path: Path, policy_path: str, facts: str, where: tuple[int, int]) -> None:
    """A .test.yaml arrives in a pull request; its paths used to be followed anywhere, and
    a file's cells are quoted in messages: CI logs could show a secret."""
    from engine.cases import run_test_file

    folder = tmp_path / "tests"
    folder.mkdir()
    (folder / "p.yaml").write_text(HEAD + indicator("revenue") + ROLE, encoding="utf-8")
    (folder / "link").symlink_to(tmp_path)
    target = folder / "x.test.yaml"
    target.write_text(f"meritpay-test: 1\npolicy: {policy_path}\ncases:\n"
                      f"  - {{name: one, facts: {facts}, expect: {{}}}}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        run_test_file(target)
    assert [(d.code, d.location.line, d.location.column) for d in caught.value.diagnostics] == [
        ("E_TEST_PATH", *where)]
