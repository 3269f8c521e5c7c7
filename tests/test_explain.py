"""`meritpay explain`: goldens for the shipped examples, why-not gaps computed by hand, the
100-column text, self-contained HTML, labels by language, and every bad input.

Goldens live in tests/golden/explain/; regenerate them with MERITPAY_UPDATE_GOLDEN=1 after
checking the change, never by hand. Everything runs from the repository root with relative
paths, so the policy file appears in them as `policies/...` and nothing volatile does.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cli import main
from engine import InputError
from engine.evaluate import SeriesRead
from engine.explain import explain, explain_all, results_of
from engine.explainreport import TEXT_WIDTH, render_explanations, width
from engine.run import RunInputs, RunResult, load_policies, run
from engine.whynot import analyse, distance

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "explain"
UPDATE = bool(os.environ.get("MERITPAY_UPDATE_GOLDEN"))
D = Decimal


def examples() -> RunInputs:
    folder = Path("examples")
    return RunInputs(facts=folder / "facts.csv", ratings=folder / "ratings.csv",
                     teams=folder / "teams.csv", team_facts=folder / "team_facts.csv",
                     company_facts=folder / "company_facts.csv", lines=folder / "lines.csv")


@pytest.fixture(scope="module")
def shipped() -> Iterator[tuple[list[Any], RunResult]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # paths as given: relative to the checkout
        policies = load_policies([Path("policies")])
        yield policies, run(policies, examples(), "2025-Q3", trace=True)


def explained(shipped: tuple[list[Any], RunResult], employee: str, output_format: str = "text",
              **options: Any) -> str:
    policies, result = shipped
    explanations = explain_all(results_of(result.results, employee), policies, **options)
    return render_explanations(explanations, output_format)


def check_golden(name: str, text: str) -> None:
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run with MERITPAY_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8"), \
        f"{golden} differs: regenerate with MERITPAY_UPDATE_GOLDEN=1 after checking the change"


# --- goldens of the shipped examples ------------------------------------------------------------

SHIPPED_CASES = {
    "E0024-margin-gate-failed": "E0024",  # gross margin exactly 14.99% in 2025-Q3
    "E0004-honour-by-top-5-percent": "E0004",  # value_creation_star: top 4 of 64
    "E0038-360-without-subordinates": "E0038",  # the subordinate group has no ratings
    "E0034-equity-broken-year": "E0034",  # retention 89% in fiscal year 2023
    "E0035-equity-missing-year": "E0035",  # no data 2023-07..2024-12
}


@pytest.mark.parametrize("name", sorted(SHIPPED_CASES))
def test_shipped_explanation_matches_its_golden(shipped: tuple[list[Any], RunResult],
                                                name: str) -> None:
    check_golden(f"{name}.txt", explained(shipped, SHIPPED_CASES[name]))


@pytest.mark.parametrize(("name", "employee", "output_format"), [
    ("E0024-margin-gate-failed.json", "E0024", "json"),
    ("E0034-equity-broken-year.md", "E0034", "markdown"),
])
def test_other_formats_match_their_goldens(shipped: tuple[list[Any], RunResult], name: str,
                                           employee: str, output_format: str) -> None:
    check_golden(name, explained(shipped, employee, output_format))


def test_the_goldens_say_what_the_cases_are_about(shipped: tuple[list[Any], RunResult]) -> None:
    e0024 = explained(shipped, "E0024")
    assert "gross_margin 14.99% < 15%: needs 0.01 percentage points more" in e0024
    assert "so commission pays 2% on the whole base instead of its brackets" in e0024
    assert "target_cash 136,800.00 x 60% = 82,080.00" in e0024
    assert "[line 196]" in e0024 and "policies/2025-Q3/business-roles.yaml" in e0024
    e0004 = explained(shipped, "E0004")
    assert "selected, in the top 4 of 64 (role junior_sales_rep)" in e0004
    e0038 = explained(shipped, "E0038")
    assert "(subordinate) none, weight 10% -> 0%: excluded, 0 rating(s), 1" in e0038
    assert "weight 40% -> 44.44%" in e0038
    e0034 = explained(shipped, "E0034")
    assert "retention_rate 89% in fiscal year 2023 breaks the 3-year run" in " ".join(
        line.strip() for line in e0034.splitlines())
    e0035 = explained(shipped, "E0035")
    assert "no data for fiscal year 2024 breaks the 3-year run" in e0035


def tier_boundary_facts(tmp_path: Path) -> Path:
    """Case B1 (and B2) of tests/cases/commission.test.yaml, as a CSV."""
    cases = yaml.safe_load((ROOT / "tests/cases/commission.test.yaml").read_text("utf-8"))
    rows = next(c["facts"] for c in cases["cases"]
                if any(r["employee"] == "B1" for r in c["facts"]))
    path = tmp_path / "facts.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_score_exactly_on_a_tier_boundary(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    facts = tier_boundary_facts(tmp_path)
    monkeypatch.chdir(ROOT)
    policies = load_policies([Path("tests/cases/commission.yaml")])
    result = run(policies, RunInputs(facts=facts), "2025-Q3", trace=True)
    text = render_explanations(explain_all(results_of(result.results, "B1"), policies), "text")
    check_golden("B1-score-on-tier-boundary.txt", text)
    assert "exactly on the boundary 1.1: a score on a boundary takes the higher band" in text
    assert "1,000,000.00 x 2% + 100,000.00 x 4% = 24,000.00" in text
    below = render_explanations(explain_all(results_of(result.results, "B2"), policies), "text")
    assert "0.0001 more total_score reaches tier outstanding" in below


def test_the_command_prints_the_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["explain", "E0024", "policies/", "--data", "examples/",
                                       "--period", "2025-Q3"])
    assert result.exit_code == 0, result.output
    golden = (GOLDEN / "E0024-margin-gate-failed.txt").read_text(encoding="utf-8")
    assert result.stdout == golden


# --- why not: gaps computed by hand ----------------------------------------------------------

def test_a_failed_threshold_gives_its_gap_in_the_left_sides_units() -> None:
    analysis = analyse("gross_margin >= 15%", {"gross_margin": D("0.1499")},
                       percent_names={"gross_margin"})
    assert analysis.holds is False
    (check,) = analysis.missed
    assert (check.left, check.op, check.right) == ("gross_margin", ">=", "15%")
    assert check.left_value == D("0.1499") and check.right_value == D("0.15")
    assert check.gap == D("0.0001") and check.percent


def test_and_gives_every_failing_part_with_its_gap() -> None:
    analysis = analyse("total_score >= 1.0 and score.x >= 1.0 and visits <= 40",
                       {"total_score": D("0.8544"), "score.x": D("0.9467"), "visits": D(32)})
    assert analysis.holds is False
    assert [(c.left, c.gap) for c in analysis.missed] == [
        ("total_score", D("0.1456")), ("score.x", D("0.0533"))]


def test_or_gives_the_smallest_gap_relative_to_its_threshold() -> None:
    # 2 more visits is 2/30 = 6.7% of the threshold; 0.2 more score is 20% of it
    analysis = analyse("total_score >= 1.0 or visits > 30",
                       {"total_score": D("0.8"), "visits": D(28)})
    (check,) = analysis.missed
    assert (check.left, check.op, check.gap, check.strict) == ("visits", ">", D(2), True)
    assert distance(analysis.missed) == D(2) / D(30)


def test_a_threshold_written_first_is_read_from_the_variable_side() -> None:
    (check,) = analyse("90% <= retention", {"retention": D("0.85")}).missed
    assert (check.left, check.op, check.right, check.gap) == ("retention", ">=", "90%", D("0.05"))


def test_a_fall_needed_is_a_negative_gap() -> None:
    (check,) = analyse("collection_days <= 60", {"collection_days": D("66.5")}).missed
    assert check.gap == D("-6.5")


YEARS = [SeriesRead("year", "2022", (("retention_rate", D("0.958")),)),
         SeriesRead("year", "2023", (("retention_rate", D("0.89")),)),
         SeriesRead("year", "2024", (("retention_rate", D("0.948")),))]


def test_a_year_below_the_threshold_breaks_the_run() -> None:
    analysis = analyse("consecutive_years(retention_rate >= 90%, 3) and successors >= 2",
                       {"successors": D(3)}, YEARS, percent_names={"retention_rate"})
    assert analysis.holds is False
    (check,) = analysis.missed
    assert (check.over, check.at, check.run, check.gap) == ("year", "2023", 3, D("0.01"))


def test_a_year_without_data_breaks_the_run_and_is_named() -> None:
    years = [YEARS[0], SeriesRead("year", "2023", (("retention_rate", D("0.96")),)),
             SeriesRead("year", "2024", None)]
    (check,) = analyse("consecutive_years(retention_rate >= 90%, 3)", {}, years).missed
    assert check.no_data and check.at == "2024"


def test_years_before_the_first_with_data_are_missing_years() -> None:
    missed = analyse("consecutive_years(retention_rate >= 90%, 3)", {}, YEARS[2:]).missed
    assert [(c.at, c.no_data) for c in missed] == [("2022", True), ("2023", True)]


def test_every_month_names_each_failing_month() -> None:
    months = [SeriesRead("month", m, (("visits", D(v)),))
              for m, v in (("2025-07", 12), ("2025-08", 7), ("2025-09", 9))]
    missed = analyse("every_month(visits >= 10)", {}, months).missed
    assert [(c.at, c.gap) for c in missed] == [("2025-08", D(3)), ("2025-09", D(1))]
    (nearest,) = analyse("any_month(visits >= 13)", {}, months).missed
    assert (nearest.at, nearest.gap) == ("2025-07", D(1))


def test_a_condition_that_holds_misses_nothing() -> None:
    analysis = analyse("a > 1 or b > 1", {"a": D(0), "b": D(2)})
    assert analysis.holds is True and analysis.missed == ()


def test_the_trace_records_each_fiscal_year_and_a_year_without_data(
        shipped: tuple[list[Any], RunResult]) -> None:
    _, result = shipped
    e0035 = results_of(result.results, "E0035")[0]
    event = next(e for e in e0035.trace if e.name == "equity_eligibility")
    assert [(s.over, s.label, s.reads is None) for s in event.series] == [
        ("year", "2022", False), ("year", "2023", False), ("year", "2024", True)]
    e0034 = results_of(result.results, "E0034")[0]
    event = next(e for e in e0034.trace if e.name == "equity_eligibility")
    assert dict(event.series[1].reads or ())["retention_rate"] == D("0.89")


# --- formats -----------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_text_fits_a_100_column_terminal(shipped: tuple[list[Any], RunResult], lang: str) -> None:
    policies, result = shipped
    text = render_explanations(explain_all(result.results, policies, lang=lang), "text")
    too_wide = [line for line in text.splitlines() if width(line) > TEXT_WIDTH]
    assert not too_wide, too_wide[:3]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)


def test_html_is_one_self_contained_page_with_an_svg_chart(
        shipped: tuple[list[Any], RunResult]) -> None:
    page = explained(shipped, "E0038", "html")
    assert "http://" not in page and "https://" not in page
    parser = _Page()
    parser.feed(page)
    assert "svg" in parser.tags and "rect" in parser.tags and "style" in parser.tags
    assert "script" not in parser.tags and "link" not in parser.tags
    assert not [a for a in parser.attributes if a[0] in ("src", "href")]
    assert parser.tags.count("rect") == 6  # one bar per scored indicator of a director


def test_json_has_the_documented_structure(shipped: tuple[list[Any], RunResult]) -> None:
    data = json.loads(explained(shipped, "E0024", "json"))
    assert data["meritpay_explain"] == 1
    (explanation,) = data["explanations"]
    assert set(explanation) == {
        "employee", "name", "role", "role_label", "months", "policy", "lang", "currency",
        "proration", "total_pay", "total_score", "rewards", "tier", "gates", "indicators",
        "outcomes", "why_not", "focus"}
    gate = next(g for g in explanation["gates"] if g["name"] == "margin_floor")
    check = gate["conditions"][0]["check"]
    assert (check["left_value"], check["right_value"], check["gap"]) == ("0.1499", "0.15",
                                                                         "0.0001")
    assert gate["source"] == {"file": "policies/2025-Q3/business-roles.yaml", "line": 196}


def test_lang_zh_shows_the_policys_chinese_labels(shipped: tuple[list[Any], RunResult]) -> None:
    text = explained(shipped, "E0024", lang="zh")
    assert "销售提成 (commission)" in text and "客户经理 (account_manager)" in text
    assert "Sales commission" not in text


def test_why_not_focuses_on_one_thing(shipped: tuple[list[Any], RunResult]) -> None:
    text = explained(shipped, "E0034", why_not="equity_eligibility")
    assert "WHY NOT equity_eligibility" in text and "INDICATORS" not in text
    assert "breaks the 3-year run" in text
    granted = explained(shipped, "E0004", why_not="value_creation_star")
    assert "value_creation_star was granted" in granted


def test_an_employee_with_two_role_segments_gets_both(
        shipped: tuple[list[Any], RunResult]) -> None:
    text = explained(shipped, "E0016")
    assert "(junior_sales_rep), months 2025-07" in text
    assert "(account_manager), months 2025-08..2025-09" in text


def test_explaining_needs_a_trace(shipped: tuple[list[Any], RunResult]) -> None:
    policies, result = shipped
    first = result.results[0]
    with pytest.raises(InputError, match="trace=True"):
        explain(replace(first, trace=()), next(p for p in policies if p.policy == first.policy))


# --- bad input ---------------------------------------------------------------------------------

def explain_command(*extra: str) -> Any:
    return CliRunner().invoke(main, ["explain", *extra, "--data", "examples/", "--period",
                                     "2025-Q3"])


def test_an_unknown_employee_is_exit_2_with_near_matches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = explain_command("E024", "policies/")
    assert result.exit_code == 2
    assert "employee 'E024' has no result" in result.stderr and "E0024" in result.stderr


def test_an_unknown_why_not_is_exit_2_with_did_you_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = explain_command("E0024", "policies/", "--why-not", "margin_flor")
    assert result.exit_code == 2
    assert "did you mean 'margin_floor'" in result.stderr


def test_an_unknown_language_is_exit_2_listing_the_policys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = explain_command("E0024", "policies/", "--lang", "fr")
    assert result.exit_code == 2
    assert "its languages are en, zh" in result.stderr


def test_output_file_holds_the_html(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    target = tmp_path / "e.html"
    result = explain_command("E0038", "policies/", "--format", "html", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
