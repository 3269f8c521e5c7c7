"""`meritpay diff`: what changed, what it costs, who gains and loses and why."""

from __future__ import annotations

import html.parser
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main
from engine.diff import check_limits, diff, pseudonym
from engine.diffreport import render
from engine.run import RunInputs, load_policies, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden" / "diff"
UPDATE = bool(os.environ.get("MERITPAY_UPDATE_GOLDEN"))

POLICY = """meritpay: 1
policy: p
version: "VERSION"
effective: {from: FROM}
period: quarter
currency: CNY
facts:
  revenue: {type: money, label: Revenue}
  quota: {type: money, label: Quota}
  gross_profit: {type: money, label: Gross profit}
  gross_margin: {type: ratio, rollup: gross_profit / revenue, label: Margin}
indicators:
  attainment:
    kind: result
    label: Attainment
    value: revenue / quota
    score: {curve: linear, zero_at: 0, full_at: 1, cap: 2}
roles:
  rep: {label: Rep, weights: {attainment: 100%}}
gates:
  margin_floor: {when: gross_margin >= THRESHOLD, why: High rates need margin}
tiers:
  bands:
    - {name: below, from: 0, to: 0.8, multiplier: 0, label: Below}
    - {name: meets, from: 0.8, multiplier: 1, label: Meets}
rewards:
  commission:
    kind: commission
    label: Commission
    base: revenue
    mode: graduated
    brackets: [{upto: 1000, rate: 2%}, {rate: 4%}]
    requires: {gate: margin_floor, else: {rate: 2%}}
"""


def write_policy(folder: Path, version: str, threshold: str, start: str = "2025-01-01") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "p.yaml"
    path.write_text(POLICY.replace("VERSION", version).replace("THRESHOLD", threshold)
                    .replace("FROM", start), encoding="utf-8")
    return path


def facts_file(folder: Path, rows: list[tuple[str, int, int, int]]) -> Path:
    path = folder / "facts.csv"
    lines = ["employee,role,period,revenue,quota,gross_profit"]
    lines += [f"{e},rep,2025-07,{r},{q},{g}" for e, r, q, g in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_margin_gate_raised_from_15_to_18_percent(tmp_path: Path) -> None:
    # A: revenue 2,000, margin 16.2% (324 / 2,000): passes 15%, fails 18%
    #    old: 1,000 x 2% + 1,000 x 4% = 60.00; new: else rate 2,000 x 2% = 40.00 (-20.00)
    # B: margin 20% passes both: 60.00 either way
    old = load_policies([write_policy(tmp_path / "old", "1", "15%")])
    new = load_policies([write_policy(tmp_path / "new", "2", "18%", "2025-10-01")])
    facts = facts_file(tmp_path, [("A", 2000, 2000, 324), ("B", 2000, 2000, 400)])
    report = diff(old, new, RunInputs(facts=facts), "2025-Q3")
    changes = {(c.path, c.old, c.new) for c in report.policy_changes}
    assert ("gates.margin_floor.when", "gross_margin >= 15%", "gross_margin >= 18%") in changes
    assert [(e.employee, e.old_pay, e.new_pay) for e in report.employees] == [
        ("A", Decimal("60.00"), Decimal("40.00")), ("B", Decimal("60.00"), Decimal("60.00"))]
    assert report.employees[0].causes == (
        "gate margin_floor (gross_margin >= 15% -> gross_margin >= 18%): holds -> fails at "
        "gross_margin 16.2%",
        "reward commission: 60.00 -> 40.00")
    totals = report.totals()
    assert (totals.old, totals.new, totals.delta, totals.losers, totals.gainers) == (
        Decimal("120.00"), Decimal("100.00"), Decimal("-20.00"), 1, 0)
    assert totals.percent == Decimal("-16.67")  # -20 / 120 = -16.666...%


def test_limits_say_which_and_by_how_much(tmp_path: Path) -> None:
    old = load_policies([write_policy(tmp_path / "old", "1", "18%")])
    new = load_policies([write_policy(tmp_path / "new", "2", "15%", "2025-10-01")])
    facts = facts_file(tmp_path, [("A", 2000, 2000, 324), ("B", 2000, 2000, 400)])
    report = diff(old, new, RunInputs(facts=facts), "2025-Q3")
    # 100.00 -> 120.00 is +20%, over a 5% limit by 15 points
    breaches = check_limits(report, max_cost_increase=Decimal("0.05"), max_losers=0,
                            fail_on_change=True)
    assert [(b.limit, b.message) for b in breaches] == [
        ("--max-cost-increase", "total cost rises 20.00% (20.00), over the limit of 5.00% by "
                                "15.00%"),
        # version, effective.from and the gate threshold changed; B keeps 60.00, A moves
        ("--fail-on-change", "3 policy change(s) and 1 employee result(s) changed")]


money_rows = st.lists(
    st.tuples(st.integers(0, 10**7), st.integers(1, 10**7), st.integers(0, 10**6)),
    min_size=1, max_size=8)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(money_rows)
def test_a_policy_compared_with_itself_changes_nothing(tmp_path: Path,
                                                       rows: list[tuple[int, int, int]]) -> None:
    policy = load_policies([write_policy(tmp_path / "same", "1", "15%")])
    facts = facts_file(tmp_path, [(f"E{i}", r, q, min(g, r)) for i, (r, q, g) in
                                  enumerate(rows) if r > 0])
    if not any(r > 0 for r, _, _ in rows):
        return
    report = diff(policy, policy, RunInputs(facts=facts), "2025-Q3")
    assert report.policy_changes == ()
    assert all(e.delta == 0 and e.causes == () for e in report.employees)
    assert check_limits(report, fail_on_change=True) == []


# --- the shipped pair --------------------------------------------------------------------------

def shipped_inputs() -> RunInputs:
    return RunInputs(facts=EXAMPLES / "facts.csv", ratings=EXAMPLES / "ratings.csv",
                     teams=EXAMPLES / "teams.csv", team_facts=EXAMPLES / "team_facts.csv",
                     company_facts=EXAMPLES / "company_facts.csv", lines=EXAMPLES / "lines.csv",
                     expected_columns=("grade", "location", "gender"))


@pytest.fixture(scope="module")
def shipped_report() -> Iterator[object]:
    from engine.tables import read_columns

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # paths in the report are as given: relative to the checkout
        old = load_policies([Path("policies/2025-Q3")])
        new = load_policies([Path("policies/2025-Q4")])
        by = ("grade", "location", "gender")
        groups = read_columns(EXAMPLES / "facts.csv", by, {"2025-07", "2025-08", "2025-09"})
        yield diff(old, new, shipped_inputs(), "2025-Q3", by=by, groups=groups,
                   old_label="policies/2025-Q3", new_label="policies/2025-Q4")


def test_totals_equal_run_new_minus_run_old(shipped_report: object) -> None:
    old = run(load_policies([ROOT / "policies/2025-Q3"]), shipped_inputs(), "2025-Q3",
              ignore_effective=True)
    new = run(load_policies([ROOT / "policies/2025-Q4"]), shipped_inputs(), "2025-Q3",
              ignore_effective=True)
    totals = shipped_report.totals()  # type: ignore[attr-defined]
    assert totals.old == sum(r.total_pay for r in old.results)
    assert totals.new == sum(r.total_pay for r in new.results)
    assert totals.delta == totals.new - totals.old


@pytest.mark.parametrize(("fmt", "suffix"), [("text", "txt"), ("markdown", "md"),
                                             ("json", "json"), ("csv", "csv")])
def test_golden_output_of_the_shipped_pair(shipped_report: object, fmt: str,
                                           suffix: str) -> None:
    text = render(shipped_report, fmt)  # type: ignore[arg-type]
    golden = GOLDEN / f"shipped-2025-Q3.{suffix}"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), \
        f"{golden} differs: regenerate with MERITPAY_UPDATE_GOLDEN=1 after checking the change"


def test_markdown_shows_pseudonyms_unless_names_are_asked_for(shipped_report: object) -> None:
    hidden = render(shipped_report, "markdown")  # type: ignore[arg-type]
    shown = render(shipped_report, "markdown", show_names=True)  # type: ignore[arg-type]
    assert "E0145" not in hidden and pseudonym("E0145") in hidden
    assert "Ben Whitlock" not in hidden and "E0145 Ben Whitlock" in shown
    assert pseudonym("E0145") == pseudonym("E0145") != pseudonym("E0146")


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for _, value in attrs:
            if value and ("://" in value or value.startswith("//")):
                self.urls.append(value)


def test_html_is_self_contained_with_three_charts(shipped_report: object) -> None:
    page = render(shipped_report, "html")  # type: ignore[arg-type]
    parser = _Collector()
    parser.feed(page)
    assert parser.urls == []
    assert "http://" not in page and "https://" not in page
    assert parser.tags.count("svg") == 3
    assert parser.tags.count("rect") > 20
    assert "E0145" not in page  # pseudonymous by default


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium"
                                        if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.skipif(CHROMIUM is None, reason="needs /usr/bin/chromium (.ci/run installs "
                                              "Debian's chromium so CI always runs this)")
def test_html_renders_in_headless_chromium_without_console_errors(shipped_report: object,
                                                                  tmp_path: Path) -> None:
    page = tmp_path / "diff.html"
    page.write_text(render(shipped_report, "html"), encoding="utf-8")  # type: ignore[arg-type]
    assert CHROMIUM is not None
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
              "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 3 and dom.stdout.count("<rect") > 20
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    shot = tmp_path / "diff.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 10_000  # a page was painted


# --- the command -------------------------------------------------------------------------------

def cli(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_limit_exceeded_exits_1(tmp_path: Path) -> None:
    old = write_policy(tmp_path / "old", "1", "15%")
    new = write_policy(tmp_path / "new", "2", "18%", "2025-10-01")
    facts = facts_file(tmp_path, [("A", 2000, 2000, 324)])
    result = cli("diff", old, new, "--facts", facts, "--period", "2025-Q3", "--max-losers", "0")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "--max-losers: 1 people lose pay, over the limit of 0 by 1" in \
        result.output  # type: ignore[attr-defined]
    within = cli("diff", old, new, "--facts", facts, "--period", "2025-Q3", "--max-losers", "1")
    assert within.exit_code == 0  # type: ignore[attr-defined]


def test_cli_different_policies_need_force(tmp_path: Path) -> None:
    old = write_policy(tmp_path / "old", "1", "15%")
    other = tmp_path / "other" / "q.yaml"
    other.parent.mkdir()
    other.write_text(old.read_text(encoding="utf-8").replace("policy: p", "policy: q"),
                     encoding="utf-8")
    facts = facts_file(tmp_path, [("A", 2000, 2000, 324)])
    refused = cli("diff", old, other, "--facts", facts, "--period", "2025-Q3")
    assert refused.exit_code == 2  # type: ignore[attr-defined]
    assert "different policies ('p' and 'q')" in refused.output  # type: ignore[attr-defined]
    forced = cli("diff", old, other, "--facts", facts, "--period", "2025-Q3", "--force")
    assert forced.exit_code == 0  # type: ignore[attr-defined]


def test_cli_employees_one_version_cannot_evaluate_are_listed(tmp_path: Path) -> None:
    old = write_policy(tmp_path / "old", "1", "15%")
    new_path = write_policy(tmp_path / "new", "2", "15%", "2025-10-01")
    text = new_path.read_text(encoding="utf-8").replace("value: revenue / quota",
                                                        "value: revenue / quota\n"
                                                        "    divide_by_zero: error")
    new_path.write_text(text, encoding="utf-8")
    old_text = old.read_text(encoding="utf-8").replace(
        "value: revenue / quota", "value: revenue / quota\n    divide_by_zero: zero")
    old.write_text(old_text, encoding="utf-8")
    facts = facts_file(tmp_path, [("A", 2000, 2000, 324), ("Z", 100, 0, 10)])
    result = cli("diff", old, new_path, "--facts", facts, "--period", "2025-Q3",
                 "--format", "json")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    data = json.loads(result.output)  # type: ignore[attr-defined]
    assert [e["employee"] for e in data["employees"]] == ["A"]
    assert [d["code"] for d in data["only_old"]] == ["E_EVAL_DIVIDE_BY_ZERO"]
    assert "employee Z" in data["only_old"][0]["message"]


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_cli_compares_a_git_revision_and_every_changed_policy_since_a_base(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    write_policy(repo / "policies", "1", "15%")
    facts = facts_file(tmp_path, [("A", 2000, 2000, 324)])
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "v1", cwd=repo)
    write_policy(repo / "policies", "2", "18%")
    monkeypatch.chdir(repo)
    by_revision = cli("diff", "main:policies/p.yaml", "policies/p.yaml", "--facts", facts,
                      "--period", "2025-Q3", "--format", "json")
    assert by_revision.exit_code == 0, by_revision.output  # type: ignore[attr-defined]
    data = json.loads(by_revision.output)  # type: ignore[attr-defined]
    assert data["total"]["change"] == "-20.00"
    by_base = cli("diff", "--base", "main", "--facts", facts, "--period", "2025-Q3",
                  "--format", "json")
    assert json.loads(by_base.output)["total"] == data["total"]  # type: ignore[attr-defined]
    missing = cli("diff", "nosuch:policies/p.yaml", "policies/p.yaml", "--facts", facts,
                  "--period", "2025-Q3")
    assert missing.exit_code == 2  # type: ignore[attr-defined]
    assert "no 'policies/p.yaml' at revision 'nosuch'" in missing.output  # type: ignore


def test_tracing_only_the_changed_gives_the_causes_of_tracing_everyone(tmp_path: Path) -> None:
    """diff traces again only the employees whose results differ, carrying the population
    stage's events (selections, pools) and a cap's band behind a marker. With the business
    policy's distribution cap enforced (so some employees are moved down a band), every
    employee's causes equal those of comparing two fully traced runs, and an employee whose
    result is the same under both versions has none."""
    from engine.diff import _same, compare

    folders = []
    for quarter in ("2025-Q3", "2025-Q4"):
        folder = tmp_path / quarter
        shutil.copytree(ROOT / "policies" / quarter, folder)
        policy = folder / "business-roles.yaml"
        text = policy.read_text(encoding="utf-8")
        assert "mode: advisory" in text
        policy.write_text(text.replace("mode: advisory", "mode: enforce")
                          .replace("outstanding: 20%", "outstanding: 5%"), encoding="utf-8")
        folders.append(load_policies([folder]))
    old, new = folders
    report = diff(old, new, shipped_inputs(), "2025-Q3")
    full = compare(run(old, shipped_inputs(), "2025-Q3", keep_going=True, trace=True,
                       ignore_effective=True),
                   run(new, shipped_inputs(), "2025-Q3", keep_going=True, trace=True,
                       ignore_effective=True), report.policy_changes)
    capped = [n for n in run(old, shipped_inputs(), "2025-Q3", ignore_effective=True).notes
              if "moved to" in n.message]
    assert capped  # the cap did move people, so the band-override path ran
    expected = {(e.employee, e.months): e for e in full.employees}
    assert len(report.employees) == len(expected) == 201
    for person in report.employees:
        reference = expected[(person.employee, person.months)]
        assert (person.old, person.new) == (reference.old, reference.new)
        if person.old is not None and person.new is not None and _same(person.old, person.new):
            assert person.causes == ()
        else:
            assert person.causes == reference.causes, person.employee
    assert all(not (e.old and e.old.trace) and not (e.new and e.new.trace)
               for e in report.employees)


def test_a_diff_streamed_and_one_of_facts_read_whole_agree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Facts grouped by employee are evaluated under both versions as they are read, the
    causes of a changed employee's own evaluation traced while their rows are at hand; a
    shuffled file is read whole and traced after both runs. Both give the same report."""
    import dataclasses
    import random

    import engine.diff

    old = load_policies([ROOT / "policies" / "2025-Q3"])
    new = load_policies([ROOT / "policies" / "2025-Q4"])
    lines = (EXAMPLES / "facts.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    body = lines[1:]
    random.Random(3).shuffle(body)
    shuffled = tmp_path / "facts.csv"
    shuffled.write_text(lines[0] + "".join(body), encoding="utf-8")
    whole = diff(old, new, dataclasses.replace(shipped_inputs(), facts=shuffled), "2025-Q3")

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("grouped facts are streamed, not prepared whole")

    monkeypatch.setattr(engine.diff, "prepare", refused)
    streamed = diff(old, new, shipped_inputs(), "2025-Q3")
    assert sum(1 for e in streamed.employees if e.causes) > 100
    assert streamed.employees == whole.employees
    for output_format in ("json", "markdown"):
        assert render(streamed, output_format) == render(whole, output_format)
